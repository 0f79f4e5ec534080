"""The engine: steps request trees, collects the ops they block on, resumes them.

Each top-level request, and each part of a gather that is more than a call, is a
*fiber*: a node being evaluated plus an explicit stack of frames (map, then,
recover, program, gather slot). Stepping is a loop over that stack, never Python
recursion, so a chain of 100,000 ``then``s or a gather of 100,000 parts runs in
constant interpreter stack. A part of a gather that is a call needs no fiber: its
slot in the gather waits on the op directly.

A fiber that reaches a call blocks on the op's key. The engine dedups blocked
ops by key, hands them to the runner's ``fetch`` and resumes every fiber waiting
on each key with the decoded outcome. An op answered earlier in the same run is
answered from memory at once (Haxl's and Fetch's behaviour): no fetch, no round.

Two schedules share this code:

* rounds (batch-like): step everything until every fiber is done or blocked,
  fetch all blocked ops as one round, repeat. ``rounds`` counts the fetches.
* pipelined (immediate-like): fetch each op as soon as it is blocked on, and
  resume its fibers as soon as its outcome arrives; no round barrier. ``rounds``
  is then the longest chain of dependent calls observed, and ``round_sizes``
  counts the distinct ops of each dependency level.

Outcomes travel untagged: an op's outcome is its raw response body (plain JSON)
or the :class:`~inert.RequestError` it failed with; no JSON value is an exception,
so the type tells them apart without a wrapper object per op. The cyclic garbage
collector is paused while the engine steps and settles (work that allocates per op
and makes no cycles of its own) and runs while the runner fetches.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine, Generator, Mapping, Sequence
from types import CoroutineType
from typing import TYPE_CHECKING, Any, Final, TypeAlias, cast

from returns.result import Failure, Result, Success

from inert import _gc
from inert._errors import InvalidOutputError, RequestError, UnansweredError
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

if TYPE_CHECKING:
    import asyncio

RawOutcome = Result[JSON, RequestError]
"""What a runner may return for one op: the raw response body, or the op's error."""

Outcome: TypeAlias = JSON | RequestError
"""An op's outcome inside the engine: the raw response body, or the RequestError itself."""

Outcomes: TypeAlias = Mapping[str, Outcome | RawOutcome] | list[Outcome]
"""A fetch's answer: one outcome per op key (bare or in a Result), or a list of bare
outcomes in the order of the ops asked (cheaper for a runner that answers in bulk)."""

Fetch = Callable[[Sequence[Op[Any]]], Awaitable[Outcomes] | Outcomes]
"""The runner seam: given distinct ops, return one outcome for each.

A fetch that has the answers without waiting (a fake) may return them as they are
instead of an awaitable; only the rounds schedule is given such a fetch."""

FetchOne = Callable[[Op[Any]], Any]
"""A cheaper seam for a round of one op, from a runner that usually has the answer at
once (a fake): it returns the op's answer itself when that is a plain JSON object (no
usage to price, no error object: the common case, with nothing to wrap), else what
``fetch([op])`` returns (a list of one outcome, or an awaitable of the outcomes).

The engine counts, in bulk as the chain of rounds ends, every op it hands over as
sent (``ops_sent``) and every op answered with an object as paid (``ops_paid``); the
runner counts what it pays for in what it returns otherwise."""

_MAP, _THEN, _RECOVER, _GEN, _SLOT = range(5)
_EVAL, _OK, _ERR = range(3)

_NODES: Final = frozenset({_Pure, _Fail, _Call, _Map, _Then, _Recover, _Gather, _Suspend})
"""Every kind of request node (all final): checking membership is one set lookup."""


class _Fiber:
    """One strand of evaluation: its frame stack and its dependency depth."""

    __slots__ = ("depth", "stack")

    def __init__(self, stack: list[tuple[Any, ...]], depth: int) -> None:
        self.stack = stack
        self.depth = depth


