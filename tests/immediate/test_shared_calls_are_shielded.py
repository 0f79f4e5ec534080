"""Runs on one runner share identical calls in flight; stopping one never stops the other."""

from __future__ import annotations

import asyncio

import openai
import pytest
from tests.billing import assert_billed_once, assert_reports_add_up, keys_of

from inert import ImmediateRunner, Request, RunReport
from inert.emulator import Emulator
from inert.openai import chat, structured

from .conftest import SLOW_MARK, Recorder, Synonyms

MODEL = "gpt-4o-mini"


def _ask(word: str) -> Request[Synonyms]:
    return structured(
        model=MODEL,
        messages=[{"role": "user", "content": f"Synonyms of {word!r}."}],
        response_format=Synonyms,
    )


async def test_cancelling_the_run_that_sent_a_shared_call_leaves_the_other_its_answer(
    client: openai.AsyncOpenAI, emulator: Emulator, recorder: Recorder
) -> None:
    """The run that started a call is cancelled mid-call; the run sharing it still gets it."""
    emulator.set_latency_ms(300)
    runner = ImmediateRunner(client)
    owner = asyncio.ensure_future(runner.run(_ask("shared")))
    await recorder.until(lambda r: r.in_flight == 1)
    sharer = asyncio.ensure_future(runner.run(_ask("shared")))
    await asyncio.sleep(0.02)  # the sharer is now waiting on the owner's call
    owner.cancel()
    assert isinstance(await sharer, Synonyms)
    with pytest.raises(asyncio.CancelledError):
        await owner
    assert_billed_once(emulator, keys_of([_ask("shared")]))


async def test_a_shared_call_not_yet_sent_survives_the_cancel_of_one_waiting_run(
    client: openai.AsyncOpenAI, emulator: Emulator, recorder: Recorder
) -> None:
    """A call queued behind a slow one is kept for the run still waiting when another stops."""
    recorder.slow_seconds = 0.4
    runner = ImmediateRunner(client, max_concurrency=1)
    slow = chat(model=MODEL, messages=[{"role": "user", "content": f"{SLOW_MARK} first"}])
    stopped = asyncio.ensure_future(runner.run_all([slow, _ask("queued").map(str)]))
    await recorder.until(lambda r: r.in_flight == 1)
    waiting = asyncio.ensure_future(runner.run(_ask("queued")))
    await asyncio.sleep(0.02)
    stopped.cancel()
    assert isinstance(await waiting, Synonyms)
    with pytest.raises(asyncio.CancelledError):
        await stopped
    # The slow call (on the wire when its run stopped) and the shared one, once each.
    assert_billed_once(emulator, keys_of([slow, _ask("queued")]))


async def test_a_call_nobody_waits_for_any_more_is_never_sent(
    client: openai.AsyncOpenAI, emulator: Emulator, recorder: Recorder
) -> None:
    """When the only run waiting for a queued call stops, the call is dropped unsent."""
    recorder.slow_seconds = 0.3
    runner = ImmediateRunner(client, max_concurrency=1)
    slow = chat(model=MODEL, messages=[{"role": "user", "content": f"{SLOW_MARK} first"}])
    run = asyncio.ensure_future(runner.run_all([slow, _ask("never sent").map(str)]))
    await recorder.until(lambda r: r.in_flight == 1)
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    await asyncio.sleep(0.05)  # give a wrongly surviving call the chance to go out
    assert 1 == len(recorder.bodies)
    assert_billed_once(emulator, keys_of([slow]))


async def test_runs_sharing_calls_in_flight_report_each_call_sent_and_paid_once(
    client: openai.AsyncOpenAI, emulator: Emulator, recorder: Recorder
) -> None:
    """A run that waits for another run's call counts it as answered without a call of its
    own: between them the two reports send, pay and count the tokens of each call once."""
    emulator.set_latency_ms(300)
    runner = ImmediateRunner(client)
    requests = [_ask(f"shared {i}") for i in range(5)]
    reports: list[RunReport] = []

    async def run() -> None:
        await runner.run_all(requests)
        reports.append(runner.report)  # set as run_all returns: this run's own report

    first = asyncio.ensure_future(run())
    await recorder.until(lambda r: r.in_flight == len(requests))
    await run()  # every call it needs is on the wire for the first run
    await first
    assert_billed_once(emulator, keys_of(requests))
    assert_reports_add_up(emulator, reports)
    assert [(5, 0), (0, 5)] == sorted((r.ops_sent, r.cache_hits) for r in reports)[::-1]
