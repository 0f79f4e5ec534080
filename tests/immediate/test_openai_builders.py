"""The ``inert.openai`` builders: bodies equal to the SDK's, parameter checks, decoding."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openai.types.chat import ChatCompletion
from pydantic import BaseModel
from tests.billing import settled_ledger

from inert import ImmediateRunner, Op, Request
from inert._json import JSON, canonical_dumps, op_key
from inert._request import _Call
from inert.emulator import Emulator, Faults
from inert.errors import (
    ApiError,
    ContentFilterError,
    InvalidOutputError,
    RefusalError,
    TruncatedError,
)
from inert.openai import CHAT_COMPLETIONS, EMBEDDINGS, chat, completion, embedding, structured
from inert.testing import FakeRunner

from .conftest import Recorder, Synonyms

MODEL = "gpt-4o-mini"
MESSAGES: list[Any] = [
    {"role": "system", "content": "You list synonyms."},
    {"role": "user", "content": "Synonyms of 'bright'."},
]


def _op_of(request: Request[Any]) -> Op[Any]:
    assert isinstance(request, _Call)  # a builder returns the call of one op
    op: Op[Any] = request.op
    return op


def _completion(content: str | None, *, finish: str = "stop", refusal: str | None = None) -> JSON:
    message: dict[str, JSON] = {"role": "assistant", "content": content, "refusal": refusal}
    return {
        "id": "c",
        "object": "chat.completion",
        "created": 0,
        "model": MODEL,
        "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": None}],
    }


async def test_structured_body_is_byte_identical_to_what_parse_sends(
    client: openai.AsyncOpenAI, recorder: Recorder, emulator: Emulator
) -> None:
    """structured() and chat.completions.parse() send the same body, billed under op.key."""
    params: dict[str, Any] = {"temperature": 0.2, "max_completion_tokens": 200, "seed": 3}
    await client.chat.completions.parse(
        model=MODEL, messages=MESSAGES, response_format=Synonyms, **params
    )
    (sdk_body,) = recorder.bodies
    request = structured(model=MODEL, messages=MESSAGES, response_format=Synonyms, **params)
    op = _op_of(request)
    await ImmediateRunner(client).run(request)
    ours = recorder.bodies[1]
    assert json.loads(sdk_body) == json.loads(ours)
    assert canonical_dumps(json.loads(sdk_body)) == canonical_dumps(json.loads(ours))
    assert op_key(CHAT_COMPLETIONS, json.loads(sdk_body)) == op.key
    assert {op.key: 2} == settled_ledger(emulator).counts()


async def test_chat_body_equals_what_create_sends(
    client: openai.AsyncOpenAI, recorder: Recorder
) -> None:
    """chat() sends what chat.completions.create() sends for the same arguments."""
    await client.chat.completions.create(model=MODEL, messages=MESSAGES, top_p=0.5, stop=["x"])
    op = _op_of(chat(model=MODEL, messages=MESSAGES, top_p=0.5, stop=["x"]))
    assert json.loads(recorder.bodies[0]) == op.body


async def test_embedding_body_equals_what_create_sends(
    client: openai.AsyncOpenAI, recorder: Recorder
) -> None:
    """embedding() sends what embeddings.create() sends, and decodes to the same vector."""
    sdk = await client.embeddings.create(
        model="text-embedding-3-small", input="bright", encoding_format="float", dimensions=4
    )
    request = embedding(
        model="text-embedding-3-small", input="bright", encoding_format="float", dimensions=4
    )
    vector = await ImmediateRunner(client).run(request)
    assert json.loads(recorder.bodies[0]) == json.loads(recorder.bodies[1])
    assert EMBEDDINGS == _op_of(request).endpoint
    assert sdk.data[0].embedding == vector


async def test_typed_answers_decode_through_the_sdk_types(client: openai.AsyncOpenAI) -> None:
    """structured, chat and completion decode a real answer to their declared types."""
    runner = ImmediateRunner(client)
    words, text, whole = await runner.run_all_settled(
        [
            structured(model=MODEL, messages=MESSAGES, response_format=Synonyms),
            chat(model=MODEL, messages=MESSAGES),
            completion(model=MODEL, messages=MESSAGES),
        ]
    )
    assert isinstance(words.unwrap(), Synonyms)
    assert isinstance(text.unwrap(), str)
    assert isinstance(whole.unwrap(), ChatCompletion)


@pytest.mark.parametrize(
    ("kind", "error"),
    [
        ("refusal", RefusalError),
        ("truncation", TruncatedError),
        ("invalid_output", InvalidOutputError),
    ],
)
async def test_bad_answers_are_typed_errors(
    client: openai.AsyncOpenAI, emulator: Emulator, kind: str, error: type[Exception]
) -> None:
    """A refusal, a truncated answer and an invalid answer are distinct RequestErrors."""
    emulator.set_faults(Faults(**{kind: 1.0}))
    runner = ImmediateRunner(client)
    request = structured(model=MODEL, messages=MESSAGES, response_format=Synonyms)
    with pytest.raises(error):
        await runner.run(request)
    assert 0 == runner.report.retries


def test_content_filter_and_error_bodies_are_typed() -> None:
    """finish_reason content_filter and an error body decode to their own errors."""
    request = structured(model=MODEL, messages=MESSAGES, response_format=Synonyms)
    filtered = FakeRunner(lambda op: _completion(None, finish="content_filter"))
    with pytest.raises(ContentFilterError):
        filtered.run_sync(request)
    errored = FakeRunner(lambda op: {"error": {"message": "bad", "code": "oops"}})
    with pytest.raises(ApiError) as caught:
        errored.run_sync(request)
    assert "oops" == caught.value.code


def test_invalid_output_carries_the_pydantic_error() -> None:
    """Content that fails validation names the failing field."""
    fake = FakeRunner(lambda op: _completion('{"wrods": []}'))
    with pytest.raises(InvalidOutputError) as caught:
        fake.run_sync(structured(model=MODEL, messages=MESSAGES, response_format=Synonyms))
    assert "words" in caught.value.message


def test_decoders_are_shared_per_model() -> None:
    """Two structured requests for one model share one decoder (no closure per request)."""
    a = _op_of(structured(model=MODEL, messages=MESSAGES, response_format=Synonyms))
    b = _op_of(structured(model="gpt-4o", messages=MESSAGES[1:], response_format=Synonyms))
    assert a.decode is b.decode


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"temprature": 0.5}, "'temprature'"),
        ({"temperature": "hot"}, "'temperature'"),
        ({"max_tokens": 1.5}, "'max_tokens'"),
        ({"service_tier": "cheap"}, "'service_tier'"),
        ({"stream": True}, "stream"),
        ({"extra_body": {}}, "'extra_body'"),
    ],
)
def test_bad_parameters_are_rejected_by_name(params: dict[str, Any], named: str) -> None:
    """An unknown or mistyped parameter fails at build time, naming the parameter."""
    with pytest.raises((TypeError, ValueError)) as caught:
        structured(model=MODEL, messages=MESSAGES, response_format=Synonyms, **params)
    assert named in str(caught.value)


@pytest.mark.parametrize(
    ("messages", "named"),
    [
        ([{"role": "user"}], "'content'"),
        ([{"content": "hi"}], "'role'"),
        ([{"role": "user", "content": 3}], "messages[0]"),
        ("hi", "list of messages"),
        ([], "empty"),
    ],
)
def test_bad_messages_are_rejected_clearly(messages: Any, named: str) -> None:
    """A message without role or content, or of the wrong shape, is refused when built."""
    with pytest.raises((TypeError, ValueError)) as caught:
        chat(model=MODEL, messages=messages)
    assert named in str(caught.value)


def test_response_format_must_be_a_pydantic_model() -> None:
    """A response_format that is not a pydantic model class is refused when built."""
    with pytest.raises(TypeError, match="response_format"):
        structured(model=MODEL, messages=MESSAGES, response_format=int)  # type: ignore[type-var]  # pyright: ignore[reportArgumentType]  # the rejected case under test


def test_dedup_flag_reaches_the_op() -> None:
    """dedup=False marks the op so that every occurrence is a separate call."""
    request = chat(model=MODEL, messages=MESSAGES, temperature=1.0, dedup=False)
    fake = FakeRunner(lambda op: _completion("x"))
    fake.run_all_sync([request, request])
    assert [False, False] == [op.dedup for op in fake.calls]


class Entry(BaseModel):
    """A model with a few field kinds, for the round-trip property."""

    word: str
    score: int
    tags: list[str]


@settings(max_examples=40, deadline=None)
@given(
    st.builds(Entry, score=st.integers(-(2**40), 2**40)),
    st.text(min_size=1, max_size=40),
)
def test_any_answer_round_trips_through_decoding(entry: Entry, prompt: str) -> None:
    """Decoding a completion whose content is a model's JSON gives that model back."""
    request = structured(
        model=MODEL, messages=[{"role": "user", "content": prompt}], response_format=Entry
    )
    fake = FakeRunner(lambda op: _completion(entry.model_dump_json()))
    assert entry == fake.run_sync(request)
    (op,) = fake.calls
    assert op_key(op.endpoint, json.loads(op.canonical_body())) == op.key
