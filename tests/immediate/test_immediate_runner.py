"""``ImmediateRunner`` against the emulator through the real SDK: faults, limits, pipelining."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import openai
import pytest
from tests.billing import assert_billed_once, keys_of, settled_ledger

from inert import ImmediateRunner, Op, Request, gather
from inert._json import JSON
from inert.emulator import Emulator, Faults
from inert.emulator._answers import chat_completion
from inert.errors import ApiError, ConnectionFailedError, RateLimitError
from inert.openai import chat, structured
from inert.testing import FakeRunner

from .conftest import SLOW_MARK, Recorder, Synonyms

MODEL = "gpt-4o-mini"


def _fast(client: openai.AsyncOpenAI, *, max_retries: int = 6) -> ImmediateRunner:
    """A runner with short backoffs, which keep the fault tests quick."""
    return ImmediateRunner(client, max_retries=max_retries, backoff_base=0.005, backoff_max=0.05)


def _emulator_answer(op: Op[Any]) -> JSON:
    """The emulator's fault-free answer to an op, computed without HTTP."""
    answer, _, _ = chat_completion(op.body, op.key, Faults(), created=0, request_id="fake")
    return answer


def _ask(word: str) -> Request[Synonyms]:
    return structured(
        model=MODEL,
        messages=[{"role": "user", "content": f"Synonyms of {word!r}."}],
        response_format=Synonyms,
    )


@pytest.mark.parametrize("kind", ["rate_limit", "server_error", "disconnect"])
async def test_transient_faults_are_retried_to_success(
    client: openai.AsyncOpenAI, emulator: Emulator, kind: str
) -> None:
    """429s, 5xx and dropped connections are retried until every request succeeds."""
    emulator.set_faults(Faults(**{kind: 0.5}))
    runner = _fast(client, max_retries=20)
    requests = [_ask(f"w{i}") for i in range(20)]
    results = await runner.run_all(requests)
    assert 20 == len(results)
    assert runner.report.retries > 0
    assert_billed_once(emulator, keys_of(requests))


@pytest.mark.parametrize(
    ("kind", "error"),
    [
        ("rate_limit", RateLimitError),
        ("server_error", ApiError),
        ("disconnect", ConnectionFailedError),
    ],
)
async def test_spent_retries_end_in_a_typed_error(
    client: openai.AsyncOpenAI, emulator: Emulator, kind: str, error: type[Exception]
) -> None:
    """When every attempt fails, the last failure surfaces as an inert error."""
    emulator.set_faults(Faults(**{kind: 1.0}))
    runner = _fast(client, max_retries=2)
    with pytest.raises(error):
        await runner.run(_ask("bright"))
    assert 2 == runner.report.retries
    assert_billed_once(emulator, [])


async def test_a_bad_request_fails_at_once_without_retry(
    client: openai.AsyncOpenAI, recorder: Recorder
) -> None:
    """A 400 is an ApiError with its status and code, and is never retried."""
    runner = _fast(client)
    request = chat(model=MODEL, messages=[{"role": "user", "content": "hi"}], n=2)
    with pytest.raises(ApiError) as caught:
        await runner.run(request)
    assert (400, "invalid_value") == (caught.value.status, caught.value.code)
    assert 0 == runner.report.retries
    assert 1 == len(recorder.bodies)


async def test_retry_after_is_honoured(client: openai.AsyncOpenAI, emulator: Emulator) -> None:
    """After a 429 the runner waits at least the server's retry-after before retrying."""
    emulator.set_time_scale(4.0)  # the emulator asks for 0.05 s x time_scale
    emulator.set_faults(Faults(rate_limit=1.0))
    runner = ImmediateRunner(client, max_retries=1, backoff_base=0.001, backoff_max=0.001)
    started = time.perf_counter()
    with pytest.raises(RateLimitError):
        await runner.run(_ask("bright"))
    assert time.perf_counter() - started >= 0.2


