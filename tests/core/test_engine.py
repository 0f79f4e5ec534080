"""Example tests of the engine's behaviour: rounds, memo, failures, depth, programs."""

from __future__ import annotations

import asyncio
from collections.abc import Generator
from typing import Any

import pytest
from returns.result import Failure, Success

from inert import Op, Request, RequestError, call, fail, gather, gather_all, program, pure
from inert._json import JSON
from inert.errors import InvalidOutputError, RequestErrorGroup, UnansweredError
from inert.testing import FakeRunner


def ask(name: str, dedup: bool = True) -> Request[str]:
    """A call whose answer is the upper-cased name."""
    return call(Op(endpoint="/v1/test", body={"q": name}, decode=_text, dedup=dedup))


def _text(raw: JSON) -> str:
    assert isinstance(raw, dict)
    value = raw["a"]
    assert isinstance(value, str)
    return value


def upper(op: Op[Any]) -> JSON:
    q = op.body["q"]
    assert isinstance(q, str)
    if q.startswith("bad"):
        raise RequestError(f"no answer for {q}")
    return {"a": q.upper()}


async def test_pure_values_take_zero_rounds() -> None:
    """A run of pure values asks nothing and takes no round."""
    fake = FakeRunner(upper)
    assert await fake.run_all([pure(1), pure(2)]) == [1, 2]
    assert (fake.report.rounds, fake.calls) == (0, [])


async def test_gathered_calls_share_one_round() -> None:
    """Independent calls in a gather are asked together, in one round."""
    fake = FakeRunner(upper)
    assert await fake.run(gather(ask("a"), ask("b"), ask("c"))) == ("A", "B", "C")
    assert [len(r) for r in fake.rounds_log] == [3]


async def test_then_adds_a_round_only_when_it_needs_the_value() -> None:
    """A dependent call needs a second round; a map does not."""
    fake = FakeRunner(upper)
    chained = ask("a").then(lambda a: ask(a + "b")).map(str.lower)
    assert await fake.run(chained) == "ab"
    assert fake.report.rounds == 2


async def test_an_op_answered_in_an_earlier_round_costs_no_round() -> None:
    """As in Haxl: asking again for a known answer is served from memory."""
    fake = FakeRunner(upper)
    again = ask("a").then(lambda _: ask("b")).then(lambda _: ask("a"))
    assert await fake.run(again) == "A"
    assert (fake.report.rounds, len(fake.calls), fake.report.ops_deduplicated) == (2, 2, 1)


async def test_identical_calls_across_requests_are_sent_once() -> None:
    """Two top-level requests asking the same question share one call."""
    fake = FakeRunner(upper)
    assert await fake.run_all([ask("a"), ask("a").map(lambda s: s + "!")]) == ["A", "A!"]
    assert len(fake.calls) == 1


async def test_calls_that_opt_out_of_dedup_are_sent_each_time() -> None:
    """Sampling calls with ``dedup=False`` are separate calls, with separate keys."""
    fake = FakeRunner(upper)
    assert await fake.run(gather(ask("a", dedup=False), ask("a", dedup=False))) == ("A", "A")
    assert len({op.key for op in fake.calls}) == 2


async def test_a_hundred_thousand_chained_thens_do_not_overflow_the_stack() -> None:
    """The engine is iterative: deep chains need no Python recursion."""
    request: Request[int] = pure(0)
    for _ in range(100_000):
        request = request.then(lambda v: pure(v + 1))
    assert await FakeRunner(upper).run(request) == 100_000


async def test_a_hundred_thousand_chained_maps_do_not_overflow_the_stack() -> None:
    """Left-nested maps are unwound iteratively too."""
    request: Request[int] = pure(0)
    for _ in range(100_000):
        request = request.map(lambda v: v + 1)
    assert await FakeRunner(upper).run(request) == 100_000


async def test_a_hundred_thousand_wide_gather_runs_in_one_round() -> None:
    """A very wide gather is one round, with duplicates sent once."""
    fake = FakeRunner(upper)
    values = await fake.run(gather_all([ask(str(i % 100)) for i in range(100_000)]))
    assert len(values) == 100_000
    assert (
        fake.report.rounds,
        fake.report.ops_sent,
        fake.report.ops_deduplicated,
    ) == (1, 100, 99_900)


