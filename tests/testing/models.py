"""Response models of many shapes, for the strategies' property tests."""

from __future__ import annotations

import enum
from datetime import date, datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import BaseModel, Field


class Color(enum.Enum):
    """A string enum."""

    RED = "red"
    GREEN = "green"


class Level(enum.IntEnum):
    """An integer enum."""

    LOW = 1
    HIGH = 2


class Leaf(BaseModel):
    """A small nested model with bounded fields."""

    name: str = Field(min_length=1, max_length=12)
    score: float = Field(ge=0.0, le=1.0)


class Kinds(BaseModel):
    """Literals, enums, optionals and nested models."""

    kind: Literal["a", "b"]
    color: Color
    level: Level
    flag: bool
    maybe: int | None
    leaf: Leaf
    maybe_leaf: Leaf | None
    leaves: list[Leaf] = Field(min_length=1, max_length=3)


class Numbers(BaseModel):
    """Numbers with inclusive, exclusive and step bounds."""

    small: int = Field(gt=-5, lt=5)
    positive: float = Field(gt=0.0)
    fives: int = Field(ge=10, multiple_of=5)
    negative: float = Field(le=-1.5)
    anything: float
    big: int


class Collections(BaseModel):
    """Sets, tuples, dicts and lists of nested models."""

    tags: set[str]
    ids: frozenset[int] = Field(max_length=3)
    pair: tuple[int, str]
    many: tuple[float, ...]
    scores: dict[str, int]
    groups: dict[str, list[Leaf]]
    matrix: list[list[int]] = Field(max_length=2)


class Texts(BaseModel):
    """Patterns, lengths and formats."""

    code: str = Field(pattern=r"^[A-Z]{2}-\d{3}$")
    short: str = Field(max_length=3)
    exact: Annotated[str, Field(min_length=4, max_length=4)]
    when: datetime
    day: date
    ident: UUID


class Cat(BaseModel):
    """One member of a discriminated union."""

    pet: Literal["cat"]
    lives: int = Field(ge=1, le=9)


class Dog(BaseModel):
    """The other member."""

    pet: Literal["dog"]
    good: bool


class Unions(BaseModel):
    """Plain and discriminated unions."""

    value: int | str | Leaf | None
    animal: Cat | Dog = Field(discriminator="pet")
    animals: list[Annotated[Cat | Dog, Field(discriminator="pet")]] = Field(max_length=3)


class Tree(BaseModel):
    """A recursive model."""

    label: str = Field(max_length=5)
    children: list[Tree] = Field(max_length=2)


class Defaults(BaseModel):
    """Fields with defaults (strict schemas still require them)."""

    count: int = 3
    note: str | None = None
    words: list[str] = Field(default_factory=list, max_length=2)


SHAPES: tuple[type[BaseModel], ...] = (
    Leaf,
    Kinds,
    Numbers,
    Collections,
    Texts,
    Unions,
    Tree,
    Defaults,
)
