"""``inert.anthropic``: the body messages.parse/create send, typed answers, typed errors."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import anthropic
import pydantic
import pytest
from anthropic.types import Message
from tests.billing import settled_ledger

from inert import ImmediateRunner
from inert._json import canonical_dumps, op_key
from inert.anthropic import MESSAGES, message, message_object
from inert.emulator import Emulator, Faults
from inert.errors import InvalidOutputError, RefusalError, TruncatedError
from inert.testing import op_of

from .conftest import Recorder

MODEL = "claude-haiku-4-5"
PROMPT: Any = [{"role": "user", "content": "Define 'lantern'."}]


class Sense(pydantic.BaseModel):
    """A structured answer."""

    definition: str
    examples: list[str]


async def test_structured_body_is_what_messages_parse_sends(
    anthropic_client: anthropic.AsyncAnthropic, recorder: Recorder, emu: Emulator
) -> None:
    """message(output_format=M) sends what messages.parse(output_format=M) sends, billed under op.key."""
    params: dict[str, Any] = {"system": "Be brief.", "metadata": {"user_id": "u-1"}}
    parsed = await anthropic_client.messages.parse(
        model=MODEL, max_tokens=400, messages=PROMPT, output_format=Sense, **params
    )
    request = message(model=MODEL, max_tokens=400, messages=PROMPT, output_format=Sense, **params)
    value = await ImmediateRunner(anthropic=anthropic_client).run(request)
    sdk_body, ours = (json.loads(body) for body in recorder.bodies)
    assert canonical_dumps(sdk_body) == canonical_dumps(ours)
    assert op_key(MESSAGES, sdk_body) == op_of(request).key
    assert parsed.parsed_output == value
    assert {op_of(request).key: 2} == settled_ledger(emu).counts()


async def test_plain_body_is_what_messages_create_sends(
    anthropic_client: anthropic.AsyncAnthropic, recorder: Recorder
) -> None:
    """message() without output_format sends what messages.create() sends; it answers the text."""
    created = await anthropic_client.messages.create(
        model=MODEL, max_tokens=200, messages=PROMPT, stop_sequences=["###"]
    )
    request = message(model=MODEL, max_tokens=200, messages=PROMPT, stop_sequences=["###"])
    text = await ImmediateRunner(anthropic=anthropic_client).run(request)
    assert json.loads(recorder.bodies[0]) == json.loads(recorder.bodies[1])
    block = created.content[0]
    assert block.type == "text"
    assert block.text == text


async def test_message_object_is_the_sdks_typed_message(
    anthropic_client: anthropic.AsyncAnthropic,
) -> None:
    """message_object() answers the SDK's own Message model, usage included."""
    runner = ImmediateRunner(anthropic=anthropic_client)
    answer = await runner.run(message_object(model=MODEL, max_tokens=100, messages=PROMPT))
    assert isinstance(answer, Message)
    assert answer.usage.input_tokens > 0
    assert answer.usage.input_tokens == runner.report.prompt_tokens


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        ("refusal", RefusalError),
        ("truncation", TruncatedError),
        ("invalid_output", InvalidOutputError),
    ],
)
async def test_bad_answers_are_distinct_typed_errors(
    anthropic_client: anthropic.AsyncAnthropic, emu: Emulator, fault: str, error: type[Exception]
) -> None:
    """stop_reason refusal, stop_reason max_tokens and output failing validation are distinct."""
    emu.set_faults(Faults(**{fault: 1.0}))
    request = message(model=MODEL, max_tokens=400, messages=PROMPT, output_format=Sense)
    (result,) = await ImmediateRunner(anthropic=anthropic_client).run_all_settled([request])
    assert error is type(result.failure())


def test_an_answer_cut_at_max_tokens_is_truncated() -> None:
    """stop_reason 'max_tokens' is a TruncatedError even though some text arrived."""
    raw: Any = {
        "type": "message",
        "stop_reason": "max_tokens",
        "content": [{"type": "text", "text": '{"defin'}],
    }
    with pytest.raises(TruncatedError, match="max_tokens"):
        op_of(message(model=MODEL, max_tokens=5, messages=PROMPT)).decode(raw)


def _robot() -> Any:
    return [{"role": "robot", "content": "x"}]


@pytest.mark.parametrize(
    ("build", "named"),
    [
        (lambda: message(model=MODEL, max_tokens=9, messages=PROMPT, temperture=1), "temperture"),
        (
            lambda: message(model=MODEL, max_tokens=9, messages=PROMPT, stop_sequences=3),
            "stop_sequences",
        ),
        (lambda: message(model=MODEL, max_tokens=0, messages=PROMPT), "max_tokens"),
        (lambda: message(model=MODEL, max_tokens=9, messages=PROMPT, stream=True), "stream"),
        (lambda: message(model=MODEL, max_tokens=9, messages=_robot()), "role"),
        (lambda: message(model=MODEL, max_tokens=9, messages=[]), "messages"),
        (
            lambda: message(model=MODEL, max_tokens=9, messages=PROMPT, workspace_id="w"),
            "header",
        ),
        (
            lambda: message(
                model=MODEL,
                max_tokens=9,
                messages=PROMPT,
                output_format=Sense,
                output_config={"format": {"type": "json_schema", "schema": {}}},
            ),
            "output_format",
        ),
    ],
)
def test_bad_arguments_are_refused_by_name(build: Callable[[], object], named: str) -> None:
    """A mistyped, unknown, header-only or conflicting argument is refused at build, naming it."""
    with pytest.raises((TypeError, ValueError), match=named):
        build()


def test_a_format_structured_outputs_cannot_express_is_refused() -> None:
    """A model with an open dict field is refused at build (it could only be answered {})."""

    class Open(pydantic.BaseModel):
        counts: dict[str, int]

    with pytest.raises(TypeError, match=r"\.counts"):
        message(model=MODEL, max_tokens=9, messages=PROMPT, output_format=Open)


def test_other_output_config_settings_stay_beside_the_format() -> None:
    """output_config's own settings (effort) are kept next to the SDK's format, as parse does."""
    op = op_of(
        message(
            model=MODEL,
            max_tokens=9,
            messages=PROMPT,
            output_format=Sense,
            output_config={"effort": "low"},
        )
    )
    config = op.body["output_config"]
    assert isinstance(config, dict)
    assert "low" == config["effort"]
    assert "json_schema" == config["format"]["type"]  # type: ignore[index, call-overload]  # pyright: ignore[reportArgumentType, reportCallIssue, reportIndexIssue, reportOptionalSubscript]  # JSON
