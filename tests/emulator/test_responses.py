"""The Responses API: structured outputs under text.format, plain text, usage, validation."""

from __future__ import annotations

from typing import Any, Literal

import openai
import pydantic
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.billing import settled_ledger

from inert._json import op_key
from inert.emulator import Emulator, Faults

from ._shapes import shapes


class Sense(pydantic.BaseModel):
    definition: str
    tone: Literal["formal", "informal", "neutral"]
    examples: list[str] = pydantic.Field(min_length=1, max_length=3)


def test_parse_returns_a_valid_model(client: openai.OpenAI) -> None:
    """responses.parse with text_format comes back completed, parsed as a valid instance."""
    response = client.responses.parse(
        model="gpt-test", input="Define 'lantern'.", text_format=Sense
    )
    assert isinstance(response.output_parsed, Sense)
    assert ("response", "completed", "gpt-test") == (
        response.object,
        response.status,
        response.model,
    )
    assert response.completed_at is not None


def test_usage_names_input_and_output_tokens(client: openai.OpenAI, emu: Emulator) -> None:
    """usage carries input_tokens and output_tokens, and the ledger bills exactly those."""
    body: dict[str, Any] = {
        "model": "gpt-test",
        "instructions": "Be brief.",
        "input": [{"role": "user", "content": "What is an oak?"}],
    }
    response = client.responses.create(**body)
    assert response.usage is not None
    assert 3 + 3 + (4 + 4) == response.usage.input_tokens  # instructions, one item of 15 characters
    assert response.usage.total_tokens == response.usage.input_tokens + response.usage.output_tokens
    entry = settled_ledger(emu).entries()[0]
    assert (
        op_key("/v1/responses", body),
        1,
        response.usage.input_tokens,
        response.usage.output_tokens,
    ) == (
        entry.key,
        entry.immediate,
        entry.prompt_tokens,
        entry.completion_tokens,
    )
    assert isinstance(response.output_text, str)
    assert response.output_text.endswith(".")


def test_same_body_gets_the_same_answer(client: openai.OpenAI) -> None:
    """Two identical requests get the same text; a different input another."""
    first = client.responses.create(model="m", input="Define 'oak'.")
    again = client.responses.create(model="m", input="Define 'oak'.")
    other = client.responses.create(model="m", input="Define 'elm'.")
    assert first.output_text == again.output_text != other.output_text


def test_max_output_tokens_cuts_the_answer(client: openai.OpenAI) -> None:
    """An answer longer than max_output_tokens ends incomplete for that reason; others complete."""
    responses = [
        client.responses.create(model="m", input=f"Story {i}", max_output_tokens=16)
        for i in range(10)
    ]
    cut = [r for r in responses if r.status == "incomplete"]
    assert cut
    for r in cut:
        assert r.incomplete_details is not None
        assert "max_output_tokens" == r.incomplete_details.reason
        assert r.usage is not None
        assert r.usage.output_tokens <= 16
    assert {"completed"} == {r.status for r in responses if r not in cut}


def test_refusal_is_a_refusal_part(client: openai.OpenAI, emu: Emulator) -> None:
    """The refusal fault answers a refusal content part and no parsed value; it is billed."""
    emu.set_faults(Faults(refusal=1.0))
    response = client.responses.parse(model="m", input="hi", text_format=Sense)
    assert response.output_parsed is None
    message = response.output[0]
    assert "message" == message.type
    assert ["refusal"] == [part.type for part in message.content]  # pyright: ignore[reportAttributeAccessIssue, reportOptionalIterable]  # narrowed by the type check above (mypy narrows it, pyright does not)
    assert 1 == settled_ledger(emu).total_billed()


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"input": "hi"}, "model"),
        ({"model": "m"}, "input"),
        ({"model": "m", "input": []}, "input"),
        ({"model": "m", "input": [{"role": "robot", "content": "x"}]}, "input[0].role"),
        ({"model": "m", "input": "hi", "max_output_tokens": 15}, "max_output_tokens"),
        ({"model": "m", "input": "hi", "text": {"format": {"type": "yaml"}}}, "text.format.type"),
        (
            {
                "model": "m",
                "input": "hi",
                "text": {"format": {"type": "json_schema", "schema": {}}},
            },
            "text.format.name",
        ),
    ],
)
def test_malformed_requests_are_400s(
    client: openai.OpenAI, emu: Emulator, body: dict[str, Any], param: str
) -> None:
    """A malformed Responses request is a 400 naming the parameter, and is not billed."""
    with pytest.raises(openai.BadRequestError) as caught:
        client.post("/responses", body=body, cast_to=object)
    assert param == caught.value.param
    assert 0 == settled_ledger(emu).total_billed()


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(model=shapes, prompt=st.text(max_size=30))
def test_any_model_shape_gets_a_valid_answer(
    client: openai.OpenAI, model: type[pydantic.BaseModel], prompt: str
) -> None:
    """For generated models (nested, Literal, Optional, constrained lists) the strict answer validates."""
    response = client.responses.parse(model="gpt-test", input=prompt or "?", text_format=model)
    assert isinstance(response.output_parsed, model)
