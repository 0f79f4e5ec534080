"""Injected faults, each observed through the SDK, and how they are billed."""

from __future__ import annotations

import asyncio
from typing import Any

import openai
import pydantic
import pytest
from tests.billing import settled_ledger

from inert._json import op_key
from inert.emulator import Emulator, Faults, main


class Word(pydantic.BaseModel):
    lemma: str
    part_of_speech: str
    syllables: int


def messages(prompt: str) -> list[Any]:
    """A one-message conversation."""
    return [{"role": "user", "content": prompt}]


def test_rate_limit_is_a_429_with_retry_after(client: openai.OpenAI, emu: Emulator) -> None:
    """Every attempt rate-limited gives RateLimitError with a short Retry-After, and no charge."""
    emu.set_faults(Faults(rate_limit=1.0))
    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(model="m", messages=messages("hi"))
    assert "rate_limit_exceeded" == caught.value.code
    assert float(caught.value.response.headers["retry-after"]) < 1
    assert 0 == settled_ledger(emu).total_billed()


def test_server_error_is_a_5xx(client: openai.OpenAI, emu: Emulator) -> None:
    """Every attempt failing with a server error gives InternalServerError."""
    emu.set_faults(Faults(server_error=1.0))
    with pytest.raises(openai.InternalServerError) as caught:
        client.chat.completions.create(model="m", messages=messages("hi"))
    assert caught.value.status_code in (500, 503)
    assert 0 == settled_ledger(emu).total_billed()


def test_disconnect_is_a_connection_error(client: openai.OpenAI, emu: Emulator) -> None:
    """A dropped connection surfaces as APIConnectionError, and is not billed."""
    emu.set_faults(Faults(disconnect=1.0))
    with pytest.raises(openai.APIConnectionError):
        client.embeddings.create(model="emb", input="hi")
    assert 0 == settled_ledger(emu).total_billed()


async def test_retried_calls_are_billed_once(emu: Emulator) -> None:
    """Under frequent 429s, 5xx and drops, retrying clients succeed and each call is billed once."""
    emu.set_faults(Faults(rate_limit=0.2, server_error=0.1, disconnect=0.1))
    sdk = openai.AsyncOpenAI(base_url=emu.base_url, api_key="test", max_retries=20)
    prompts = [f"prompt {i}" for i in range(30)]
    async with sdk:
        await asyncio.gather(
            *(sdk.chat.completions.create(model="m", messages=messages(p)) for p in prompts)
        )
    keys = [
        op_key("/v1/chat/completions", {"model": "m", "messages": messages(p)}) for p in prompts
    ]
    assert [1] * 30 == [settled_ledger(emu).times_billed(key) for key in keys]
    assert 30 == settled_ledger(emu).total_billed()


def test_refusal_sets_refusal(client: openai.OpenAI, emu: Emulator) -> None:
    """A refusal leaves the content empty and sets message.refusal, and is billed."""
    emu.set_faults(Faults(refusal=1.0))
    completion = client.chat.completions.parse(
        model="m", messages=messages("hi"), response_format=Word
    )
    message = completion.choices[0].message
    assert (None, None) == (message.content, message.parsed)
    assert message.refusal
    assert 1 == settled_ledger(emu).total_billed()


def test_truncation_is_a_length_finish(client: openai.OpenAI, emu: Emulator) -> None:
    """A truncated answer has finish_reason length, and parse raises LengthFinishReasonError."""
    emu.set_faults(Faults(truncation=1.0))
    completion = client.chat.completions.create(model="m", messages=messages("hi"))
    assert "length" == completion.choices[0].finish_reason
    with pytest.raises(openai.LengthFinishReasonError):
        client.chat.completions.parse(model="m", messages=messages("hi"), response_format=Word)
    assert 2 == settled_ledger(emu).total_billed()


def test_invalid_output_fails_validation(client: openai.OpenAI, emu: Emulator) -> None:
    """An invalid answer is JSON that does not validate against the schema."""
    emu.set_faults(Faults(invalid_output=1.0))
    with pytest.raises(pydantic.ValidationError):
        client.chat.completions.parse(model="m", messages=messages("hi"), response_format=Word)
    assert 1 == settled_ledger(emu).total_billed()


def test_answer_faults_are_fixed_per_body(client: openai.OpenAI, emu: Emulator) -> None:
    """With half the bodies refused, the same body is refused on every call and others are not."""
    emu.set_faults(Faults(refusal=0.5))
    prompts = [f"word {i}" for i in range(20)]

    def refused() -> list[bool]:
        answers = [client.chat.completions.create(model="m", messages=messages(p)) for p in prompts]
        return [a.choices[0].message.refusal is not None for a in answers]

    first = refused()
    assert first == refused()
    assert 0 < sum(first) < 20


def test_latency_is_added(client: openai.OpenAI, emu: Emulator) -> None:
    """Added latency delays every chat request by at least that long."""
    import time

    emu.set_latency_ms(150)
    started = time.perf_counter()
    client.chat.completions.create(model="m", messages=messages("hi"))
    assert time.perf_counter() - started >= 0.15


def test_faults_parse_from_specs() -> None:
    """KIND=RATE specs build Faults."""
    assert Faults(rate_limit=0.25, line_failed=1.0) == Faults.parse(
        ["rate_limit=0.25", "line_failed=1"]
    )


@pytest.mark.parametrize(
    ("spec", "named"),
    [
        ("bogus=0.1", "unknown fault kind 'bogus'"),
        ("rate_limit=2", "from 0 to 1"),
        ("refusal", "KIND=RATE"),
    ],
)
def test_bad_fault_flags_are_argparse_errors(
    capsys: pytest.CaptureFixture[str], spec: str, named: str
) -> None:
    """A bad --fault exits with status 2 and a message naming the problem."""
    with pytest.raises(SystemExit) as exited:
        main(["--port", "0", "--fault", spec])
    assert 2 == exited.value.code
    assert named in capsys.readouterr().err


def test_out_of_range_rates_are_refused() -> None:
    """Faults refuses a rate outside 0..1, naming the kind."""
    with pytest.raises(ValueError, match="disconnect"):
        Faults(disconnect=1.5)