async def test_a_deep_recursive_program_runs() -> None:
    """A loop written as a request returning a request runs in constant stack."""

    def countdown(n: int) -> Request[int]:
        return pure(n) if n == 0 else pure(n - 1).then(countdown)

    assert await FakeRunner(upper).run(countdown(50_000)) == 0


async def test_a_failure_reaches_only_its_dependents() -> None:
    """One failed call fails the requests that need it, and no sibling."""
    fake = FakeRunner(upper)
    results = await fake.run_all_settled([ask("bad1"), ask("a"), ask("bad1").map(len)])
    assert [Failure(RequestError("no answer for bad1")), Success("A")] == results[:2]
    assert isinstance(results[2], Failure)


async def test_gather_fails_with_its_first_failed_part_after_all_settle() -> None:
    """A gather with failing parts reports the first in argument order, whatever the timing."""
    fake = FakeRunner(upper)
    slow_bad = ask("x").then(lambda _: ask("bad-late"))
    with pytest.raises(RequestError) as caught:
        await fake.run(gather(slow_bad, ask("bad-early")))
    assert caught.value.message == "no answer for bad-late"
    assert fake.report.rounds == 2


async def test_recover_turns_a_failure_into_a_value() -> None:
    """``recover`` gets the RequestError and continues with another request."""
    fake = FakeRunner(upper)
    request = ask("bad").recover(lambda e: pure(f"fallback: {e.message}"))
    assert await fake.run(request) == "fallback: no answer for bad"


async def test_attempt_gives_a_result() -> None:
    """``attempt`` never fails; it carries the error in a Failure."""
    fake = FakeRunner(upper)
    assert [Failure(RequestError("no answer for bad")), Success("A")] == await fake.run_all(
        [ask("bad").attempt(), ask("a").attempt()]
    )


async def test_run_all_raises_after_every_request_finished() -> None:
    """With several failures, ``run_all`` raises one group carrying each, after the rest ran."""
    fake = FakeRunner(upper)
    with pytest.raises(RequestErrorGroup) as caught:
        await fake.run_all([ask("bad1"), ask("a"), ask("bad2")])
    assert [i for i, _ in caught.value.errors] == [0, 2]
    assert {"a", "bad1", "bad2"} == {str(op.body["q"]) for op in fake.calls}


async def test_run_all_raises_the_single_error_itself() -> None:
    """One failure is raised as itself, so ``except RefusalError`` style handlers work."""
    with pytest.raises(RequestError) as caught:
        await FakeRunner(upper).run_all([ask("a"), ask("bad")])
    assert RequestError is type(caught.value)


async def test_programs_read_like_async_code() -> None:
    """``yield from`` gives values; independent calls in a gather share a round."""

    @program
    def greet(name: str) -> Generator[Request[object], Any, str]:
        first = yield from ask(name)
        second, third = yield from gather(ask(first + "1"), ask(first + "2"))
        return f"{first} {second} {third}"

    fake = FakeRunner(upper)
    assert await fake.run(greet("a")) == "A A1 A2"
    assert fake.report.rounds == 2


async def test_programs_can_catch_request_errors() -> None:
    """A failure is raised at the ``yield from``, so try/except works inside programs."""

    @program
    def careful() -> Generator[Request[object], Any, str]:
        try:
            return (yield from ask("bad"))
        except RequestError as error:
            return (yield from ask("fallback " + error.message))

    assert await FakeRunner(upper).run(careful()) == "FALLBACK NO ANSWER FOR BAD"


async def test_programs_are_rerunnable() -> None:
    """Each run starts a fresh generator, so one request value runs many times."""
    runs: list[int] = []

    @program
    def counted() -> Generator[Request[object], Any, str]:
        runs.append(1)
        return (yield from ask("a"))

    request = counted()
    fake = FakeRunner(upper)
    assert [await fake.run(request), await fake.run(request)] == ["A", "A"]
    assert len(runs) == 2


def test_program_rejects_a_function_without_yield() -> None:
    """Decorating a plain function is a clear error that says how to fix it."""
    with pytest.raises(TypeError, match="yield from"):
        program(lambda: 1)  # type: ignore[arg-type, return-value]  # pyright: ignore[reportArgumentType]  # the mistake under test