async def test_two_thousand_requests_survive_twenty_percent_faults(
    client: openai.AsyncOpenAI, emulator: Emulator
) -> None:
    """With 20% 429/5xx/dropped attempts every result equals the fault-free one, billed once."""
    requests = [_ask(f"word {i}") for i in range(2000)]
    clean = await FakeRunner(_emulator_answer).run_all(requests)
    emulator.set_faults(Faults(rate_limit=0.07, server_error=0.07, disconnect=0.06))
    runner = _fast(client, max_retries=12)
    faulted = await runner.run_all(requests)
    assert clean == faulted
    assert_billed_once(emulator, keys_of(requests))
    assert runner.report.retries > 0
    billed = sum(entry.prompt_tokens for entry in settled_ledger(emulator).entries())
    assert billed == runner.report.prompt_tokens


async def test_concurrency_never_exceeds_the_limit(
    client: openai.AsyncOpenAI, emulator: Emulator, recorder: Recorder
) -> None:
    """At most max_concurrency requests are in flight, and the limit is used in full."""
    emulator.set_latency_ms(20)
    await ImmediateRunner(client, max_concurrency=8).run_all([_ask(f"w{i}") for i in range(60)])
    assert 8 == recorder.peak


async def test_a_dependent_call_starts_before_an_unrelated_slow_one_ends(
    client: openai.AsyncOpenAI, recorder: Recorder
) -> None:
    """Pipelining: a call that depends on a fast one does not wait for a slow sibling."""
    recorder.slow_seconds = 0.6
    slow = chat(model=MODEL, messages=[{"role": "user", "content": f"{SLOW_MARK} please"}])
    dependent = chat(model=MODEL, messages=[{"role": "user", "content": "first"}]).then(
        lambda text: chat(model=MODEL, messages=[{"role": "user", "content": f"after {text}"}])
    )
    await ImmediateRunner(client).run(gather(slow, dependent))
    spans = {body: (start, end) for body, start, end in recorder.spans}
    slow_end = next(end for body, (_, end) in spans.items() if SLOW_MARK.encode() in body)
    after_start = next(start for body, (start, _) in spans.items() if b"after " in body)
    assert after_start < slow_end


async def test_identical_requests_in_one_run_are_sent_once(
    client: openai.AsyncOpenAI, emulator: Emulator
) -> None:
    """Two identical structured requests in one run_all are one API call."""
    runner = ImmediateRunner(client)
    first, second = await runner.run_all([_ask("bright"), _ask("bright")])
    assert first == second
    assert_billed_once(emulator, keys_of([_ask("bright")]))
    assert 1 == runner.report.ops_deduplicated


async def test_identical_ops_in_flight_across_runs_are_sent_once(
    client: openai.AsyncOpenAI, emulator: Emulator
) -> None:
    """Concurrent runs on one runner share an identical call already in flight."""
    emulator.set_latency_ms(50)
    runner = ImmediateRunner(client)
    first, second = await asyncio.gather(runner.run(_ask("bright")), runner.run(_ask("bright")))
    assert first == second
    assert_billed_once(emulator, keys_of([_ask("bright")]))


async def test_dedup_false_sends_every_occurrence(
    client: openai.AsyncOpenAI, emulator: Emulator
) -> None:
    """Requests built with dedup=False are separate calls even when identical."""
    sample = chat(model=MODEL, messages=[{"role": "user", "content": "hi"}], dedup=False)
    await ImmediateRunner(client).run_all([sample, sample, sample])
    assert [3] == list(settled_ledger(emulator).counts().values())


def test_blocking_twin_runs_outside_an_event_loop(emulator: Emulator) -> None:
    """run_all_sync works in plain scripts."""
    sdk = openai.AsyncOpenAI(base_url=emulator.base_url, api_key="test-key")
    results = ImmediateRunner(sdk).run_all_sync([_ask("bright"), _ask("dim")])
    assert [Synonyms, Synonyms] == [type(r) for r in results]


