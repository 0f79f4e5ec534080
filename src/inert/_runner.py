"""The ``Runner`` protocol and the base class every interpreter builds on.

A runner is an interpreter of requests. The engine steps the requests and hands
the runner a set of distinct ops; the runner returns one raw outcome per op key
(``BaseRunner._send``). Everything else is shared: the store lookup (cache hits),
usage and cost accounting, the report, ``run``/``run_all``/``run_all_settled`` and
their blocking twins for scripts and notebooks.
"""

from __future__ import annotations

import abc
import atexit
import contextlib
import functools
import threading
import time
from collections.abc import Awaitable, Coroutine, Iterable, Mapping, Sequence
from pathlib import Path
from typing import (
    TYPE_CHECKING,
    Any,
    ClassVar,
    Protocol,
    TypeAlias,
    TypeVar,
    cast,
    runtime_checkable,
)

from returns.result import Failure, Result, Success

from inert import _gc
from inert._answers import error_object, is_answer, rejected_by_decoder
from inert._engine import Engine, Fetch, FetchOne, Outcome, Outcomes, RawOutcome
from inert._errors import RequestError, RequestErrorGroup
from inert._json import JSON
from inert._op import Op
from inert._pricing import DEFAULT_PRICES, Price, price_for
from inert._providers import provider_of
from inert._report import ReportBuilder, RunReport, group_failures
from inert._request import Request
from inert._store_errors import UnstoredAnswersError

if TYPE_CHECKING:
    import asyncio

T = TypeVar("T")

_MISSING: Any = object()

Sent: TypeAlias = RawOutcome | Outcome
"""What ``_send`` returns per op key: ``Success(raw)``/``Failure(error)``, or the same
without the wrapper (the raw body, or the RequestError itself)."""


@runtime_checkable
class Runner(Protocol):
    """What every interpreter offers; results are identical for identical op results.

    ``ImmediateRunner``, ``BatchRunner``, ``FakeRunner`` and ``ReplayRunner`` are
    runners, and ``isinstance(x, Runner)`` checks that ``x`` has these members.
    """

    @property
    def report(self) -> RunReport:
        """The report of the last run."""
        ...

    async def run(self, request: Request[T]) -> T:
        """Run one request; raise its RequestError if it failed."""
        ...

    async def run_all(self, requests: Sequence[Request[T]]) -> list[T]:
        """Run requests together (shared rounds, dedup); raise if any failed."""
        ...

    async def run_all_settled(
        self, requests: Sequence[Request[T]]
    ) -> list[Result[T, RequestError]]:
        """Run requests together; one ``Success`` or ``Failure`` per request, in order."""
        ...

    def run_sync(self, request: Request[T]) -> T:
        """Blocking :meth:`run`, for scripts and notebooks without an event loop."""
        ...

    def run_all_sync(self, requests: Sequence[Request[T]]) -> list[T]:
        """Blocking :meth:`run_all`."""
        ...

    def run_all_settled_sync(self, requests: Sequence[Request[T]]) -> list[Result[T, RequestError]]:
        """Blocking :meth:`run_all_settled`."""
        ...


class ResponseStore(Protocol):
    """Where raw responses are kept by op key (the :class:`~inert.Store` is one)."""

    def get_responses(self, keys: Sequence[str]) -> Mapping[str, JSON]:
        """The stored raw responses of those keys that have one."""
        ...

    def put_responses(self, entries: Sequence[tuple[Op[object], JSON]]) -> None:
        """Store raw responses (one transaction)."""
        ...


Held = dict[str, tuple[Op[Any], JSON]]
"""Paid answers a runner could not store yet, by op key (written first by its next fetch)."""


