"""The engine: steps request trees, collects the ops they block on, resumes them.

Each top-level request, and each part of a gather, is a *fiber*: a node being
evaluated plus an explicit stack of frames (map, then, recover, program, gather
slot). Stepping is a loop over that stack, never Python recursion, so a chain of
100,000 ``then``s or a gather of 100,000 parts runs in constant interpreter stack.

A fiber that reaches a call blocks on the op's key. The engine dedups blocked
ops by key, hands them to the runner's ``fetch`` and resumes every fiber waiting
on each key with the decoded outcome. An op answered earlier in the same run is
answered from memory at once (Haxl's and Fetch's behaviour): no fetch, no round.

Two schedules share this code:

* rounds (batch-like): step everything until every fiber is done or blocked,
  fetch all blocked ops as one round, repeat. ``rounds`` counts the fetches.
* pipelined (immediate-like): fetch each op as soon as it is blocked on, and
  resume its fibers as soon as its outcome arrives; no round barrier. ``rounds``
  is then the longest chain of dependent calls observed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Generator, Mapping, Sequence
from typing import Any

from returns.result import Failure, Result, Success

from inert._errors import InvalidOutputError, RequestError, UnansweredError
from inert._gc import paused_gc
from inert._json import JSON
from inert._op import Op
from inert._report import ReportBuilder
from inert._request import (
    Request,
    _Call,
    _Fail,
    _Gather,
    _Map,
    _Pure,
    _Recover,
    _Suspend,
    _Then,
)

RawOutcome = Result[JSON, RequestError]
"""What a runner returns for one op: the raw response body, or the op's error."""

Fetch = Callable[[Sequence[Op[Any]]], Awaitable[Mapping[str, RawOutcome]]]
"""The runner seam: given distinct ops, return one outcome per op key."""

_MAP, _THEN, _RECOVER, _GEN, _SLOT = range(5)
_EVAL, _OK, _ERR = range(3)


class _Fiber:
    """One strand of evaluation: its frame stack and its dependency depth."""

    __slots__ = ("depth", "index", "stack")

    def __init__(self, stack: list[tuple[Any, ...]], depth: int, index: int) -> None:
        self.stack = stack
        self.depth = depth
        self.index = index  # top-level position, or -1 for a gather part


class _Join:
    """A suspended gather: the parent fiber and the parts' results so far."""

    __slots__ = ("depth", "errors", "fiber", "remaining", "values")

    def __init__(self, fiber: _Fiber, size: int) -> None:
        self.fiber = fiber
        self.values: list[Any] = [None] * size
        self.errors: dict[int, RequestError] = {}
        self.remaining = size
        self.depth = fiber.depth


def decode(op: Op[Any], raw: RawOutcome) -> tuple[bool, Any]:
    """Decode a raw outcome with the op's decoder: ``(True, value)`` or ``(False, error)``.

    A decoder that raises something other than a RequestError is reported as
    :class:`InvalidOutputError` for that op alone, with the original as its cause.
    """
    if isinstance(raw, Failure):
        return False, raw.failure()
    body = raw.unwrap()
    try:
        return True, op.decode(body)
    except RequestError as error:
        return False, error
    except Exception as exc:
        invalid = InvalidOutputError(f"could not decode the response of {op!r}: {exc}")
        invalid.__cause__ = exc
        return False, invalid