async def test_a_decoder_error_is_an_invalid_output_for_that_op_only() -> None:
    """A decoder that raises fails its op with InvalidOutputError; others are unaffected."""
    broken = call(Op(endpoint="/v1/test", body={"q": "z"}, decode=lambda raw: 1 // 0))
    results = await FakeRunner(upper).run_all_settled([broken, ask("a")])
    assert isinstance(results[0].failure(), InvalidOutputError)
    assert Success("A") == results[1]


async def test_an_op_the_runner_does_not_answer_is_a_named_error() -> None:
    """A runner that leaves an op unanswered produces UnansweredError naming it, not a hole."""

    class Forgetful(FakeRunner):
        async def _send(self, ops: Any, report: Any) -> Any:
            return {}

    results = await Forgetful(upper).run_all_settled([ask("a")])
    error = results[0].failure()
    assert isinstance(error, UnansweredError)
    assert "/v1/test" in error.message


async def test_a_bug_in_user_code_propagates() -> None:
    """An exception that is not a RequestError is a bug: it ends the run loudly."""
    with pytest.raises(ZeroDivisionError):
        await FakeRunner(upper).run(ask("a").map(lambda _: 1 // 0))


async def test_then_must_return_a_request() -> None:
    """A ``then`` function returning a plain value gets an error that suggests ``map``."""
    with pytest.raises(TypeError, match="map"):
        await FakeRunner(upper).run(ask("a").then(lambda a: a))  # type: ignore[arg-type, return-value]  # pyright: ignore[reportArgumentType]  # the mistake under test


def test_gather_rejects_coroutines() -> None:
    """Passing an awaitable where a Request belongs is caught when building."""

    async def not_a_request() -> int:
        return 1

    coroutine = not_a_request()
    with pytest.raises(TypeError, match="coroutine"):
        gather(coroutine)  # type: ignore[call-overload]  # pyright: ignore[reportArgumentType, reportCallIssue]  # the mistake under test
    coroutine.close()


def test_fail_takes_a_request_error() -> None:
    """``fail`` refuses other exceptions with a hint."""
    with pytest.raises(TypeError, match="RequestError"):
        fail(ValueError("x"))  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]  # the mistake under test


async def test_the_report_describes_the_last_run_only() -> None:
    """Every run replaces the report."""
    fake = FakeRunner(upper)
    await fake.run(gather(ask("a"), ask("b")))
    await fake.run(ask("c"))
    assert (fake.report.rounds, fake.report.ops_sent, fake.report.round_sizes) == (1, 1, (1,))


def test_blocking_twin_runs_outside_an_event_loop() -> None:
    """``run_all_sync`` is for scripts: it runs its own loop."""
    assert FakeRunner(upper).run_all_sync([ask("a")]) == ["A"]


async def test_blocking_twin_refuses_to_run_inside_an_event_loop() -> None:
    """Inside a running loop the blocking twin says to await the async method instead."""
    with pytest.raises(RuntimeError, match=r"await runner\.run_all"):
        FakeRunner(upper).run_all_sync([ask("a")])


async def test_pipelined_scheduling_starts_dependent_calls_without_a_round_barrier() -> None:
    """Pipelined, a dependent call is sent while an unrelated slow call is still out."""
    order: list[str] = []
    release = asyncio.Event()

    async def respond(op: Op[Any]) -> JSON:
        q = op.body["q"]
        assert isinstance(q, str)
        order.append(q)
        if q == "slow":
            await release.wait()
        if q == "second":
            release.set()
        return {"a": q}

    fake = FakeRunner(respond, pipelined=True)
    chained = ask("first").then(lambda _: ask("second"))
    assert await fake.run_all([ask("slow"), chained]) == ["slow", "second"]
    assert order == ["slow", "first", "second"]
    assert fake.report.rounds == 2


async def test_run_all_rejects_a_single_request() -> None:
    """Passing one request to run_all is a clear error pointing at run()."""
    with pytest.raises(TypeError, match=r"run\(request\)"):
        await FakeRunner(upper).run_all(ask("a"))  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]  # the mistake under test