class _Keeping:
    """What one run did with its paid answers: how many it stored, which it could not.

    One per run (never shared between concurrent runs of a runner). After a failed
    write the run's error grows with every later answer that cannot be stored
    either, so when it is raised it accounts for every answer paid. The unstored
    answers are also held by the runner (``held``), which writes them before its
    next fetch: a rerun on the same runner, once the store is writable again, pays
    nothing twice. That is a convenience, not a guarantee; the guarantee is the
    error, raised before anything more is sent.
    """

    __slots__ = ("error", "held", "kept")

    def __init__(self, held: Held | None = None) -> None:
        self.kept = 0
        self.error: UnstoredAnswersError | None = None
        self.held: Held = {} if held is None else held

    def flush(self, store: ResponseStore) -> None:
        """Store the answers held from an earlier failed write, or fail before paying."""
        entries = list(self.held.values())
        self.store(store, entries)
        for op, _ in entries:
            self.held.pop(op.key, None)

    def store(self, store: ResponseStore, entries: Sequence[tuple[Op[Any], JSON]]) -> None:
        """Store ``entries`` in one transaction, or raise the run's UnstoredAnswersError."""
        if not entries:
            return
        try:
            store.put_responses(entries)
        except Exception as exc:
            # One error per run, raised afresh by each failed fetch (no traceback pile-up).
            error = self._failed(store, entries, exc)
            raise error.with_traceback(None) from error.__cause__
        self.kept += len(entries)
        if self.error is not None:  # an answer on the wire at the failure got stored after all
            self._describe(self.error)

    def _failed(
        self, store: ResponseStore, entries: Sequence[tuple[Op[Any], JSON]], cause: Exception
    ) -> UnstoredAnswersError:
        error = self.error
        if error is None:
            path = getattr(store, "path", None)
            error = self.error = UnstoredAnswersError(
                "", path=path if isinstance(path, Path) else None, kept=self.kept, unstored=()
            )
            error.__cause__ = cause
        known = {key for key, _ in error.unstored}
        for op, raw in entries:
            self.held[op.key] = (op, raw)
            if op.key not in known:
                error.unstored.append((op.key, raw))
        self._describe(error)
        return error

    def _describe(self, error: UnstoredAnswersError) -> None:
        error.kept = self.kept
        n = len(error.unstored)
        error.args = (
            f"{n} paid answer{'' if n == 1 else 's'} could not be stored, so the run stopped "
            f"and started no new call: {error.__cause__}. This run stored {error.kept} answers, which are not paid "
            "for again; the unstored ones are on this error's `unstored` and are written "
            "first by this runner's next run; a new run sends only what is not stored",
        )


def usage_of(raw: JSON) -> tuple[int, int]:
    """``(prompt_tokens, completion_tokens)`` from a response body's ``usage``, else zeros."""
    if isinstance(raw, dict):
        usage = raw.get("usage")
        if isinstance(usage, dict):
            prompt = usage.get("prompt_tokens", usage.get("input_tokens", 0))
            completion = usage.get("completion_tokens", usage.get("output_tokens", 0))
            if isinstance(prompt, int) and isinstance(completion, int):
                return prompt, completion
    return 0, 0


