"""The runner learns each model's limits from its answers and paces itself just under them.

Against the emulator's RPM/TPM buckets (``Emulator.set_rate_limits``), whose own
ledger of what it admitted and refused (``rate_limits.events()``) is the judge.
Short windows keep the buckets small, so the tests take a second or two.
"""

from __future__ import annotations

import asyncio
import time

import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from inert import ImmediateRunner, Request, gather_all
from inert._runners._immediate import _VIEW
from inert.emulator import Emulator
from inert.errors import RateLimitError
from inert.openai import chat

from .conftest import Recorder

MODEL = "gpt-4o-mini"


def _hello(i: int, *, max_tokens: int | None = None) -> Request[str]:
    messages: list[ChatCompletionMessageParam] = [{"role": "user", "content": f"hello {i}"}]
    if max_tokens is None:
        return chat(model=MODEL, messages=messages)
    return chat(model=MODEL, messages=messages, max_tokens=max_tokens)


def _refused(emulator: Emulator) -> int:
    return sum(not event.admitted for event in emulator.rate_limits.events())


async def test_limits_are_learned_from_the_answers_without_configuration(
    client: openai.AsyncOpenAI, emulator: Emulator
) -> None:
    """Nothing is configured; after a few calls the runner knows the model's RPM and TPM."""
    emulator.set_rate_limits(rpm=600, tpm=90_000)
    runner = ImmediateRunner(client)
    await runner.run_all([_hello(i) for i in range(3)])
    assert {MODEL: (600.0, 90_000.0)} == runner.learned_limits


async def test_a_model_without_limits_is_not_paced(
    client: openai.AsyncOpenAI, emulator: Emulator
) -> None:
    """Answers without rate-limit headers leave the model unlimited (nothing learned)."""
    runner = ImmediateRunner(client)
    await runner.run_all([_hello(i) for i in range(3)])
    assert {} == runner.learned_limits


async def test_pacing_keeps_a_run_under_the_limit_where_blind_sending_does_not(
    client: openai.AsyncOpenAI, emulator: Emulator
) -> None:
    """75 calls into a bucket of 15 that refills 30 a second: paced, a few 429s; blind, a storm.

    The rate is low enough for a busy machine to exceed it when sending blind. The two
    runs meet the same machine at the same moment, so they are compared with each
    other: a loaded machine delays answers, and with them the readings the pace is
    set by (a few more 429s, 0 or 1 on a quiet machine, 6 seen under load), but
    pacing still cuts the refusals thirtyfold or more.
    """
    emulator.set_latency_ms(5)
    emulator.set_rate_limits(rpm=1_800, window=0.5)
    paced = ImmediateRunner(client, max_concurrency=12, backoff_base=0.01)
    await paced.run_all([_hello(i) for i in range(75)])
    paced_refusals = _refused(emulator)
    emulator.reset()  # full buckets, no events
    blind = ImmediateRunner(client, max_concurrency=12, learn_limits=False, backoff_base=0.01)
    await blind.run_all_settled([_hello(i) for i in range(100, 175)])  # some spend their retries
    blind_refusals = _refused(emulator)
    assert blind_refusals >= 100, blind_refusals  # sending blind is a storm of 429s
    assert 30 * paced_refusals <= blind_refusals, (paced_refusals, blind_refusals)


async def test_a_limit_lowered_mid_run_is_followed(
    client: openai.AsyncOpenAI, emulator: Emulator, recorder: Recorder
) -> None:
    """The limit drops to half while a run is under way; the runner follows within a few answers."""
    emulator.set_latency_ms(5)
    emulator.set_rate_limits(rpm=12_000, window=0.5)
    runner = ImmediateRunner(client, max_concurrency=16, backoff_base=0.01)
    run = asyncio.ensure_future(runner.run_all([_hello(i) for i in range(300)]))
    await recorder.until(lambda r: len(r.answers) >= 100)
    emulator.set_rate_limits(rpm=6_000, window=0.5)
    lowered = len(emulator.rate_limits.events())
    await run
    after = emulator.rate_limits.events()[lowered:]
    late = after[len(after) // 2 :]
    assert {MODEL: (6_000.0, None)} == runner.learned_limits
    # One wave of calls in flight may meet the new limit; once learned, none does.
    assert sum(not e.admitted for e in after) <= 16 + 4
    assert sum(not e.admitted for e in late) <= 2


async def test_a_429_holds_every_call_of_the_model_not_only_the_refused_one(
    client: openai.AsyncOpenAI, emulator: Emulator, recorder: Recorder
) -> None:
    """Another client drained the bucket: after the first 429, no call of the model starts early."""
    emulator.set_rate_limits(rpm=120, window=5.0)  # ten in the bucket, two a second
    async with openai.AsyncOpenAI(base_url=emulator.base_url, api_key="k", max_retries=0) as other:
        for i in range(10):
            await other.chat.completions.create(
                model=MODEL, messages=[{"role": "user", "content": f"drain {i}"}]
            )
    runner = ImmediateRunner(client, max_concurrency=1, backoff_base=0.001, backoff_max=0.001)
    await runner.run_all([_hello(1), _hello(2)])
    (_, refused_at, status, retry_after), *later = sorted(recorder.answers)
    assert 429 == status
    assert retry_after is not None
    # The refused call's retry and the other call, never refused, both waited for it.
    assert all(start >= refused_at + 0.9 * retry_after for start, _, _, _ in later)
    assert [200, 200] == [s for _, _, s, _ in later if s == 200]


async def test_a_request_larger_than_the_whole_limit_fails_at_once(
    client: openai.AsyncOpenAI, emulator: Emulator, recorder: Recorder
) -> None:
    """OpenAI's 'Request too large' can never succeed: no retry, a RateLimitError."""
    emulator.set_rate_limits(tpm=1_000)
    with pytest.raises(RateLimitError, match="Request too large"):
        await ImmediateRunner(client).run(_hello(0, max_tokens=5_000))
    assert 1 == len(recorder.bodies)


async def test_a_token_cap_holds_even_when_the_server_allows_far_more(
    client: openai.AsyncOpenAI, emulator: Emulator
) -> None:
    """tokens_per_minute stays a cap under learned limits: 12 calls of ~1,000 tokens take seconds."""
    emulator.set_rate_limits(rpm=100_000, tpm=10_000_000)
    runner = ImmediateRunner(client, tokens_per_minute=60_000)  # 1,000 a second, 10 s' burst
    started = time.perf_counter()
    await runner.run_all([_hello(i, max_tokens=1_000) for i in range(12)])
    elapsed = time.perf_counter() - started
    # Each call is charged at least 1,000 tokens: 12,000 against a burst of 10,000.
    assert elapsed >= 1.9
    assert {MODEL: (100_000.0, 10_000_000.0)} == runner.learned_limits


async def test_the_progress_line_shows_the_pace_against_the_limit(
    client: openai.AsyncOpenAI, emulator: Emulator
) -> None:
    """While a run is live, its progress line names the model, its pace and its limits."""
    emulator.set_rate_limits(rpm=6_000, tpm=1_000_000)
    seen: list[str] = []

    def look(text: str) -> Request[str]:
        view = _VIEW.get()
        seen.append("" if view is None else view.line())
        return _hello(99)

    first = [_hello(i) for i in range(5)]
    await ImmediateRunner(client, progress=True).run_all(
        [*first, gather_all(first).then(lambda texts: look(texts[0]))]
    )
    (line,) = seen
    assert "pace gpt-4o-mini" in line
    assert "/6k rpm" in line
    assert "/1M tpm" in line