class _Join:
    """A suspended gather: the parent fiber and the parts' results so far."""

    __slots__ = ("depth", "errors", "fiber", "remaining", "values")

    def __init__(self, fiber: _Fiber, size: int) -> None:
        self.fiber = fiber
        self.values: list[Any] = [None] * size
        self.errors: dict[int, RequestError] | None = None
        self.remaining = size
        self.depth = fiber.depth

    def fail(self, index: int, error: RequestError) -> None:
        """Record the error of part ``index``."""
        if self.errors is None:
            self.errors = {}
        self.errors[index] = error

    def outcome(self) -> tuple[int, Any]:
        """The gather's result once every part is in: its values, or its first error."""
        errors = self.errors
        if errors:
            return _ERR, errors[min(errors)]
        return _OK, tuple(self.values)


def decode(op: Op[Any], outcome: Outcome) -> tuple[bool, Any]:
    """Decode an outcome with the op's decoder: ``(True, value)`` or ``(False, error)``.

    A decoder that raises something other than a RequestError is reported as
    :class:`InvalidOutputError` for that op alone, with the original as its cause.
    """
    if isinstance(outcome, RequestError):
        return False, outcome
    try:
        return True, op.decode(outcome)
    except RequestError as error:
        return False, error
    except Exception as exc:
        return False, _invalid(op, exc)


def _invalid(op: Op[Any], exc: Exception) -> InvalidOutputError:
    """The error of an op whose decoder raised ``exc``, which is not a RequestError."""
    invalid = InvalidOutputError(f"could not decode the response of {op!r}: {exc}")
    invalid.__cause__ = exc
    return invalid


def _outcome_of(op: Op[Any], outcomes: Mapping[str, Outcome | RawOutcome]) -> Outcome:
    """The bare outcome of ``op``: its answer, its error, or the error of a missing answer."""
    try:
        outcome = outcomes[op._key]
    except KeyError:
        return _unanswered(op)
    kind = outcome.__class__
    if kind is Success:
        return cast(RawOutcome, outcome).unwrap()
    if kind is Failure:
        return cast(RawOutcome, outcome).failure()
    return cast(Outcome, outcome)


def _in_order(
    ops: Sequence[Op[Any]], outcomes: Mapping[str, Outcome | RawOutcome]
) -> list[Outcome]:
    """The bare outcomes of ``ops``, in their order."""
    found = outcomes.get
    in_order: list[Outcome] = []
    for op in ops:
        outcome = found(op._key)
        in_order.append(
            outcome if outcome.__class__ is dict else _outcome_of(op, outcomes)  # pyright: ignore[reportArgumentType]  # narrowed by the class check (pyright does not narrow on __class__)
        )
    return in_order


class _Rest:
    """Awaits the rest of a coroutine whose first step has already been taken.

    What ``await`` does for a coroutine, from its second step on (PEP 380): each
    future it waits on goes up to the event loop, and what the loop sends or throws
    in (a cancellation) goes down to it.
    """

    __slots__ = ("_coroutine", "_signal")

    def __init__(self, coroutine: Coroutine[Any, Any, Outcomes], signal: object) -> None:
        self._coroutine = coroutine
        self._signal = signal

    def __await__(self) -> Generator[Any, Any, Outcomes]:
        coroutine = self._coroutine
        signal = self._signal
        while True:
            try:
                sent = yield signal
            except GeneratorExit:
                coroutine.close()
                raise
            except BaseException as thrown:
                try:
                    signal = coroutine.throw(thrown)
                except StopIteration as done:
                    return cast(Outcomes, done.value)
            else:
                try:
                    signal = coroutine.send(sent)
                except StopIteration as done:
                    return cast(Outcomes, done.value)


def _unanswered(op: Op[Any]) -> UnansweredError:
    return UnansweredError(f"the runner returned no outcome for {op!r} ({op.endpoint})")