class BaseRunner(abc.ABC):
    """Shared machinery of runners; subclasses implement :meth:`_send`.

    Args:
        store: where raw responses are looked up before sending and kept after;
            ``None`` keeps nothing between runs.
        prices: the price table for cost estimates (model name → :class:`Price`).
    """

    pipelined: bool = False
    """True: each op is fetched as soon as it is needed (no round barrier)."""
    price_factor: ClassVar[float] = 1.0
    """Fraction of the immediate price this runner pays (the batch discount)."""
    stores_itself: ClassVar[bool] = False
    """True when ``_send`` persists answers itself (in its own transaction)."""
    sends_bare_outcomes: ClassVar[bool] = False
    """True when ``_send`` returns bare outcomes only (raw bodies or RequestErrors)."""

    def __init__(
        self,
        *,
        store: ResponseStore | None = None,
        prices: Mapping[str, Price] | None = None,
    ) -> None:
        self._store = store
        self._prices: Mapping[str, Price] = DEFAULT_PRICES if prices is None else prices
        self._price_cache: dict[str | None, Price | None] = {}
        self._report = RunReport()
        self._held: Held = {}

    @property
    def report(self) -> RunReport:
        """The report of the last run (a fresh one after every run)."""
        return self._report

    @abc.abstractmethod
    async def _send(
        self, ops: Sequence[Op[Any]], report: ReportBuilder
    ) -> Mapping[str, Sent] | list[Outcome]:
        """Perform the distinct ``ops`` and return one raw outcome per op key.

        An outcome is ``Success(raw)`` or ``Failure(error)``, or, cheaper for a
        runner that answers many ops at once, the raw body or the RequestError
        itself (a JSON value is never an exception, so nothing is ambiguous). A
        runner that answers every op may return the bare outcomes as a list in the
        order of ``ops`` instead of a mapping.
        """

    async def run(self, request: Request[T]) -> T:
        """Run one request and return its value; raise its RequestError if it failed."""
        _check_one(request, "run")
        (result,) = await self.run_all_settled([request])
        if isinstance(result, Failure):
            raise result.failure()
        return result.unwrap()

    async def run_all(self, requests: Sequence[Request[T]]) -> list[T]:
        """Run requests together and return their values in order.

        Raises:
            RequestError: after every request has finished (so every answer is kept),
                the one error if one request failed, else a RequestErrorGroup of all.
        """
        results = await self.run_all_settled(requests)
        errors = [(i, r.failure()) for i, r in enumerate(results) if isinstance(r, Failure)]
        if len(errors) == 1:
            raise errors[0][1]
        if errors:
            raise RequestErrorGroup(errors)
        return [r.unwrap() for r in results]

    async def run_all_settled(
        self, requests: Sequence[Request[T]]
    ) -> list[Result[T, RequestError]]:
        """Run requests together; one ``Success(value)`` or ``Failure(error)`` each."""
        if isinstance(requests, Request):
            raise TypeError("run_all takes a list of requests; use run(request) for one")
        self._begin_run()
        building = ReportBuilder()
        started = time.perf_counter()

        keeping = _Keeping(self._held)
        fetch: Fetch
        if self._store is None and self.sends_bare_outcomes and not self.pipelined:
            # A fake with no store: answers that need no waiting go to the engine at once.
            fetch = functools.partial(self._fetch_bare, building)
            fetch_one = self._fetch_one(building)
        else:
            fetch = functools.partial(self._fetch, report=building, keeping=keeping)
            fetch_one = None

        engine = Engine(
            fetch,
            pipelined=self.pipelined,
            report=building,
            check=self._check_ops,
            fetch_one=fetch_one,
        )
        try:
            results = await engine.run(list(requests))
            if building.requests_failed:
                building.failures = group_failures(
                    r.failure() for r in results if isinstance(r, Failure)
                )
            return results
        finally:
            building.wall_seconds = time.perf_counter() - started
            self._report = building.freeze()

    def _begin_run(self) -> None:  # noqa: B027 - an optional hook, empty by default
        """Called as each run starts; subclasses reset per-run state here."""

    def _check_ops(self, ops: Sequence[Op[Any]]) -> None:  # noqa: B027 - an optional hook
        """Called with the ops of each engine step before any is fetched; raise to refuse.

        A runner that cannot carry some of them out (no client for their provider)
        raises here, so the run fails before anything is sent.
        """

    def _send_now(
        self, ops: Sequence[Op[Any]], report: ReportBuilder
    ) -> Mapping[str, Sent] | list[Outcome] | Awaitable[Mapping[str, Sent] | list[Outcome]]:
        """What :meth:`_send` returns, or, from a runner that has them without waiting
        (a fake of plain functions), the answers themselves. The default is ``_send``."""
        return self._send(ops, report)

    def _fetch_one(self, report: ReportBuilder) -> FetchOne | None:
        """A cheaper seam for rounds of one op (see :data:`inert._engine.FetchOne`), from
        a runner with no store whose ``_send`` returns bare outcomes; none by default."""
        return None

    def _fetch_bare(
        self, report: ReportBuilder, ops: Sequence[Op[Any]]
    ) -> Outcomes | Awaitable[Outcomes]:
        """:meth:`_fetch` of a runner with no store whose ``_send`` returns bare outcomes
        (a fake): nothing to look up or keep, and answers had at once are returned at
        once (no coroutine for a round that waits for nothing)."""
        report.ops_sent += len(ops)
        sent = self._send_now(ops, report)
        if isinstance(sent, list):
            return self._settled_in_order(ops, sent, report)
        if isinstance(sent, Mapping):
            return self._settled_bare(ops, cast(Mapping[str, Outcome], sent), report)
        return self._settled_later(ops, sent, report)

    async def _settled_later(
        self,
        ops: Sequence[Op[Any]],
        sending: Awaitable[Mapping[str, Sent] | list[Outcome]],
        report: ReportBuilder,
    ) -> Outcomes:
        sent = await sending
        if isinstance(sent, list):
            return self._settled_in_order(ops, sent, report)
        return self._settled_bare(ops, cast(Mapping[str, Outcome], sent), report)

    async def _fetch(
        self, ops: Sequence[Op[Any]], report: ReportBuilder, keeping: _Keeping | None = None
    ) -> Mapping[str, Outcome] | list[Outcome]:
        """Answer ``ops`` from the store, send the rest, and store what comes back.

        Only answers are stored (see :mod:`inert._answers`): a body that is an error
        object becomes that op's :class:`~inert.errors.ApiError`, and a body the op's
        decoder rejects as a transport-level failure is passed on but not kept. A
        stored body that is no answer (kept by an older inert) is not served.

        Raises:
            UnstoredAnswersError: paid answers could not be stored; the run stops,
                and every later fetch of the same run sends nothing.
        """
        keeping = _Keeping() if keeping is None else keeping
        if keeping.error is not None:  # the store failed earlier in this run: pay for no more
            raise keeping.error.with_traceback(None) from keeping.error.__cause__
        store = self._store
        if store is None and self.sends_bare_outcomes:  # a fake: nothing to look up or keep
            report.ops_sent += len(ops)
            sent = await self._send(ops, report)
            if isinstance(sent, list):
                return self._settled_in_order(ops, sent, report)
            return self._settled_bare(ops, cast(Mapping[str, Outcome], sent), report)
        to_send = ops
        outcomes: dict[str, Outcome] = {}
        if store is not None:
            if keeping.held and not self.stores_itself:
                keeping.flush(store)
            found = store.get_responses([op.key for op in ops if op.dedup])
            if found:
                if not all(is_answer(raw) for raw in found.values()):
                    found = {key: raw for key, raw in found.items() if is_answer(raw)}
                report.cache_hits += len(found)
                outcomes.update(found)
                to_send = [op for op in ops if op.key not in found]
                if not to_send:
                    return outcomes
        report.ops_sent += len(to_send)
        sent = await self._send(to_send, report)
        if isinstance(sent, list):
            if store is None:
                return self._settled_in_order(to_send, sent, report)
            sent = {op.key: outcome for op, outcome in zip(to_send, sent, strict=True)}
        if store is None and self.sends_bare_outcomes:
            return self._settled_bare(to_send, cast(Mapping[str, Outcome], sent), report)
        fresh: list[tuple[Op[Any], JSON]] = []
        _gc.pause()
        try:
            for op in to_send:
                key = op.key
                try:
                    outcome = sent[key]
                except KeyError:
                    continue  # the engine reports it as unanswered
                # Class checks, not isinstance: Result is an ABC, and this runs per op.
                kind = outcome.__class__
                if kind is Success or kind is Failure:
                    result = cast(RawOutcome, outcome)
                    outcome = result.unwrap() if kind is Success else result.failure()
                plain = cast(Outcome, outcome)
                if isinstance(plain, dict) and plain.get("error") is not None:
                    plain = error_object(plain)  # an error object sent with 200: no answer
                outcomes[key] = plain
                if plain.__class__ is dict or not isinstance(plain, RequestError):
                    fresh.append((op, plain))  # pyright: ignore[reportArgumentType]  # narrowed by the class check (pyright does not narrow on __class__)
            if report.elsewhere:  # answered by another run's calls: paid there, not here
                fresh = [(op, raw) for op, raw in fresh if op.key not in report.elsewhere]
            self._account(fresh, report)
        finally:
            _gc.resume()
        report.ops_paid += len(fresh)
        if store is not None and fresh and not self.stores_itself:
            keeping.store(
                store,
                [
                    (op, raw)
                    for op, raw in fresh
                    if op.dedup and rejected_by_decoder(op, raw) is None
                ],
            )
        return outcomes

    def _settled_bare(
        self, sent_ops: Sequence[Op[Any]], sent: Mapping[str, Outcome], report: ReportBuilder
    ) -> Mapping[str, Outcome]:
        """Count and price what ``_send`` answered, for bare outcomes and no store.

        Nothing is copied or unwrapped: the outcomes go to the engine as they are.
        """
        paid = 0
        priced: list[tuple[Op[Any], JSON]] = []
        errors: dict[str, Outcome] = {}
        for op in sent_ops:
            raw = sent.get(op.key, _MISSING)
            if isinstance(raw, dict):
                if raw.get("error") is not None:
                    errors[op.key] = error_object(raw)  # an error object sent with 200
                    continue
                paid += 1
                if "usage" in raw:
                    priced.append((op, raw))
            elif raw is not _MISSING and not isinstance(raw, RequestError):
                paid += 1
        report.ops_paid += paid
        self._account(priced, report)
        return {**sent, **errors} if errors else sent

    def _settled_in_order(
        self, sent_ops: Sequence[Op[Any]], sent: list[Outcome], report: ReportBuilder
    ) -> list[Outcome]:
        """Count and price what ``_send`` answered as a list in the order of the ops.

        One pass that looks nothing up; the list goes to the engine as it is, unless
        an answer is an error object (sent with 200), which becomes its ApiError.
        """
        unpaid = 0
        priced: list[tuple[Op[Any], JSON]] = []
        errors: list[tuple[int, RequestError]] = []
        for i, raw in enumerate(sent):
            if raw.__class__ is dict:
                if "usage" in raw or "error" in raw:  # pyright: ignore[reportOperatorIssue]  # a dict, checked above
                    body: JSON = raw  # pyright: ignore[reportAssignmentType]  # a dict, checked above
                    refusal = error_object(body)  # an error object sent with 200: no answer
                    if refusal is not None:
                        errors.append((i, refusal))
                    elif "usage" in raw:  # pyright: ignore[reportOperatorIssue]  # a dict, checked above
                        priced.append((sent_ops[i], body))
            elif isinstance(raw, RequestError):
                unpaid += 1
        report.ops_paid += len(sent) - unpaid - len(errors)
        if priced:
            self._account(priced, report)
        if errors:
            sent = list(sent)
            for i, failed in errors:
                sent[i] = failed
        return sent

    def _account(self, answered: Iterable[tuple[Op[Any], JSON]], report: ReportBuilder) -> None:
        """Add the tokens and cost of a round's answers to the report, priced per model
        and broken down by provider and model (``RunReport.by_model``/``by_provider``)."""
        tokens: dict[tuple[str, str | None], list[int]] = {}
        for op, raw in answered:
            if not isinstance(raw, dict) or "usage" not in raw:
                continue
            prompt, completion = usage_of(raw)
            group = (op.endpoint, op.model)
            counts = tokens.get(group)
            if counts is None:
                tokens[group] = [1, prompt, completion]
            else:
                counts[0] += 1
                counts[1] += prompt
                counts[2] += completion
        for (endpoint, model), (calls, prompt, completion) in tokens.items():
            report.prompt_tokens += prompt
            report.completion_tokens += completion
            try:
                price = self._price_cache[model]
            except KeyError:
                price = self._price_cache[model] = price_for(model, self._prices)
            full = 0.0 if price is None else price.cost(prompt, completion)
            cost = full * self.price_factor
            report.full_price_usd += full
            report.cost_usd += cost
            report.add_usage(provider_of(endpoint), model, (calls, prompt, completion, cost, full))

    # Blocking twins, for scripts and notebooks without an event loop.

    def run_sync(self, request: Request[T]) -> T:
        """Blocking :meth:`run`; not for use inside a running event loop."""
        _check_one(request, "run_sync")
        return _run_blocking(self.run(request), "run_sync", "run")

    def run_all_sync(self, requests: Sequence[Request[T]]) -> list[T]:
        """Blocking :meth:`run_all`; not for use inside a running event loop."""
        return _run_blocking(self.run_all(requests), "run_all_sync", "run_all")

    def run_all_settled_sync(self, requests: Sequence[Request[T]]) -> list[Result[T, RequestError]]:
        """Blocking :meth:`run_all_settled`; not for use inside a running event loop."""
        return _run_blocking(
            self.run_all_settled(requests), "run_all_settled_sync", "run_all_settled"
        )