class Engine:
    """Runs top-level requests against a ``fetch`` and returns one outcome per request."""

    def __init__(self, fetch: Fetch, *, pipelined: bool, report: ReportBuilder) -> None:
        self._fetch = fetch
        self._pipelined = pipelined
        self._report = report
        self._memo: dict[str, RawOutcome] = {}
        self._waiting: dict[str, list[tuple[_Fiber, Op[Any]]]] = {}
        self._new: dict[str, Op[Any]] = {}
        self._op_depth: dict[str, int] = {}
        self._occurrences: dict[str, int] = {}
        self._queue: list[tuple[_Fiber, int, Any]] = []
        self._results: list[Result[Any, RequestError] | None] = []

    async def run(self, requests: Sequence[Request[Any]]) -> list[Result[Any, RequestError]]:
        """Run every request to its value or error; results are in input order."""
        for i, request in enumerate(requests):
            if not isinstance(request, Request):
                raise TypeError(
                    f"request {i} is a {type(request).__name__}, not a Request; "
                    "runners take Request values built with inert's builders"
                )
        self._results = [None] * len(requests)
        self._queue = [(_Fiber([], 0, i), _EVAL, r) for i, r in enumerate(requests)]
        self._queue.reverse()  # the queue pops from the end: keep input order
        if self._pipelined:
            await self._run_pipelined()
        else:
            await self._run_rounds()
        results: list[Result[Any, RequestError]] = []
        for i, result in enumerate(self._results):
            if result is None:  # pragma: no cover - an engine bug, never a user error
                raise RuntimeError(f"request {i} neither finished nor failed")
            results.append(result)
        return results

    async def _run_rounds(self) -> None:
        while True:
            self._drain()
            if not self._new:
                return
            ops = list(self._new.values())
            self._new = {}
            self._report.rounds += 1
            self._report.round_sizes.append(len(ops))
            outcomes = await self._fetch(ops)
            # Decoding a large round allocates many acyclic objects; without the
            # pause, the collector's full passes make a round superlinear in its size.
            with paused_gc():
                for op in ops:
                    self._settle(op, outcomes.get(op.key))

    async def _run_pipelined(self) -> None:
        in_flight: dict[asyncio.Future[Mapping[str, RawOutcome]], Op[Any]] = {}
        # Finished fetches are queued by their done-callbacks, so each completion
        # costs O(1) however many fetches are under way (asyncio.wait would scan all).
        finished: asyncio.Queue[asyncio.Future[Mapping[str, RawOutcome]]] = asyncio.Queue()
        try:
            while True:
                self._drain()
                for op in self._new.values():
                    task = asyncio.ensure_future(self._fetch((op,)))
                    in_flight[task] = op
                    task.add_done_callback(finished.put_nowait)
                self._new = {}
                if not in_flight:
                    self._report.rounds = max(self._op_depth.values(), default=0)
                    self._report.round_sizes = [len(self._op_depth)] if self._op_depth else []
                    return
                done = [await finished.get()]
                while not finished.empty():
                    done.append(finished.get_nowait())
                for fetched in done:
                    op = in_flight.pop(fetched)
                    self._settle(op, fetched.result().get(op.key))
        except BaseException:
            # The run has failed: a bug in user code, an interrupt raised by it, or
            # the run's task cancelled. Start no new call: cancelling a fetch is the
            # runner's signal to drop calls still waiting for their turn and to let
            # those already on the wire finish and be stored (they are paid for).
            await _stop(in_flight)
            raise
        finally:
            for pending in in_flight:
                pending.cancel()

    def _settle(self, op: Op[Any], outcome: RawOutcome | None) -> None:
        key = op.key
        if outcome is None:
            outcome = Failure(
                UnansweredError(f"the runner returned no outcome for {op!r} ({op.endpoint})")
            )
        if op.dedup:
            self._memo[key] = outcome
        depth = self._op_depth[key]
        queue = self._queue
        for fiber, wanted in self._waiting.pop(key, ()):
            ok, value = decode(wanted, outcome)
            if depth > fiber.depth:
                fiber.depth = depth
            queue.append((fiber, _OK if ok else _ERR, value))

    def _block(self, fiber: _Fiber, op: Op[Any]) -> tuple[int, Any] | None:
        """Register ``fiber`` as waiting on ``op``; return an outcome if memo has it."""
        report = self._report
        report.ops_requested += 1
        if not op.dedup:
            n = self._occurrences.get(op.key, 0)
            self._occurrences[op.key] = n + 1
            op = op.with_occurrence(n)
        key = op.key
        memo = self._memo.get(key)
        if memo is not None:
            report.ops_deduplicated += 1
            depth = self._op_depth[key]
            if depth > fiber.depth:
                fiber.depth = depth
            ok, value = decode(op, memo)
            return (_OK if ok else _ERR), value
        waiters = self._waiting.get(key)
        if waiters is None:
            self._waiting[key] = [(fiber, op)]
            self._new[key] = op
            self._op_depth[key] = fiber.depth + 1
        else:
            report.ops_deduplicated += 1
            waiters.append((fiber, op))
        return None

    def _drain(self) -> None:
        """Step every runnable fiber until it finishes or blocks on an op."""
        queue = self._queue
        while queue:
            fiber, mode, payload = queue.pop()
            self._step(fiber, mode, payload)

    def _step(self, fiber: _Fiber, mode: int, payload: Any) -> None:
        """Advance one fiber. ``mode`` says whether ``payload`` is a node, a value or an error."""
        stack = fiber.stack
        node: Any = payload
        while True:
            if mode == _EVAL:
                kind = type(node)
                if kind is _Pure:
                    mode, payload = _OK, node.value
                elif kind is _Map:
                    stack.append((_MAP, node.f))
                    node = node.source
                    continue
                elif kind is _Then:
                    stack.append((_THEN, node.f))
                    node = node.source
                    continue
                elif kind is _Call:
                    outcome = self._block(fiber, node.op)
                    if outcome is None:
                        return
                    mode, payload = outcome
                elif kind is _Gather:
                    parts = node.parts
                    if not parts:
                        mode, payload = _OK, ()
                    else:
                        new_join = _Join(fiber, len(parts))
                        depth = fiber.depth
                        queue = self._queue
                        for i in range(len(parts) - 1, -1, -1):
                            queue.append(
                                (_Fiber([(_SLOT, new_join, i)], depth, -1), _EVAL, parts[i])
                            )
                        return
                elif kind is _Recover:
                    stack.append((_RECOVER, node.handler))
                    node = node.source
                    continue
                elif kind is _Fail:
                    mode, payload = _ERR, node.error
                elif kind is _Suspend:
                    gen = node.start()
                    mode, payload, node = self._resume_generator(gen, stack, _OK, None, first=True)
                    if mode == _EVAL:
                        continue
                else:
                    raise TypeError(f"not a Request node: {node!r}")
            # Unwind the stack with a value (mode _OK) or an error (mode _ERR).
            if not stack:
                self._finish(fiber, mode, payload)
                return
            frame = stack.pop()
            tag = frame[0]
            if tag == _SLOT:
                join: _Join = frame[1]
                if mode == _OK:
                    join.values[frame[2]] = payload
                else:
                    join.errors[frame[2]] = payload
                if fiber.depth > join.depth:
                    join.depth = fiber.depth
                join.remaining -= 1
                if join.remaining:
                    return
                fiber = join.fiber
                fiber.depth = join.depth
                stack = fiber.stack
                if join.errors:
                    mode, payload = _ERR, join.errors[min(join.errors)]
                else:
                    mode, payload = _OK, tuple(join.values)
                node = None
                continue
            if mode == _OK:
                if tag == _MAP:
                    try:
                        payload = frame[1](payload)
                    except RequestError as error:
                        mode, payload = _ERR, error
                    continue
                if tag == _THEN:
                    try:
                        node = frame[1](payload)
                    except RequestError as error:
                        mode, payload = _ERR, error
                        continue
                    _check_node(node, "then")
                    mode = _EVAL
                    continue
                if tag == _GEN:
                    mode, payload, node = self._resume_generator(frame[1], stack, _OK, payload)
                    continue
                continue  # _RECOVER: a value passes through
            # mode == _ERR
            if tag == _RECOVER:
                try:
                    node = frame[1](payload)
                except RequestError as error:
                    payload = error
                    continue
                _check_node(node, "recover")
                mode = _EVAL
                continue
            if tag == _GEN:
                mode, payload, node = self._resume_generator(frame[1], stack, _ERR, payload)
                continue
            # _MAP and _THEN frames are skipped by an error.

    @staticmethod
    def _resume_generator(
        gen: Generator[Request[object], Any, Any],
        stack: list[tuple[Any, ...]],
        mode: int,
        payload: Any,
        *,
        first: bool = False,
    ) -> tuple[int, Any, Any]:
        """Send a value (or throw an error) into a program; return the next step."""
        try:
            if first:
                yielded = next(gen)
            elif mode == _OK:
                yielded = gen.send(payload)
            else:
                yielded = gen.throw(payload)
        except StopIteration as stop:
            return _OK, stop.value, None
        except RequestError as error:
            return _ERR, error, None
        _check_node(yielded, "program")
        stack.append((_GEN, gen))
        return _EVAL, None, yielded

    def _finish(self, fiber: _Fiber, mode: int, payload: Any) -> None:
        if mode == _OK:
            self._results[fiber.index] = Success(payload)
        else:
            self._report.requests_failed += 1
            self._results[fiber.index] = Failure(payload)


async def _stop(fetches: Mapping[asyncio.Future[Mapping[str, RawOutcome]], Op[Any]]) -> None:
    """Cancel every fetch under way and wait until each has kept what it was paid for.

    A second cancellation of the waiting task cancels the fetches again, which stops
    them at once.
    """
    for fetch in fetches:
        fetch.cancel()
    if fetches:
        await asyncio.gather(*fetches, return_exceptions=True)


def _check_node(node: object, where: str) -> None:
    if not isinstance(node, Request):
        hint = ""
        if where == "program":
            hint = " (inside @program, write `x = yield from request`)"
        elif hasattr(node, "__await__"):
            hint = " (a coroutine: build Requests, do not await inside request code)"
        raise TypeError(
            f"{where} produced a {type(node).__name__}, where a Request was expected{hint}; "
            "use .map for plain functions of a value"
        )
