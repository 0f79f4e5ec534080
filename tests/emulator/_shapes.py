"""A Hypothesis strategy of pydantic models of many shapes, for structured-output tests."""

from __future__ import annotations

from typing import Any, Literal

import pydantic
from hypothesis import strategies as st

Shape = Any  # a type usable as a pydantic field annotation

scalars: st.SearchStrategy[Shape] = st.sampled_from(
    [str, int, float, bool, Literal["alpha", "beta"], Literal[1, 2, 3]]
)


def _model(fields: list[Shape]) -> type[pydantic.BaseModel]:
    definitions: dict[str, Any] = {f"field_{i}": (shape, ...) for i, shape in enumerate(fields)}
    return pydantic.create_model("Generated", **definitions)


def _extend(children: st.SearchStrategy[Shape]) -> st.SearchStrategy[Shape]:
    return st.one_of(
        children.map(lambda shape: shape | None),
        children.map(lambda shape: list[shape]),  # type: ignore[valid-type]  # a runtime-built annotation
        st.tuples(children, st.integers(0, 2), st.integers(0, 2)).map(
            lambda t: pydantic.conlist(t[0], min_length=t[1], max_length=t[1] + t[2])
        ),
        st.lists(children, min_size=1, max_size=3).map(_model),
    )


shapes = st.lists(st.recursive(scalars, _extend, max_leaves=6), min_size=1, max_size=4).map(_model)
