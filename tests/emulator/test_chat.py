"""Chat completions: structured answers, plain text, usage and request validation."""

from __future__ import annotations

from typing import Any, Literal

import openai
import pydantic
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openai.lib import type_to_response_format_param
from tests.billing import settled_ledger

from inert._json import op_key
from inert.emulator import Emulator

from ._shapes import shapes


class Sense(pydantic.BaseModel):
    definition: str
    tone: Literal["formal", "informal", "neutral"]
    examples: list[str] = pydantic.Field(min_length=1, max_length=3)


class Entry(pydantic.BaseModel):
    headword: str
    frequency: int
    score: float
    archaic: bool
    etymology: str | None
    senses: list[Sense]


MESSAGES: list[Any] = [{"role": "user", "content": "Define the word 'lantern'."}]


def test_parse_returns_a_valid_model(client: openai.OpenAI) -> None:
    """A structured parse with a pydantic model comes back as a valid instance of it."""
    completion = client.chat.completions.parse(
        model="gpt-test", messages=MESSAGES, response_format=Entry
    )
    parsed = completion.choices[0].message.parsed
    assert isinstance(parsed, Entry)
    assert "stop" == completion.choices[0].finish_reason
    assert completion.choices[0].message.refusal is None


def test_same_body_gets_the_same_answer(client: openai.OpenAI) -> None:
    """Two identical requests get identical content; a different prompt gets another."""
    first = client.chat.completions.parse(
        model="gpt-test", messages=MESSAGES, response_format=Entry
    )
    again = client.chat.completions.parse(
        model="gpt-test", messages=MESSAGES, response_format=Entry
    )
    other = client.chat.completions.parse(
        model="gpt-test",
        messages=[{"role": "user", "content": "Define 'maple'."}],
        response_format=Entry,
    )
    assert first.choices[0].message.content == again.choices[0].message.content
    assert first.choices[0].message.content != other.choices[0].message.content


async def test_async_client_parses_too(aclient: openai.AsyncOpenAI) -> None:
    """The asynchronous SDK client gets the same kind of valid structured answer."""
    completion = await aclient.chat.completions.parse(
        model="gpt-test", messages=MESSAGES, response_format=Sense
    )
    assert isinstance(completion.choices[0].message.parsed, Sense)


def test_plain_text_answer_has_real_fields(client: openai.OpenAI) -> None:
    """Without a response_format the answer is text, with OpenAI's fields filled in."""
    completion = client.chat.completions.create(model="gpt-echo", messages=MESSAGES)
    assert "chat.completion" == completion.object
    assert "gpt-echo" == completion.model
    assert isinstance(completion.choices[0].message.content, str)
    assert completion.choices[0].message.content.endswith(".")
    assert completion.usage is not None
    total = completion.usage.prompt_tokens + completion.usage.completion_tokens
    assert total == completion.usage.total_tokens


def test_usage_grows_with_the_prompt(client: openai.OpenAI) -> None:
    """A longer prompt is billed more prompt tokens."""
    short = client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
    long = client.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "hi " * 400}]
    )
    assert short.usage is not None
    assert long.usage is not None
    assert long.usage.prompt_tokens > short.usage.prompt_tokens + 250


def test_successful_calls_are_billed_by_key(client: openai.OpenAI, emu: Emulator) -> None:
    """The ledger bills a chat call under op_key of its endpoint and body."""
    response_format = type_to_response_format_param(Sense)
    body: dict[str, Any] = {
        "model": "gpt-test",
        "messages": MESSAGES,
        "response_format": response_format,
    }
    completion = client.chat.completions.create(**body)
    key = op_key("/v1/chat/completions", body)
    assert 1 == settled_ledger(emu).times_billed(key)
    entry = settled_ledger(emu).entries()[0]
    assert completion.usage is not None
    assert (1, 0, completion.usage.prompt_tokens) == (
        entry.immediate,
        entry.batch,
        entry.prompt_tokens,
    )


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"messages": MESSAGES}, "model"),
        ({"model": "m"}, "messages"),
        ({"model": "m", "messages": MESSAGES, "n": 2}, "n"),
    ],
)
def test_malformed_requests_are_400s(
    client: openai.OpenAI, emu: Emulator, body: dict[str, Any], param: str
) -> None:
    """A request missing model or messages (or asking n > 1) is a 400 naming the parameter, not billed."""
    with pytest.raises(openai.BadRequestError) as caught:
        client.post("/chat/completions", body=body, cast_to=object)
    assert param == caught.value.param
    assert "invalid_request_error" == caught.value.type
    assert 0 == settled_ledger(emu).total_billed()


def test_unknown_routes_are_404s_in_openai_shape(client: openai.OpenAI) -> None:
    """A route the emulator does not serve is a 404 with OpenAI's error body."""
    with pytest.raises(openai.NotFoundError) as caught:
        client.models.list()
    assert "invalid_request_error" == caught.value.type


# --- any model shape gets a valid answer -------------------------------------------


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(model=shapes, prompt=st.text(max_size=30))
def test_any_model_shape_gets_a_valid_answer(
    client: openai.OpenAI, model: type[pydantic.BaseModel], prompt: str
) -> None:
    """For generated models (nested, Literal, Optional, constrained lists) the answer validates."""
    completion = client.chat.completions.parse(
        model="gpt-test", messages=[{"role": "user", "content": prompt}], response_format=model
    )
    assert isinstance(completion.choices[0].message.parsed, model)
