"""``inert.openai.response``: the body responses.parse/create send, typed answers, both runners."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import openai
import pydantic
import pytest
from openai.types.responses import Response
from tests.billing import assert_billed_once, keys_of, settled_ledger

from inert import BatchRunner, ImmediateRunner, Request, Store
from inert._json import canonical_dumps, op_key
from inert.emulator import Emulator, Faults
from inert.errors import InvalidOutputError, RefusalError, TruncatedError
from inert.openai import RESPONSES, response, response_object
from inert.testing import op_of

from .conftest import Recorder

MODEL = "gpt-4o-mini"


class Sense(pydantic.BaseModel):
    """A structured answer."""

    definition: str
    examples: list[str]


async def test_structured_body_is_what_responses_parse_sends(
    openai_client: openai.AsyncOpenAI, recorder: Recorder, emu: Emulator
) -> None:
    """response(text_format=M) sends byte for byte what responses.parse(text_format=M) sends."""
    params: dict[str, Any] = {"instructions": "Be brief.", "max_output_tokens": 300}
    parsed = await openai_client.responses.parse(
        model=MODEL, input="Define 'lantern'.", text_format=Sense, **params
    )
    request = response(model=MODEL, input="Define 'lantern'.", text_format=Sense, **params)
    value = await ImmediateRunner(openai_client).run(request)
    sdk_body, ours = (json.loads(body) for body in recorder.bodies)
    assert canonical_dumps(sdk_body) == canonical_dumps(ours)
    assert op_key(RESPONSES, sdk_body) == op_of(request).key
    assert parsed.output_parsed == value
    assert {op_of(request).key: 2} == settled_ledger(emu).counts()


async def test_plain_body_is_what_responses_create_sends(
    openai_client: openai.AsyncOpenAI, recorder: Recorder
) -> None:
    """response() without text_format sends what responses.create() sends, and answers its text."""
    items: Any = [{"role": "user", "content": "Say hello."}]
    created = await openai_client.responses.create(model=MODEL, input=items, temperature=0.5)
    request = response(model=MODEL, input=items, temperature=0.5)
    text = await ImmediateRunner(openai_client).run(request)
    assert json.loads(recorder.bodies[0]) == json.loads(recorder.bodies[1])
    assert created.output_text == text


async def test_response_object_is_the_sdks_typed_response(
    openai_client: openai.AsyncOpenAI,
) -> None:
    """response_object() answers the SDK's own Response model, usage included."""
    answer = await ImmediateRunner(openai_client).run(response_object(model=MODEL, input="Hi."))
    assert isinstance(answer, Response)
    assert answer.usage is not None
    assert answer.usage.input_tokens > 0


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        ("refusal", RefusalError),
        ("truncation", TruncatedError),
        ("invalid_output", InvalidOutputError),
    ],
)
async def test_bad_answers_are_distinct_typed_errors(
    openai_client: openai.AsyncOpenAI, emu: Emulator, fault: str, error: type[Exception]
) -> None:
    """A refusal, an incomplete answer and output that fails validation are distinct errors."""
    emu.set_faults(Faults(**{fault: 1.0}))
    request = response(model=MODEL, input="Define 'owl'.", text_format=Sense)
    (result,) = await ImmediateRunner(openai_client).run_all_settled([request])
    assert error is type(result.failure())


def test_an_incomplete_answer_is_truncated_even_with_text() -> None:
    """status 'incomplete' is a TruncatedError although some text arrived (it is cut)."""
    raw: Any = {
        "status": "incomplete",
        "incomplete_details": {"reason": "max_output_tokens"},
        "output": [
            {"type": "message", "content": [{"type": "output_text", "text": '{"definition'}]}
        ],
    }
    with pytest.raises(TruncatedError, match="max_output_tokens"):
        op_of(response(model=MODEL, input="x", text_format=Sense)).decode(raw)


def test_commentary_is_not_the_answer() -> None:
    """Only final-answer messages make the text (the SDK's rule for the phase field)."""
    raw: Any = {
        "status": "completed",
        "output": [
            {
                "type": "message",
                "phase": "commentary",
                "content": [{"type": "output_text", "text": "thinking..."}],
            },
            {
                "type": "message",
                "phase": "final_answer",
                "content": [{"type": "output_text", "text": "Hello."}],
            },
        ],
    }
    assert "Hello." == op_of(response(model=MODEL, input="x")).decode(raw)


def _robot() -> Any:
    return {"role": "robot", "content": "x"}


@pytest.mark.parametrize(
    ("build", "named"),
    [
        (lambda: response(model=MODEL, input="x", temprature=1.0), "temprature"),
        (lambda: response(model=MODEL, input="x", max_output_tokens="9"), "max_output_tokens"),
        (lambda: response(model=MODEL, input="x", stream=True), "stream"),
        (
            lambda: response(
                model=MODEL, input="x", text_format=Sense, text={"format": {"type": "text"}}
            ),
            "text_format",
        ),
        (lambda: response(model=MODEL, input=[_robot()]), "input"),
        (lambda: response(model=MODEL, input=""), "input"),
    ],
)
def test_bad_arguments_are_refused_by_name(build: Callable[[], object], named: str) -> None:
    """A mistyped, unknown or conflicting argument is refused at build, naming it."""
    with pytest.raises((TypeError, ValueError), match=named):
        build()


def test_a_format_strict_mode_cannot_express_is_refused() -> None:
    """A model with an open dict field is refused at build (the API would 400 every line)."""

    class Open(pydantic.BaseModel):
        counts: dict[str, int]

    with pytest.raises(TypeError, match="strict"):
        response(model=MODEL, input="x", text_format=Open)


async def test_both_runners_answer_responses_alike(
    openai_client: openai.AsyncOpenAI, open_store: Callable[[], Store], emu: Emulator
) -> None:
    """Immediate and batch runs of the same responses requests give identical values."""
    requests: list[Request[Sense]] = [
        response(model=MODEL, input=f"Define '{word}'.", text_format=Sense)
        for word in ("lantern", "owl", "quill")
    ]
    now = await ImmediateRunner(openai_client).run_all(requests)
    emu.reset()
    batch = BatchRunner(
        openai_client,
        store=open_store(),
        poll_interval=0.01,
        poll_interval_max=0.05,
        progress=False,
    )
    later = await batch.run_all(requests)
    assert now == later
    assert 1 == batch.report.batches_created
    assert_billed_once(emu, keys_of(requests))
