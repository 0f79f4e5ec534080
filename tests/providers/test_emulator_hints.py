"""The emulator's Claude follows the constraints the anthropic SDK moves into descriptions.

``anthropic.lib._parse._transform.transform_schema`` drops what structured outputs
do not enforce (``minimum``, ``maxItems``, ...) from the schema and appends it to the
property's description as ``{minimum: 1, maximum: 5}``, for the model to follow.
"""

from __future__ import annotations

from typing import Any

import anthropic
import pydantic
from anthropic.lib._parse._transform import transform_schema

from inert import ImmediateRunner
from inert.anthropic import message
from inert.emulator import Emulator
from inert.emulator._anthropic import followed_hints


class Rated(pydantic.BaseModel):
    """Bounds a schema hint carries: a score, a share and a short list of tags."""

    score: int = pydantic.Field(ge=1, le=5, description="How apt")
    share: float = pydantic.Field(gt=0, lt=1)
    tags: list[str] = pydantic.Field(min_length=2, max_length=3)


def test_the_hints_the_sdk_writes_are_read_back_as_constraints() -> None:
    """Each numeric constraint moved into a description is back beside it."""
    schema = followed_hints(transform_schema(Rated))
    props = schema["properties"]
    assert (1, 5) == (props["score"]["minimum"], props["score"]["maximum"])
    assert (0, 1) == (props["share"]["exclusiveMinimum"], props["share"]["exclusiveMaximum"])
    assert (2, 3) == (props["tags"]["minItems"], props["tags"]["maxItems"])
    assert "How apt" in props["score"]["description"]  # the description itself is kept


def test_a_schema_without_hints_is_unchanged() -> None:
    """Descriptions that are prose, or name no numeric constraint, change nothing."""
    plain = {"type": "string", "description": "a name {not: a hint"}
    odd = {"type": "string", "description": "{format: email}"}
    assert plain == followed_hints(plain)
    assert odd == followed_hints(odd)


async def test_claudes_answers_keep_the_bounds_the_model_class_checks() -> None:
    """Structured answers of a bounded model all validate (no InvalidOutputError)."""
    with Emulator() as emulator:
        async with anthropic.AsyncAnthropic(
            base_url=emulator.anthropic_base_url, api_key="t"
        ) as claude:
            content: Any = [{"role": "user", "content": "Rate it."}]
            requests = [
                message(
                    model="claude-haiku-4-5",
                    max_tokens=200,
                    messages=content,
                    output_format=Rated,
                    system=f"case {i}",
                )
                for i in range(30)
            ]
            answers = await ImmediateRunner(anthropic=claude, progress=False).run_all(requests)
    assert all(1 <= a.score <= 5 and 2 <= len(a.tags) <= 3 for a in answers)