class Engine:
    """Runs top-level requests against a ``fetch`` and returns one outcome per request."""

    def __init__(
        self,
        fetch: Fetch,
        *,
        pipelined: bool,
        report: ReportBuilder,
        check: Callable[[Sequence[Op[Any]]], None] | None = None,
        fetch_one: FetchOne | None = None,
    ) -> None:
        self._fetch = fetch
        # Rounds of one op (a chain of thens) go here instead, when given.
        self._fetch_one = None if pipelined else fetch_one
        # Called with the ops found at each step before any of them is fetched: a
        # runner refuses a run it cannot carry out (a missing client) before sending.
        self._check = check
        self._pipelined = pipelined
        self._report = report
        self._memo: dict[str, Outcome] = {}
        # key -> one waiter or a list of them. A waiter is (fiber, op), or
        # (join, slot, op) for a gather part that is a call.
        self._waiting: dict[str, Any] = {}
        self._new: list[Op[Any]] = []
        self._op_depth: dict[str, int] = {}
        self._occurrences: dict[str, int] = {}
        self._queue: list[tuple[_Fiber, int, Any]] = []
        self._requests: tuple[Request[Any], ...] = ()
        self._roots: _Join | None = None
        self._requested = 0
        self._deduplicated = 0
        self._undeduped = 0  # ops of the coming round that opt out of dedup

    async def run(self, requests: Sequence[Request[Any]]) -> list[Result[Any, RequestError]]:
        """Run every request to its value or error; results are in input order."""
        for i, request in enumerate(requests):
            if request.__class__ not in _NODES:
                hint = (
                    " (a list inside the list: flatten it, or combine it with gather_all)"
                    if isinstance(request, list | tuple)
                    else ""
                )
                raise TypeError(
                    f"request {i} is a {type(request).__name__}, not a Request{hint}; "
                    "runners take Request values built with inert's builders"
                )
        self._requests = tuple(requests)
        try:
            if self._pipelined:
                await self._run_pipelined()
            else:
                await self._run_rounds()
        finally:
            self._report.ops_requested += self._requested
            self._report.ops_deduplicated += self._deduplicated
        roots = self._roots
        if roots is None or roots.remaining:  # pragma: no cover - an engine bug, never a user error
            raise RuntimeError("a request neither finished nor failed")
        errors = roots.errors
        if not errors:
            return [Success(value) for value in roots.values]
        self._report.requests_failed += len(errors)
        return [
            Failure(errors[i]) if i in errors else Success(value)
            for i, value in enumerate(roots.values)
        ]

    def _start(self) -> None:
        """Begin with the top-level requests as the parts of one gather, each settled on
        its own: a request that is a call waits on its op directly (no fiber), the others
        become fibers, stepped in input order."""
        self._roots = self._gather(_Fiber([], 0), self._requests)

    async def _run_rounds(self) -> None:
        report = self._report
        ops: list[Op[Any]] = []
        outcomes: Any = {}  # Outcomes: a list or a mapping, told apart by class
        fetching: Any = None  # what the last fetch returned, until its outcomes are in
        # The collector is paused while the engine steps and settles, and over every
        # fetch that answers without waiting (a fake, a store that has every answer);
        # it runs while a fetch waits for I/O. Paused even for rounds of one op:
        # ending the pause moves what the rounds built to the oldest generation,
        # untraversed (see inert._gc).
        queue = self._queue
        step = self._step
        fetch = self._fetch
        round_sizes = report.round_sizes
        _gc.pause()
        try:
            self._start()
            while True:
                if fetching is not None:
                    if fetching.__class__ is list or fetching.__class__ is dict:
                        outcomes = fetching
                    else:
                        if isinstance(fetching, CoroutineType):
                            try:
                                # Its first step: a fetch that needs no I/O ends here.
                                signal = fetching.send(None)
                            except StopIteration as done:
                                fetching = None
                                outcomes = done.value
                            else:
                                fetching = _Rest(fetching, signal)
                        if fetching is not None:
                            _gc.resume()
                            try:
                                outcomes = await cast(Awaitable[Outcomes], fetching)
                            finally:
                                _gc.pause()
                    fetching = None
                fiber_waiting: Any = None
                if len(ops) == 1 and outcomes.__class__ is list and len(outcomes) == 1:
                    fiber_waiting = self._waiting[ops[0]._key]
                    if fiber_waiting.__class__ is not tuple or len(fiber_waiting) != 2:
                        fiber_waiting = None  # a gather slot, or several waiters
                if fiber_waiting is not None:
                    # One op that one fiber waits for (a chain of thens, round after
                    # round): the fiber steps on at once, as the queue would next.
                    del self._waiting[ops[0]._key]
                    pending = self._chain(fiber_waiting[0], ops[0], outcomes[0])
                    if pending is not None:
                        ops, fetching = pending
                        continue
                elif ops:
                    self._settle_round(ops, outcomes)
                while queue:
                    fiber, mode, payload = queue.pop()
                    step(fiber, mode, payload)
                ops = self._new
                if not ops:
                    return
                self._new = []
                report.rounds += 1
                round_sizes.append(len(ops))
                fetching = fetch(ops)
        finally:
            _gc.resume()

    def _chain(
        self, fiber: _Fiber, op: Op[Any], outcome: Outcome
    ) -> tuple[list[Op[Any]], Any] | None:
        """Resume the one fiber that waits for ``op`` of a round of one op, and go on.

        A chain of thens, inline: while the fiber's next step is a ``then`` whose
        function returns a call of a new op, that op is the only op of the next round
        (nothing else is runnable), so it is fetched here at once, without queueing
        the fiber or registering its wait. Anything else goes to :meth:`_step`. The
        rounds, their sizes and the memo are kept as the rounds loop keeps them; the
        rounds of the chain are counted once, as it ends (each round is one op, so
        per-round bookkeeping would be most of the engine's work).

        Returns:
            ``([op], what fetch returned)`` when a fetch did not answer at once with
            a list (the fiber is then registered as waiting for it), else ``None``.
        """
        memo = self._memo
        waiting = self._waiting  # empty: the op of the round was its only key
        stack = fiber.stack
        one = self._fetch_one
        then_tag = _THEN
        dedup = op.dedup  # the ops fetched below are all deduplicated
        chained = 0  # ops fetched here, each a round of its own
        indirect = 0  # of those, the ones not answered by ``one`` with an object
        try:
            while True:
                if dedup:
                    memo[op._key] = outcome
                if outcome.__class__ is dict:
                    try:
                        value = op.decode(outcome)  # pyright: ignore[reportArgumentType]  # a dict, checked above
                    except RequestError as error:
                        self._step(fiber, _ERR, error)
                        return None
                    except Exception as exc:
                        self._step(fiber, _ERR, _invalid(op, exc))
                        return None
                else:
                    ok, value = decode(op, outcome)
                    if not ok:
                        self._step(fiber, _ERR, value)
                        return None
                if not stack or stack[-1][0] != then_tag:
                    self._step(fiber, _OK, value)
                    return None
                try:
                    node = stack.pop()[1](value)
                except RequestError as error:
                    self._step(fiber, _ERR, error)
                    return None
                if node.__class__ is not _Call:
                    if node.__class__ not in _NODES:
                        _refuse_node(node, "then")
                    self._step(fiber, _EVAL, node)
                    return None
                op = node.op
                if not op.dedup or op._key in memo:
                    self._step(fiber, _EVAL, node)
                    return None
                # A new distinct call, the only one of the next round (what _step and
                # the rounds loop would do, in one place).
                dedup = True
                chained += 1
                if one is not None:
                    try:
                        outcome = one(op)
                    except BaseException:
                        indirect += 1  # nothing answered
                        raise
                    if outcome.__class__ is dict:
                        continue
                    fetching: Any = outcome
                    ops = [op]
                else:
                    ops = [op]
                    fetching = self._fetch(ops)
                indirect += 1
                if fetching.__class__ is not list or len(fetching) != 1:
                    waiting[op._key] = (fiber, op)
                    return ops, fetching
                outcome = fetching[0]
        finally:
            if chained:
                self._requested += chained
                report = self._report
                report.rounds += chained
                report.round_sizes += [1] * chained
                if one is not None:
                    # What ``one`` leaves to the engine (see FetchOne): every op it
                    # was given was sent; each answered with an object was paid for.
                    report.ops_sent += chained
                    report.ops_paid += chained - indirect

    def _settle_round(self, ops: list[Op[Any]], outcomes: Outcomes) -> None:
        """Resume every waiter of every op of a round with its outcome.

        In rounds, the ops waited on are exactly the ops of the round, registered
        in the same order: their waiters are read in order, not looked up by key.
        """
        if not ops:
            return
        memo = self._memo
        waiting = self._waiting
        self._waiting = {}
        queue = self._queue
        wake = self._wake
        answers = outcomes if isinstance(outcomes, list) else _in_order(ops, outcomes)
        if self._undeduped:
            # Ops that opt out of dedup are never answered from memory.
            self._undeduped = 0
            memo.update(
                (op._key, outcome) for op, outcome in zip(ops, answers, strict=True) if op.dedup
            )
        else:
            memo.update(zip(waiting, answers, strict=True))  # the keys of the round, in its order
        for waiters, outcome in zip(waiting.values(), answers, strict=True):
            if waiters.__class__ is list:
                for waiter in waiters:
                    wake(waiter, outcome, 0)
                continue
            if len(waiters) == 2:
                # One fiber waits for this op (a chain of thens), inline.
                fiber, wanted = waiters
                if outcome.__class__ is dict:
                    try:
                        queue.append((fiber, _OK, wanted.decode(outcome)))
                    except RequestError as error:
                        queue.append((fiber, _ERR, error))
                    except Exception as exc:
                        queue.append((fiber, _ERR, _invalid(wanted, exc)))
                else:
                    ok, value = decode(wanted, outcome)
                    queue.append((fiber, _OK if ok else _ERR, value))
                continue
            # The common case of a wide round, inline: one gather slot waits for this op.
            join, slot, wanted = waiters
            if outcome.__class__ is dict:
                try:
                    join.values[slot] = wanted.decode(outcome)
                except RequestError as error:
                    join.fail(slot, error)
                except Exception as exc:
                    join.fail(slot, _invalid(wanted, exc))
            else:
                ok, value = decode(wanted, outcome)
                if ok:
                    join.values[slot] = value
                else:
                    join.fail(slot, value)
            join.remaining -= 1
            if not join.remaining:
                mode, payload = join.outcome()
                queue.append((join.fiber, mode, payload))

    def _wake(self, waiter: tuple[Any, ...], outcome: Outcome, depth: int) -> None:
        """Resume one waiter of an op with the op's outcome (at dependency ``depth``)."""
        if len(waiter) == 2:
            fiber, wanted = waiter
            ok, value = decode(wanted, outcome)
            if depth > fiber.depth:
                fiber.depth = depth
            self._queue.append((fiber, _OK if ok else _ERR, value))
            return
        join, slot, wanted = waiter
        ok, value = decode(wanted, outcome)
        if ok:
            join.values[slot] = value
        else:
            join.fail(slot, value)
        if depth > join.depth:
            join.depth = depth
        join.remaining -= 1
        if not join.remaining:
            fiber = join.fiber
            fiber.depth = join.depth
            mode, payload = join.outcome()
            self._queue.append((fiber, mode, payload))

    async def _run_pipelined(self) -> None:
        import asyncio  # here, not at the top: `import inert` stays quick

        in_flight: dict[asyncio.Future[Outcomes], Op[Any]] = {}
        # Finished fetches are queued by their done-callbacks, so each completion
        # costs O(1) however many fetches are under way (asyncio.wait would scan all).
        finished: asyncio.Queue[asyncio.Future[Outcomes]] = asyncio.Queue()
        try:
            _gc.pause()
            try:
                self._start()
            finally:
                _gc.resume()
            while True:
                _gc.pause()
                try:
                    self._drain()
                finally:
                    _gc.resume()
                if self._check is not None and self._new:
                    self._check(self._new)
                for op in self._new:
                    task = asyncio.ensure_future(
                        cast(Awaitable[Outcomes], self._fetch((op,)))  # never bare: see Fetch
                    )
                    in_flight[task] = op
                    task.add_done_callback(finished.put_nowait)
                self._new = []
                if not in_flight:
                    self._report_levels()
                    return
                done = [await finished.get()]
                while not finished.empty():
                    done.append(finished.get_nowait())
                _gc.pause()
                try:
                    for fetched in done:
                        op = in_flight.pop(fetched)
                        self._settle(op, fetched.result())
                finally:
                    _gc.resume()
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

    def _report_levels(self) -> None:
        """Pipelined rounds are dependency levels: how many ops needed k answers first."""
        per_level = Counter(self._op_depth.values())
        rounds = max(per_level, default=0)
        self._report.rounds = rounds
        self._report.round_sizes = [per_level[level] for level in range(1, rounds + 1)]

    def _settle(self, op: Op[Any], outcomes: Outcomes) -> None:
        """Resume every waiter of one op (pipelined: as soon as its answer is in)."""
        key = op._key
        outcome = outcomes[0] if isinstance(outcomes, list) else _outcome_of(op, outcomes)
        if op.dedup:
            self._memo[key] = outcome
        depth = self._op_depth[key]
        waiters = self._waiting.pop(key)
        if waiters.__class__ is list:
            for waiter in waiters:
                self._wake(waiter, outcome, depth)
        else:
            self._wake(waiters, outcome, depth)

    def _wait(self, op: Op[Any], waiter: tuple[Any, ...], depth: int) -> Op[Any] | None:
        """Register ``waiter`` on ``op``; return the op (renumbered if need be) if memo has it.

        ``depth`` is the dependency depth of the fiber that reached the call.
        """
        self._requested += 1
        if not op.dedup:
            n = self._occurrences.get(op._key, 0)
            self._occurrences[op._key] = n + 1
            op = op.with_occurrence(n)
        key = op._key
        if key in self._memo:
            self._deduplicated += 1
            return op
        waiters = self._waiting.get(key)
        if waiters is None:
            self._waiting[key] = waiter if op is waiter[-1] else (*waiter[:-1], op)
            self._new.append(op)
            if not op.dedup:
                self._undeduped += 1
            if self._pipelined:
                self._op_depth[key] = depth + 1
                if depth + 1 > self._report.rounds:
                    self._report.rounds = depth + 1  # live: the deepest level reached so far
        else:
            self._deduplicated += 1
            if op is not waiter[-1]:
                waiter = (*waiter[:-1], op)
            if waiters.__class__ is list:
                waiters.append(waiter)
            else:
                self._waiting[key] = [waiters, waiter]
        return None

    def _memo_depth(self, key: str) -> int:
        return self._op_depth.get(key, 0) if self._pipelined else 0

    def _drain(self) -> None:
        """Step every runnable fiber until it finishes or blocks on an op."""
        queue = self._queue
        step = self._step
        while queue:
            fiber, mode, payload = queue.pop()
            step(fiber, mode, payload)

    def _gather(self, fiber: _Fiber, parts: tuple[Request[Any], ...]) -> _Join:
        """Start the parts of a gather; parts that are calls or values need no fiber.

        Calls are registered in the order of the parts, as their fibers would have
        registered them, so the ops of a round keep the order of the tree.
        """
        join = _Join(fiber, len(parts))
        depth = fiber.depth
        memo = self._memo
        waiting = self._waiting
        new = self._new
        values = join.values
        pipelined = self._pipelined
        inline = 0
        i = -1
        for part in parts:
            i += 1
            kind = part.__class__
            if kind is _Call:
                op = part.op  # type: ignore[attr-defined]  # pyright: ignore[reportAttributeAccessIssue]  # a _Call, checked above
                key = op._key
                if op.dedup and key not in memo and key not in waiting and not pipelined:
                    # The common case, inline: a new distinct call of this round.
                    waiting[key] = (join, i, op)
                    new.append(op)
                    inline += 1
                    continue
                found = self._wait(op, (join, i, op), depth)
                if found is None:
                    continue
                if pipelined:
                    memo_depth = self._memo_depth(found._key)
                    if memo_depth > join.depth:
                        join.depth = memo_depth
                ok, value = decode(found, memo[found._key])
                if ok:
                    values[i] = value
                else:
                    join.fail(i, value)
                join.remaining -= 1
            elif kind is _Pure:
                values[i] = part.value  # type: ignore[attr-defined]  # pyright: ignore[reportAttributeAccessIssue]  # a _Pure, checked above
                join.remaining -= 1
            else:
                # The rest become fibers, stepped in order after this one blocks.
                queue = self._queue
                for j in range(len(parts) - 1, i - 1, -1):
                    queue.append((_Fiber([(_SLOT, join, j)], depth), _EVAL, parts[j]))
                break
        self._requested += inline
        return join

    def _step(self, fiber: _Fiber, mode: int, payload: Any) -> None:
        """Advance one fiber. ``mode`` says whether ``payload`` is a node, a value or an error."""
        stack = fiber.stack
        node: Any = payload
        while True:
            if mode == _EVAL:
                kind = node.__class__
                if kind is _Then:
                    push = stack.append
                    while True:  # a chain of thens, in one tight loop
                        push((_THEN, node.f))
                        node = node.source
                        if node.__class__ is not _Then:
                            break
                    continue
                if kind is _Call:
                    op = node.op
                    key = op._key
                    if (
                        op.dedup
                        and not self._pipelined
                        and key not in self._memo
                        and key not in self._waiting
                    ):
                        # The common case, inline: a new distinct call of this round.
                        self._waiting[key] = (fiber, op)
                        self._new.append(op)
                        self._requested += 1
                        return
                    found = self._wait(op, (fiber, op), fiber.depth)
                    if found is None:
                        return
                    depth = self._memo_depth(found._key)
                    if depth > fiber.depth:
                        fiber.depth = depth
                    ok, payload = decode(found, self._memo[found._key])
                    mode = _OK if ok else _ERR
                elif kind is _Map:
                    stack.append((_MAP, node.f))
                    node = node.source
                    continue
                elif kind is _Pure:
                    mode, payload = _OK, node.value
                elif kind is _Gather:
                    parts = node.parts
                    if not parts:
                        mode, payload = _OK, ()
                    else:
                        join = self._gather(fiber, parts)
                        if join.remaining:
                            return
                        fiber.depth = join.depth
                        mode, payload = join.outcome()
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
                return  # the fiber of the top-level gather: results are read from its join
            frame = stack.pop()
            tag = frame[0]
            if tag == _SLOT:
                join = frame[1]
                if mode == _OK:
                    join.values[frame[2]] = payload
                else:
                    join.fail(frame[2], payload)
                if fiber.depth > join.depth:
                    join.depth = fiber.depth
                join.remaining -= 1
                if join.remaining:
                    return
                fiber = join.fiber
                fiber.depth = join.depth
                stack = fiber.stack
                mode, payload = join.outcome()
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
                    if node.__class__ not in _NODES:
                        _refuse_node(node, "then")
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
                if node.__class__ not in _NODES:
                    _refuse_node(node, "recover")
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
        except AttributeError as error:
            if error.name == "send" and not isinstance(error.obj, Generator):
                # `yield from [a, b]` delegates to a list's iterator, which has no send.
                raise TypeError(
                    f"a program did `yield from` a {type(error.obj).__name__.removesuffix('_iterator')} "
                    "of requests; `yield from` takes one Request: write "
                    "`values = yield from gather_all(requests)` for a list"
                ) from None
            raise
        if yielded.__class__ not in _NODES:
            _refuse_node(yielded, "program")
        stack.append((_GEN, gen))
        return _EVAL, None, yielded


async def _stop(
    fetches: Mapping[asyncio.Future[Outcomes], Op[Any]],
) -> None:
    """Cancel every fetch under way and wait until each has kept what it was paid for.

    A second cancellation of the waiting task cancels the fetches again, which stops
    them at once.
    """
    import asyncio

    for fetch in fetches:
        fetch.cancel()
    if fetches:
        await asyncio.gather(*fetches, return_exceptions=True)


def _refuse_node(node: object, where: str) -> None:
    """Raise the error for a function that produced something other than a Request."""
    if isinstance(node, Request):
        raise TypeError(f"not a Request node: {node!r}")
    hint = ""
    if where == "program":
        hint = " (inside @program, write `x = yield from request`)"
    elif hasattr(node, "__await__"):
        hint = " (a coroutine: build Requests, do not await inside request code)"
    raise TypeError(
        f"{where} produced a {type(node).__name__}, where a Request was expected{hint}; "
        "use .map for plain functions of a value"
    )
