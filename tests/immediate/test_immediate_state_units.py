"""``ImmediateRunner``'s per-loop state, shared calls and progress counts, exactly.

Unit-level, as ``test_immediate_units.py``: the SDK client talks to an
``httpx2.MockTransport``. These pin what each event loop gets (its concurrency,
request and token buckets, the pacer), how the in-flight table shares and forgets
identical calls, when a waiting run cancels a call nobody wants any more, and what
the live progress line is told.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any, ClassVar

import anthropic
import httpx2
import openai
import pytest
from returns.result import Success

from inert import ImmediateRunner, Request
from inert._engine import RawOutcome
from inert._errors import ApiError, ConnectionFailedError, RateLimitError
from inert._json import JSON
from inert._pricing import Price
from inert._providers import MissingClientError
from inert._report import ReportBuilder
from inert._runners._immediate import (
    _VIEW,
    _abandon,
    _Call,
    _forget,
    _limiter,
    _LoopState,
    _Retry,
    _root_cause,
    _show_pace,
)
from inert._runners._pacing import Pacer, estimate_tokens
from inert._store import Store
from inert.anthropic import message as anthropic_message_builder
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


def anthropic_message() -> Request[str]:
    return anthropic_message_builder(
        model="claude-3-5-haiku-latest", max_tokens=5, messages=[{"role": "user", "content": "x"}]
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


# --- small pieces the emulator tests do not pin ------------------------------------------


def test_a_retry_carries_its_error_message_and_server_wait() -> None:
    error = ApiError("busy", status=503)
    retry = _Retry(error, "status", "HTTP 503 from x: busy", 1.5)
    assert ("busy", error, "status", "HTTP 503 from x: busy", 1.5) == (
        str(retry),
        retry.error,
        retry.kind,
        retry.what,
        retry.retry_after,
    )
    assert _Retry(error, "drop", "w").retry_after is None


def test_a_limiter_of_one_to_two_per_window_keeps_its_window() -> None:
    limiter = _limiter(90, 1.0)  # 1.5 a second
    assert (1.5, 1.0) == (limiter.max_rate, limiter.time_period)
    one = _limiter(60, 1.0)  # exactly one per window
    assert (1.0, 1.0) == (one.max_rate, one.time_period)


def test_backoff_draws_from_zero_up_to_the_ceiling() -> None:
    runner = ImmediateRunner(client(), backoff_base=1, backoff_max=8)
    first = [runner._backoff(0, None) for _ in range(300)]
    assert 0 <= min(first) < 0.3
    assert 0.7 < max(first) <= 1.0
    third = [runner._backoff(3, None) for _ in range(300)]
    assert 6.5 < max(third) <= 8.0


def test_a_root_cause_skips_the_sdks_wrappers_and_empty_messages() -> None:
    sdk = openai.APIConnectionError(request=httpx2.Request("POST", BASE))
    outer = RuntimeError("outer")
    outer.__cause__ = sdk
    assert "RuntimeError: outer" == _root_cause(outer)  # the SDK's words are no reason
    reason = ValueError("the reason")
    reason.__cause__ = RuntimeError("")
    assert "ValueError: the reason" == _root_cause(reason)  # an empty message is none
    assert "RuntimeError: " == _root_cause(RuntimeError(""))


async def test_a_server_wait_goes_to_the_backoff() -> None:
    def limited(request: httpx2.Request) -> httpx2.Response:
        body = {"error": {"message": "slow down", "code": "rate_limit_exceeded", "type": "x"}}
        return httpx2.Response(429, json=body, headers={"retry-after-ms": "20"})

    runner = ImmediateRunner(client(limited), max_retries=1, learn_limits=False, progress=False)
    waits: list[tuple[int, float | None]] = []

    def backoff(attempt: int, retry_after: float | None) -> float:
        waits.append((attempt, retry_after))
        return 0.0

    runner._backoff = backoff  # type: ignore[method-assign]  # records what the retry asks
    (result,) = await runner.run_all_settled([hello()])
    assert [(0, 0.02)] == waits
    error = result.failure()
    assert isinstance(error, RateLimitError)
    assert {"error": {"message": "slow down", "code": "rate_limit_exceeded", "type": "x"}} == (
        error.body
    )


async def test_a_final_server_error_keeps_its_body_and_a_bodiless_one_its_status_text() -> None:
    body = {"error": {"message": "busy", "code": "server_error", "type": "x"}}

    def busy(request: httpx2.Request) -> httpx2.Response:
        if b"plain" in request.content:
            return httpx2.Response(500, json={"detail": "no message here"})
        return httpx2.Response(500, json=body)

    runner = ImmediateRunner(
        client(busy), max_retries=0, learn_limits=False, progress=False, backoff_base=0.001
    )
    error = (await runner.run_all_settled([hello()]))[0].failure()
    assert isinstance(error, ApiError)
    assert (500, "server_error", body) == (error.status, error.code, error.body)
    bare = (await runner.run_all_settled([hello("plain")]))[0].failure()
    assert isinstance(bare, ApiError)
    assert re.match(r"^HTTP 500 from \S+: (?!None)", bare.message), bare.message


async def test_a_connection_that_cannot_be_made_names_its_root_cause() -> None:
    def refuse(request: httpx2.Request) -> httpx2.Response:
        raise httpx2.ConnectError("refused", request=request)

    runner = ImmediateRunner(client(refuse), max_retries=0, learn_limits=False, progress=False)
    error = (await runner.run_all_settled([hello()]))[0].failure()
    assert error.message.startswith(
        f"could not connect to {BASE}/chat/completions (ConnectError: refused); gave up after"
    )


class Recorder:
    """A stand-in for the live progress line that records what it is told."""

    made: ClassVar[list[Recorder]] = []

    def __init__(self) -> None:
        self.events: list[tuple[str, object]] = []
        Recorder.made.append(self)

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.events.append(("exit", None))

    def found(self, count: int, report: ReportBuilder) -> None:
        self.events.append(("found", count))

    def answered(self, failed: bool) -> None:
        self.events.append(("answered", failed))

    def paced(self, pace: str) -> None:
        self.events.append(("paced", pace))

    def finish(self, report: object) -> None:
        self.events.append(("finish", type(report).__name__))


@pytest.mark.parametrize(
    ("progress", "terminal", "shown"),
    [(True, False, True), (False, True, False), (None, True, True), (None, False, False)],
)
async def test_the_progress_line_shows_when_asked_or_on_a_terminal(
    monkeypatch: pytest.MonkeyPatch, progress: bool | None, terminal: bool, shown: bool
) -> None:
    Recorder.made.clear()
    monkeypatch.setattr("inert._runners._immediate.CallProgress", Recorder)
    monkeypatch.setattr("inert._runners._immediate.sys.stderr.isatty", lambda: terminal)
    runner = ImmediateRunner(client(), learn_limits=False, progress=progress)
    assert ["hello"] == await runner.run_all([hello()])
    if not shown:
        assert [] == Recorder.made
        return
    (view,) = Recorder.made
    assert [("found", 1), ("answered", False), ("finish", "RunReport"), ("exit", None)] == (
        view.events
    )
    assert _VIEW.get() is None  # the run's view is gone with the run


# --- what the runner hands on ------------------------------------------------------------


def test_a_new_call_is_wanted_by_nobody_and_not_on_the_wire() -> None:
    call = _Call()
    assert (0, False, None) == (call.wanted, call.posting, call.wire_done)


def test_the_runner_keeps_its_store_and_prices(tmp_path: Path) -> None:
    prices = {"gpt-4o-mini": Price(input_per_million=1.0, output_per_million=2.0)}
    with Store(tmp_path / "s.sqlite3") as store:
        runner = ImmediateRunner(client(), store=store, prices=prices, learn_limits=False)
        assert store is runner._store
        assert prices is runner._prices


async def test_a_request_for_a_provider_without_a_client_names_this_runner() -> None:
    runner = ImmediateRunner(client(), learn_limits=False, progress=False)
    with pytest.raises(MissingClientError, match=r"this ImmediateRunner has no Anthropic client"):
        runner._check_ops([op_of(anthropic_message())])
    runner._check_ops([op_of(hello())])  # its own provider: nothing to say


async def test_two_calls_sent_together_answer_both() -> None:
    runner = ImmediateRunner(client(), learn_limits=False, progress=False)
    ops = [op_of(hello("one")), op_of(hello("two"))]
    outcomes = await runner._send(ops, ReportBuilder())
    assert {o.key for o in ops} == set(outcomes)
    assert all(isinstance(outcome, Success) for outcome in outcomes.values())


async def test_a_token_cap_charges_each_call_its_estimate() -> None:
    runner = ImmediateRunner(client(), tokens_per_minute=6000, learn_limits=False, progress=False)
    op = op_of(hello("count my tokens"))
    await runner._send([op], ReportBuilder())
    state = next(iter(runner._loops.values()))
    assert state.tokens is not None
    charged = state.tokens._level
    assert 0 < estimate_tokens(op)
    assert estimate_tokens(op) - 1 < charged <= estimate_tokens(op)  # less what leaked since
    no_cap = ImmediateRunner(client(), learn_limits=False, progress=False)
    await no_cap._send([op], ReportBuilder())
    assert next(iter(no_cap._loops.values())).tokens is None


async def test_the_limits_an_answer_reports_are_learned_for_its_model() -> None:
    headers = {
        "x-ratelimit-limit-requests": "500",
        "x-ratelimit-remaining-requests": "499",
        "x-ratelimit-reset-requests": "120ms",
        "x-ratelimit-limit-tokens": "30000",
        "x-ratelimit-remaining-tokens": "29990",
        "x-ratelimit-reset-tokens": "20ms",
    }

    def answer(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, json=ANSWER, headers=headers)

    runner = ImmediateRunner(client(answer), progress=False)
    assert ["hello"] == await runner.run_all([hello()])
    assert {"gpt-4o-mini": (500.0, 30000.0)} == runner.learned_limits


async def test_an_attempt_past_its_deadline_is_a_connection_failure() -> None:
    never = asyncio.Event()

    async def silent(request: httpx2.Request) -> httpx2.Response:
        await never.wait()
        raise AssertionError("never answered")

    runner = ImmediateRunner(
        openai.AsyncOpenAI(
            api_key="sk-test",
            base_url=BASE,
            http_client=httpx2.AsyncClient(transport=httpx2.MockTransport(silent)),
        ),
        timeout=0.05,
        max_retries=0,
        learn_limits=False,
        progress=False,
    )
    error = (await runner.run_all_settled([hello()]))[0].failure()
    assert isinstance(error, ConnectionFailedError)
    assert error.message.startswith(
        f"no complete answer from {BASE}/chat/completions within the 0.05 s deadline; gave up"
    )


def test_the_runner_sends_through_each_client_it_is_given() -> None:
    claude = anthropic.AsyncAnthropic(api_key="sk-ant-test", base_url="https://claude.test")
    both = ImmediateRunner(openai=client(), anthropic=claude, learn_limits=False)
    assert {"openai", "anthropic"} == set(both._transports)
    only = ImmediateRunner(anthropic=claude, learn_limits=False)
    assert {"anthropic"} == set(only._transports)


def test_a_runner_without_a_client_says_how_to_give_one() -> None:
    with pytest.raises(TypeError, match=r"^ImmediateRunner needs a client: ImmediateRunner\("):
        ImmediateRunner()