def test_blocking_twin_can_be_called_again_with_the_same_client(emulator: Emulator) -> None:
    """Script and notebook users call the blocking twin repeatedly on one client."""
    runner = ImmediateRunner(openai.AsyncOpenAI(base_url=emulator.base_url, api_key="test-key"))
    first = runner.run_all_sync([_ask("bright")])
    second = runner.run_all_sync([_ask("dim")])
    third = runner.run_sync(_ask("calm"))
    assert [Synonyms, Synonyms, Synonyms] == [type(r) for r in [*first, *second, third]]
    assert_billed_once(emulator, keys_of([_ask("bright"), _ask("dim"), _ask("calm")]))


async def test_blocking_twin_refuses_a_running_loop(client: openai.AsyncOpenAI) -> None:
    """run_all_sync inside a running loop fails with a message pointing at await."""
    with pytest.raises(RuntimeError, match=r"await runner\.run_all"):
        ImmediateRunner(client).run_all_sync([_ask("bright")])


async def test_usage_and_cost_are_reported(client: openai.AsyncOpenAI, emulator: Emulator) -> None:
    """Tokens in the report are the ones billed; cost comes from the price table."""
    runner = ImmediateRunner(client)
    await runner.run_all([_ask("a"), _ask("b")])
    entries = settled_ledger(emulator).entries()
    report = runner.report
    expected = (
        sum(e.prompt_tokens for e in entries),
        sum(e.completion_tokens for e in entries),
    )
    assert expected == (report.prompt_tokens, report.completion_tokens)
    assert report.cost_usd > 0
    assert 2 == report.ops_sent


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("max_concurrency", 0),
        ("max_retries", -1),
        ("requests_per_minute", 0),
        ("tokens_per_minute", float("nan")),
        ("backoff_base", -1.0),
        ("timeout", 0),
    ],
)
def test_bad_settings_are_refused_by_name(setting: str, value: Any) -> None:
    """A setting out of range raises ValueError naming the setting."""
    sdk = openai.AsyncOpenAI(base_url="http://127.0.0.1:9/v1", api_key="test-key")
    with pytest.raises(ValueError, match=setting):
        ImmediateRunner(sdk, **{setting: value})


async def test_rate_limits_pace_requests(client: openai.AsyncOpenAI) -> None:
    """requests_per_minute spreads requests out once the limiter's burst is spent."""
    runner = ImmediateRunner(client, requests_per_minute=600)  # ten a second
    started = time.perf_counter()
    # The first ten spend the burst; the last three wait for the bucket to drain.
    # Only a lower bound is asserted, so a slow machine cannot make this fail.
    await runner.run_all([_ask(f"w{i}") for i in range(13)])
    assert time.perf_counter() - started >= 0.2


def test_the_api_key_is_not_in_the_repr() -> None:
    """The runner's repr shows settings, never the client or its key."""
    sdk = openai.AsyncOpenAI(base_url="http://127.0.0.1:9/v1", api_key="sk-secret-123")
    assert "sk-secret" not in repr(ImmediateRunner(sdk))


async def test_progress_display_counts_calls_answered(
    client: openai.AsyncOpenAI, capsys: pytest.CaptureFixture[str]
) -> None:
    """With progress on, stderr ends with the calls sent and paid, and never the key."""
    runner = ImmediateRunner(client, progress=True)
    await runner.run_all([_ask("one").then(lambda _: _ask("two")), _ask("three")])
    err = capsys.readouterr().err
    assert "calls" in err
    assert "2 rounds · 3 calls sent, 3 paid" in err
    assert "test-key" not in err


async def test_progress_display_is_off_when_stderr_is_not_a_terminal(
    client: openai.AsyncOpenAI, capsys: pytest.CaptureFixture[str]
) -> None:
    """By default the display appears only on a terminal (pytest's stderr is not one)."""
    await ImmediateRunner(client).run_all([_ask("quiet")])
    assert "" == capsys.readouterr().err