def _check_one(request: object, name: str) -> None:
    """``run`` takes one request: a list is a common slip, named with its fix."""
    if isinstance(request, list | tuple):
        many = name.replace("run", "run_all", 1)
        raise TypeError(
            f"{name}() takes one Request, not a {type(request).__name__}; pass one request, "
            f"or use {many}(requests) for a list"
        )


_blocking = threading.local()


def _blocking_runner() -> asyncio.Runner:
    """This thread's long-lived ``asyncio.Runner`` for the blocking twins.

    ``asyncio.run`` makes a new loop per call, but an ``AsyncOpenAI`` client's
    connection pool belongs to the loop that first used it, so a second blocking
    call would fail with "Event loop is closed". One loop per thread, kept between
    calls, keeps the user's client usable; running in the calling thread keeps its
    thread-locals (Hypothesis draws, for one) and lets Ctrl-C cancel the run.
    """
    import asyncio  # here, not at the top: `import inert` stays quick

    runner: asyncio.Runner | None = getattr(_blocking, "runner", None)
    if runner is None:
        runner = asyncio.Runner()
        _blocking.runner = runner
        atexit.register(_close_quietly, runner)
    return runner


def _close_quietly(runner: asyncio.Runner) -> None:
    with contextlib.suppress(Exception):
        runner.close()


def _run_blocking(coro: Coroutine[Any, Any, T], name: str, async_name: str) -> T:
    import asyncio

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return _blocking_runner().run(coro)
    coro.close()
    raise RuntimeError(
        f"{name}() cannot run inside a running event loop (a notebook cell or async "
        f"code); use `await runner.{async_name}(...)` there instead"
    )
