"""``ImmediateRunner``'s per-loop state, shared calls and progress counts, exactly.

Unit-level, as ``test_immediate_units.py``: the SDK client talks to an
``httpx2.MockTransport``. These pin what each event loop gets (its concurrency,
request and token buckets, the pacer), how the in-flight table shares and forgets
identical calls, when a waiting run cancels a call nobody wants any more, and what
the live progress line is told.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx2
import openai
import pytest

from inert import ImmediateRunner, Request
from inert._engine import RawOutcome
from inert._json import JSON
from inert._report import ReportBuilder
from inert._runners._immediate import _VIEW, _abandon, _Call, _forget, _LoopState, _show_pace
from inert._runners._pacing import Pacer
from inert.openai import chat
from inert.testing import op_of

BASE = "https://llm.test/v1"
ANSWER: JSON = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 0,
    "model": "gpt-4o-mini",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "hello", "refusal": None},
            "finish_reason": "stop",
            "logprobs": None,
        }
    ],
    "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
}


def client(handler: Any = None) -> openai.AsyncOpenAI:
    def ok(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, json=ANSWER)

    return openai.AsyncOpenAI(
        api_key="sk-test",
        base_url=BASE,
        http_client=httpx2.AsyncClient(transport=httpx2.MockTransport(handler or ok)),
    )


def hello(text: str = "hi") -> Request[str]:
    return chat(model="gpt-4o-mini", messages=[{"role": "user", "content": text}])


# --- settings kept for the wire ----------------------------------------------------------


def test_the_http_timeouts_are_the_attempt_and_connect_deadlines() -> None:
    runner = ImmediateRunner(client(), timeout=12, connect_timeout=3)
    timeouts = runner._timeouts
    assert (3.0, 12, 12, 12) == (timeouts.connect, timeouts.read, timeouts.write, timeouts.pool)
    unlimited = ImmediateRunner(client(), timeout=None)._timeouts
    assert (5.0, None, None, None) == (
        unlimited.connect,
        unlimited.read,
        unlimited.write,
        unlimited.pool,
    )


# --- per-loop state ----------------------------------------------------------------------


def test_a_loop_state_holds_the_runners_limits() -> None:
    async def check() -> None:
        state = _LoopState(7, 120.0, 600.0, learn=True)
        assert 7 == state.semaphore._value
        assert state.requests is not None
        assert state.tokens is not None
        assert (2.0, 1.0) == (state.requests.max_rate, state.requests.time_period)
        assert (100.0, 10.0) == (state.tokens.max_rate, state.tokens.time_period)
        assert isinstance(state.pacer, Pacer)
        assert 7 == state.pacer.blind
        assert ({}, 0.0) == (state.in_flight, state.paced_at)
        bare = _LoopState(1, None, None, learn=False)
        assert (None, None, None) == (bare.requests, bare.tokens, bare.pacer)

    asyncio.run(check())


def test_each_loop_gets_its_own_state_and_closed_loops_are_dropped() -> None:
    runner = ImmediateRunner(
        client(), max_concurrency=3, requests_per_minute=60, tokens_per_minute=6000
    )

    async def state() -> _LoopState:
        first = runner._state()
        assert first is runner._state()  # one per loop
        return first

    one = asyncio.run(state())
    assert 3 == one.semaphore._value
    assert one.requests is not None
    assert one.tokens is not None
    assert (1.0, 1.0) == (one.requests.max_rate, one.requests.time_period)
    assert (1000.0, 10.0) == (one.tokens.max_rate, one.tokens.time_period)
    assert one.pacer is not None
    two = asyncio.run(state())
    assert two is not one
    assert [two] == list(runner._loops.values())  # the first loop closed: its state went


def test_no_pacer_without_learning_limits() -> None:
    runner = ImmediateRunner(client(), learn_limits=False)

    async def state() -> _LoopState:
        return runner._state()

    assert asyncio.run(state()).pacer is None


# --- shared calls ------------------------------------------------------------------------


def test_a_finished_call_is_forgotten_unless_a_newer_one_took_its_key() -> None:
    old, new = _Call(), _Call()
    table = {"k": new}
    _forget(table, "k", old)
    assert {"k": new} == table
    _forget(table, "k", new)
    assert {} == table
    _forget(table, "gone", new)
    assert {} == table


def test_a_call_nobody_waits_for_is_cancelled_only_before_it_is_on_the_wire() -> None:
    async def check() -> None:
        never: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        async def forever() -> RawOutcome:
            await never
            raise AssertionError("never answered")

        def call_of(wanted: int, posting: bool) -> _Call:
            call = _Call()
            call.wanted, call.posting = wanted, posting
            call.task = asyncio.create_task(forever())
            return call

        wanted = call_of(1, posting=False)
        on_wire = call_of(0, posting=True)
        unwanted = call_of(0, posting=False)
        for call in (wanted, on_wire, unwanted):
            _abandon(call)
        await asyncio.sleep(0)
        assert (False, False, True) == (
            wanted.task.cancelled(),
            on_wire.task.cancelled(),
            unwanted.task.cancelled(),
        )
        for call in (wanted, on_wire):
            call.task.cancel()
        await asyncio.gather(wanted.task, on_wire.task, return_exceptions=True)

    asyncio.run(check())


def test_an_ended_attempt_wakes_the_run_waiting_for_it() -> None:
    async def check() -> None:
        call = _Call()
        call.posting = True
        call.wire_done = asyncio.get_running_loop().create_future()
        done = call.wire_done
        call.attempt_ended()
        assert not call.posting
        assert done.done()
        assert call.wire_done is None
        call.attempt_ended()  # nobody waits: nothing to wake
        assert not call.posting

    asyncio.run(check())


async def test_identical_calls_of_concurrent_runs_are_sent_once() -> None:
    sent: list[httpx2.Request] = []
    gate, arrived = asyncio.Event(), asyncio.Event()

    async def slow(request: httpx2.Request) -> httpx2.Response:
        sent.append(request)
        arrived.set()
        await gate.wait()
        return httpx2.Response(200, json=ANSWER)

    runner = ImmediateRunner(
        openai.AsyncOpenAI(
            api_key="sk-test",
            base_url=BASE,
            http_client=httpx2.AsyncClient(transport=httpx2.MockTransport(slow)),
        ),
        learn_limits=False,
        progress=False,
    )
    first = asyncio.ensure_future(runner.run(hello("same")))
    second = asyncio.ensure_future(runner.run(hello("same")))
    await arrived.wait()
    for _ in range(20):  # let the second run reach the call the first one started
        await asyncio.sleep(0)
    state = next(iter(runner._loops.values()))
    (call,) = state.in_flight.values()
    assert 2 == call.wanted
    gate.set()
    assert ["hello", "hello"] == list(await asyncio.gather(first, second))
    assert 1 == len(sent)
    assert {} == state.in_flight


# --- the progress line -------------------------------------------------------------------


class View:
    """What the progress line is told."""

    def __init__(self) -> None:
        self.events: list[tuple[str, object]] = []

    def found(self, count: int, report: ReportBuilder) -> None:
        self.events.append(("found", count))

    def answered(self, failed: bool) -> None:
        self.events.append(("answered", failed))

    def paced(self, pace: str) -> None:
        self.events.append(("paced", pace))


async def test_the_progress_line_counts_calls_found_and_answered() -> None:
    def answer(request: httpx2.Request) -> httpx2.Response:
        if b"bad" in request.content:
            return httpx2.Response(400, json={"error": {"message": "no", "type": "x"}})
        return httpx2.Response(200, json=ANSWER)

    runner = ImmediateRunner(client(answer), learn_limits=False, progress=False)
    view = View()
    token = _VIEW.set(view)  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]  # a recording stand-in for CallProgress
    try:
        report = ReportBuilder()
        ops = [op_of(hello("a")), op_of(hello("bad")), op_of(hello("c"))]
        outcomes = await runner._send(ops, report)
        assert 3 == len(outcomes)
        await runner._send([op_of(hello("bad"))], report)
    finally:
        _VIEW.reset(token)
    assert [
        ("found", 3),
        ("answered", False),
        ("answered", True),
        ("answered", False),
        ("found", 1),
        ("answered", True),
    ] == view.events  # no pacer: no pace to show


def test_the_pace_is_shown_at_most_twice_a_second(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [100.0]
    monkeypatch.setattr("inert._runners._immediate.time.monotonic", lambda: now[0])
    view = View()
    state = _LoopState(1, None, None, learn=True)
    _show_pace(view, state)  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]  # a recording stand-in for CallProgress
    assert [("paced", "")] == view.events
    assert 100.0 == state.paced_at
    now[0] = 100.4
    _show_pace(view, state)  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]  # a recording stand-in for CallProgress
    assert 1 == len(view.events)
    now[0] = 100.5
    _show_pace(view, state)  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]  # a recording stand-in for CallProgress
    assert 2 == len(view.events)
    assert 100.5 == state.paced_at
    unpaced = _LoopState(1, None, None, learn=False)
    now[0] = 200.0
    _show_pace(view, unpaced)  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]  # a recording stand-in for CallProgress
    assert (2, 0.0) == (len(view.events), unpaced.paced_at)
