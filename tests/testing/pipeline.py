"""A small two-round glossary pipeline that the toolkit's tests run."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from pydantic import BaseModel, Field

from inert import Request, gather_all, program
from inert.openai import structured

MODEL = "gpt-4o-mini"


class Senses(BaseModel):
    """The senses of a word, one short phrase each."""

    senses: list[str] = Field(min_length=1, max_length=3)


class Gloss(BaseModel):
    """A one-line definition of one sense."""

    text: str


def senses_of(word: str) -> Request[Senses]:
    """Ask for the senses of ``word``."""
    return structured(
        model=MODEL,
        messages=[{"role": "user", "content": f"List the senses of {word!r}."}],
        response_format=Senses,
    )


def gloss_of(word: str, sense: str) -> Request[Gloss]:
    """Ask for a definition of one sense of ``word``."""
    return structured(
        model=MODEL,
        messages=[{"role": "user", "content": f"Define {word!r} in the sense {sense!r}."}],
        response_format=Gloss,
    )


@program
def glossary(word: str) -> Generator[Request[object], Any, dict[str, str]]:
    """Senses first (round 1), then every definition at once (round 2)."""
    senses = yield from senses_of(word)
    glosses = yield from gather_all([gloss_of(word, sense) for sense in senses.senses])
    return {sense: gloss.text for sense, gloss in zip(senses.senses, glosses, strict=True)}
