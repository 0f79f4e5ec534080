"""``ImmediateRunner``: runs requests now, over concurrent HTTP calls through the SDK.

Each op's body is posted to its endpoint with the client's low-level ``post``, so
auth, base URL, headers and the connection pool are the SDK's own, while retries
are ours: the SDK's are switched off on a private copy of the client. Every
foreign exception is translated here (as httpx maps httpcore's), so callers only
see :mod:`inert.errors`:

* 429 → retried, honouring ``retry-after-ms`` / ``Retry-After``; after the last
  attempt :class:`~inert.errors.RateLimitError`;
* 408 and 5xx → retried; after the last attempt :class:`~inert.errors.ApiError`;
* a dropped connection → retried; then :class:`~inert.errors.ConnectionFailedError`;
* a connection that cannot be made → retried at most twice; an attempt past its
  deadline → retried at most once (it may have been billed); then
  :class:`~inert.errors.ConnectionFailedError`;
* any other 4xx → :class:`~inert.errors.ApiError` at once (it cannot succeed).

Final errors name the URL, the attempts made and the time spent.

Every call runs in a task of its own (a :class:`_Call`) that the runs needing it
wait on, shielded: cancelling one run never cancels a call another run waits for.
A run that stops (its task is cancelled, or the engine stops it after a failure)
starts no new call; a call already on the wire is waited for, because it is paid
for, and its answer is returned so that it is stored.
"""

from __future__ import annotations

import asyncio
import contextvars
import math
import os
import random
import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Final, Literal, TypeVar

import httpx2
import jiter
from aiolimiter import AsyncLimiter
from anthropic import AsyncAnthropic
from openai import AsyncOpenAI
from returns.result import Failure, Result, Success

from inert._engine import RawOutcome
from inert._errors import ApiError, ConnectionFailedError, RateLimitError, RequestError
from inert._json import JSON
from inert._op import Op
from inert._pricing import Price
from inert._providers import PROVIDERS, check_clients, provider_of
from inert._report import ReportBuilder
from inert._request import Request
from inert._runner import BaseRunner, ResponseStore
from inert._runners._call_progress import CallProgress
from inert._runners._pacing import Pacer, Ticket, estimate_tokens
from inert._runners._transports import (
    SDK_ERRORS,
    NoAnswer,
    SdkFailure,
    StatusAnswer,
    Transport,
    public_url,
    transports_of,
)
from inert._runners._transports import url_of as _url

T = TypeVar("T")

_RETRY_AFTER_CEILING: Final = 60.0
"""Longest server-requested wait we honour (as the SDK does); longer ones use backoff."""

CONNECT_RETRIES: Final = 2
"""Most retries after a connection that could not be made (refused, unreachable, timed out)."""

TIMEOUT_RETRIES: Final = 1
"""Most retries after an attempt that ran past its deadline (the server may have billed it)."""

Kind = Literal["status", "drop", "connect", "timeout"]
"""What went wrong in one attempt; it decides how often the attempt is repeated."""


class _Retry(Exception):
    """One failed attempt that may succeed if repeated; carries the final error to use."""

    def __init__(
        self, error: RequestError, kind: Kind, what: str, retry_after: float | None = None
    ) -> None:
        super().__init__(error.message)
        self.error = error
        self.kind: Kind = kind
        self.what = what
        self.retry_after = retry_after


class _Call:
    """One op's attempts, run as a task of its own, and the runs that wait for it.

    ``wanted`` counts the waiting runs that have not been stopped; when it falls to
    zero before an attempt is on the wire, the task is cancelled (nothing was sent).
    ``posting`` is true while an attempt is on the wire; ``wire_done`` (made only when
    a stopped run waits for that attempt) resolves when the attempt ends.
    """

    __slots__ = ("posting", "task", "wanted", "wire_done")

    def __init__(self) -> None:
        self.wanted = 0
        self.posting = False
        self.wire_done: asyncio.Future[None] | None = None
        self.task: asyncio.Task[RawOutcome]

    def attempt_ended(self) -> None:
        """Mark the attempt on the wire as ended, waking a stopped run waiting for it."""
        self.posting = False
        done = self.wire_done
        if done is not None:
            self.wire_done = None
            if not done.done():
                done.set_result(None)


class _LoopState:
    """Per-event-loop primitives (a semaphore belongs to the loop that first waits on it)."""

    __slots__ = ("in_flight", "paced_at", "pacer", "requests", "semaphore", "tokens")

    def __init__(
        self, max_concurrency: int, rpm: float | None, tpm: float | None, *, learn: bool
    ) -> None:
        self.semaphore = asyncio.Semaphore(max_concurrency)
        # Burst windows shorter than a minute, so a limit paces requests instead of
        # letting a whole minute's worth through at once.
        self.requests = None if rpm is None else _limiter(rpm, 1.0)
        self.tokens = None if tpm is None else _limiter(tpm, 10.0)
        self.in_flight: dict[str, _Call] = {}
        self.pacer = Pacer(max_concurrency) if learn else None
        self.paced_at = 0.0


def _limiter(per_minute: float, window: float) -> AsyncLimiter:
    """A limiter of ``per_minute`` whose bucket holds ``window`` seconds' worth (at least 1)."""
    capacity = per_minute * window / 60.0
    if capacity < 1.0:
        return AsyncLimiter(1.0, 60.0 / per_minute)
    return AsyncLimiter(capacity, window)


def _whole(name: str, value: object, *, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be a whole number of at least {minimum}, not {value!r}")


def _positive(name: str, value: object, *, allow_none: bool) -> None:
    if value is None:
        if not allow_none:
            raise ValueError(f"{name} must be a positive number, not None")
        return
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a number, not {type(value).__name__}")
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive finite number, not {value!r}")


_VIEW: contextvars.ContextVar[CallProgress | None] = contextvars.ContextVar(
    "inert_immediate_progress", default=None
)
"""The progress display of the run in this context (runs on one runner may overlap)."""


class ImmediateRunner(BaseRunner):
    """Calls the API now: bounded concurrency, rate limits, retries, pipelining.

    Pipelined: every op is sent as soon as a request needs it, so a dependent call
    starts the moment its input arrives, with no round barrier. Identical ops in
    flight at once (also across concurrent runs on this runner) are sent once.

    A run that fails (an exception that is not a per-item ``RequestError``, such as
    a bug in a ``.map`` function, ``KeyboardInterrupt``, or its task being
    cancelled) starts no new call; calls already on the wire finish and their
    answers are stored before the error is raised. A second cancellation stops
    waiting for them.

    Each op goes through the client of its provider (its endpoint says which:
    Anthropic's ``/v1/messages``, else OpenAI's); a run whose ops need a provider
    the runner has no client for fails at once, before anything is sent, with a
    :class:`~inert.errors.MissingClientError` naming the argument to add.

    Args:
        client: the ``openai.AsyncOpenAI`` to send through (its base URL, key and
            HTTP client are used; its own retries and timeouts are not); the same as
            ``openai=``.
        openai: the OpenAI client, given by name.
        anthropic: an ``anthropic.AsyncAnthropic`` for Anthropic's Messages API
            (``inert.anthropic`` builders), used the same way.
        max_concurrency: the most requests in flight at once.
        requests_per_minute: a cap on requests per minute over all models, or None;
            it holds even when the server allows more.
        tokens_per_minute: a cap on tokens per minute over all models, or None; each
            request is charged its body's length / 4 plus ``n`` times its
            ``max_completion_tokens`` / ``max_tokens`` (``estimate_tokens``).
        max_retries: extra attempts after a 429, 408, 5xx or dropped connection
            (at most 2 after a connection that cannot be made, 1 after a timeout).
        backoff_base: seconds of the first backoff; doubled on every attempt, with
            full jitter.
        backoff_max: the longest backoff, in seconds.
        timeout: the deadline of one attempt in seconds (connecting, sending and the
            whole answer), or None for none; a server that drip-feeds bytes cannot
            stretch it.
        connect_timeout: the deadline for making a connection, in seconds.
        learn_limits: pace each model's calls to the rate limits its answers report
            in their ``x-ratelimit-*`` headers (see ``_pacing``); False sends as fast
            as ``max_concurrency`` and the given limits allow.
        store: where raw responses are looked up before sending and kept after.
        prices: the price table for cost estimates (model name → ``Price``).
        progress: show a live count of calls answered on stderr; ``None`` (the
            default) shows it when stderr is a terminal.

    Raises:
        ValueError: a setting out of range; the message names it.
    """

    pipelined = True
    price_factor: ClassVar[float] = 1.0

    def __init__(
        self,
        client: AsyncOpenAI | None = None,
        *,
        openai: AsyncOpenAI | None = None,
        anthropic: AsyncAnthropic | None = None,
        max_concurrency: int = 64,
        requests_per_minute: float | None = None,
        tokens_per_minute: float | None = None,
        max_retries: int = 6,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
        timeout: float | None = 300.0,
        connect_timeout: float = 5.0,
        learn_limits: bool = True,
        store: ResponseStore | None = None,
        prices: Mapping[str, Price] | None = None,
        progress: bool | None = None,
    ) -> None:
        super().__init__(store=store, prices=prices)
        self._transports = transports_of("ImmediateRunner", client, openai, anthropic)
        _whole("max_concurrency", max_concurrency, minimum=1)
        _whole("max_retries", max_retries, minimum=0)
        _positive("requests_per_minute", requests_per_minute, allow_none=True)
        _positive("tokens_per_minute", tokens_per_minute, allow_none=True)
        _positive("backoff_base", backoff_base, allow_none=False)
        _positive("backoff_max", backoff_max, allow_none=False)
        _positive("timeout", timeout, allow_none=True)
        _positive("connect_timeout", connect_timeout, allow_none=False)
        if backoff_max < backoff_base:
            raise ValueError(
                f"backoff_max ({backoff_max}) must not be less than backoff_base ({backoff_base})"
            )
        self.max_concurrency = max_concurrency
        self.requests_per_minute = requests_per_minute
        self.tokens_per_minute = tokens_per_minute
        self.max_retries = max_retries
        self.backoff_base: float = float(backoff_base)
        self.backoff_max: float = float(backoff_max)
        self.timeout = timeout
        self.connect_timeout: float = float(connect_timeout)
        self.learn_limits = learn_limits
        # httpx's timeouts bound each read; the attempt's deadline is ours (_post).
        self._timeouts = httpx2.Timeout(timeout, connect=self.connect_timeout)
        self._loops: dict[asyncio.AbstractEventLoop, _LoopState] = {}
        self._random = random.Random()
        self.progress = progress

    async def run_all_settled(
        self, requests: Sequence[Request[T]]
    ) -> list[Result[T, RequestError]]:
        """Run requests together; one ``Success(value)`` or ``Failure(error)`` each."""
        show = sys.stderr.isatty() if self.progress is None else self.progress
        if not show:
            return await super().run_all_settled(requests)
        with CallProgress() as view:
            token = _VIEW.set(view)
            try:
                return await super().run_all_settled(requests)
            finally:
                _VIEW.reset(token)
                view.finish(self.report)

    def __repr__(self) -> str:
        # Never the client (its repr could carry the key): the settings only.
        return (
            f"ImmediateRunner(max_concurrency={self.max_concurrency}, "
            f"requests_per_minute={self.requests_per_minute}, "
            f"tokens_per_minute={self.tokens_per_minute}, max_retries={self.max_retries})"
        )

    def _check_ops(self, ops: Sequence[Op[Any]]) -> None:
        if len(self._transports) < len(PROVIDERS):
            check_clients("ImmediateRunner", {op.endpoint for op in ops}, self._transports)

    def _state(self) -> _LoopState:
        loop = asyncio.get_running_loop()
        state = self._loops.get(loop)
        if state is None:
            for old in [old for old in self._loops if old.is_closed()]:
                del self._loops[old]
            state = _LoopState(
                self.max_concurrency,
                self.requests_per_minute,
                self.tokens_per_minute,
                learn=self.learn_limits,
            )
            self._loops[loop] = state
        return state

    async def _send(
        self, ops: Sequence[Op[Any]], report: ReportBuilder
    ) -> Mapping[str, RawOutcome]:
        state = self._state()
        view = _VIEW.get()
        if view is not None:
            view.found(len(ops), report)
        if len(ops) == 1:
            op = ops[0]
            outcome = await self._shared(op, report, state)
            if view is not None:
                view.answered(isinstance(outcome, Failure))
                _show_pace(view, state)
            return {op.key: outcome}
        outcomes = await asyncio.gather(*(self._shared(op, report, state) for op in ops))
        if view is not None:
            for outcome in outcomes:
                view.answered(isinstance(outcome, Failure))
            _show_pace(view, state)
        return {op.key: outcome for op, outcome in zip(ops, outcomes, strict=True)}

    async def _shared(self, op: Op[Any], report: ReportBuilder, state: _LoopState) -> RawOutcome:
        """Send ``op``, or wait for the identical op another run already has in flight."""
        if not op.dedup:  # distinct samples are wanted: never share an answer
            return await self._wait(self._start(op, report, state), state)
        key = op.key
        call = state.in_flight.get(key)
        if call is None:
            call = self._start(op, report, state)
            state.in_flight[key] = call
            call.task.add_done_callback(lambda _: _forget(state.in_flight, key, call))
        else:  # another run's call: it sends and pays, this run only waits
            report.answered_elsewhere((key,))
        return await self._wait(call, state)

    def _start(self, op: Op[Any], report: ReportBuilder, state: _LoopState) -> _Call:
        call = _Call()
        call.task = asyncio.ensure_future(self._attempts(op, report, state, call))
        return call

    async def _wait(self, call: _Call, state: _LoopState) -> RawOutcome:
        """Wait for a call; if this run is stopped, keep an answer already on the wire.

        The call's task is shielded, so stopping this run never cancels a call that
        another run waits for; the last run to stop cancels a call not yet sent.
        """
        call.wanted += 1
        try:
            return await asyncio.shield(call.task)
        except asyncio.CancelledError:
            call.wanted -= 1
            if call.task.done() and not call.task.cancelled():
                return call.task.result()  # answered just now: keep it
            if not call.posting:
                _abandon(call)
                raise
            # An attempt is on the wire: it may be paid for, so wait for its end (once).
            if call.wire_done is None:
                call.wire_done = asyncio.get_running_loop().create_future()
            wire = call.wire_done
            try:
                await asyncio.wait((call.task, wire), return_when=asyncio.FIRST_COMPLETED)
            except asyncio.CancelledError:  # stopped again: stop waiting
                _abandon(call)
                raise
            if call.task.done() and not call.task.cancelled():
                return call.task.result()  # the caller stores it, then the run ends
            _abandon(call)
            raise

    async def _attempts(
        self, op: Op[Any], report: ReportBuilder, state: _LoopState, call: _Call
    ) -> RawOutcome:
        """Post ``op`` until it succeeds, fails for good, or its retries are spent."""
        transport = self._transports[provider_of(op.endpoint)]
        path = transport.path(op.endpoint)
        paced = state.tokens is not None or state.pacer is not None
        tokens = estimate_tokens(op) if paced else 0
        cost = self._token_cost(tokens) if state.tokens is not None else 0.0
        pace = None if state.pacer is None else state.pacer.pace(op.model or "")
        body = op.canonical_body().encode()
        attempt = 0
        started = time.monotonic()
        while True:
            if state.requests is not None:
                await state.requests.acquire()
            if state.tokens is not None:
                await state.tokens.acquire(cost)
            ticket = None if pace is None else await pace.admit(tokens)
            try:
                async with state.semaphore:
                    if ticket is not None:
                        ticket.send()
                    call.posting = True
                    try:
                        return Success(await self._post(transport, path, body, ticket))
                    finally:
                        call.attempt_ended()
            except _Retry as retry:
                budget = _budget(retry.kind, self.max_retries)
                if attempt >= budget or call.wanted == 0:
                    return Failure(_final(retry, attempt + 1, time.monotonic() - started))
                delay = self._backoff(attempt, retry.retry_after)
            except RequestError as error:
                return Failure(error)
            finally:
                if ticket is not None:
                    ticket.release()
            attempt += 1
            report.retries += 1
            await asyncio.sleep(delay)

    async def _post(
        self, transport: Transport, path: str, body: bytes, ticket: Ticket | None
    ) -> JSON:
        """One attempt; translates every foreign error into an inert one (or ``_Retry``).

        The body goes out as the op's canonical JSON text, the very bytes the batch
        runner writes into its JSONL lines, so the two modes cannot differ. The
        whole attempt has one deadline (httpx's own timeouts bound each read only).
        Whatever the answer, its rate-limit headers go to the ticket's model pace.
        """
        try:
            async with asyncio.timeout(self.timeout):
                response = await transport.post(path, body, self._timeouts)
        except TimeoutError:
            if ticket is not None:
                ticket.answered(None, None, None)
            url = _url(transport, path)
            what = f"no complete answer from {url} within the {_seconds(self.timeout)} deadline"
            raise _Retry(ConnectionFailedError(what), "timeout", what) from None
        except StatusAnswer as exc:
            error = self._status_error(transport, exc)
            if ticket is not None:
                retry_after = error.retry_after if isinstance(error, _Retry) else None
                ticket.answered(exc.response.headers, exc.status, retry_after)
            raise error from None
        except NoAnswer as exc:
            if ticket is not None:
                ticket.answered(None, None, None)
            raise self._connection_error(exc) from None
        except SdkFailure as exc:
            if ticket is not None:
                ticket.answered(None, None, None)
            raise ConnectionFailedError(str(exc)) from None
        if ticket is not None:
            ticket.answered(response.headers, response.status_code, None)
        try:
            raw = jiter.from_json(response.content)  # typed JSON (typestubs/jiter)
        except ValueError:
            what = f"the answer from {_url(transport, path)} is not JSON (a cut-off answer?)"
            raise _Retry(ConnectionFailedError(what), "drop", what) from None
        return raw

    def _connection_error(self, exc: NoAnswer) -> _Retry:
        """The ``_Retry`` for an attempt that got no answer at all."""
        url = _public_url(str(exc.request.url))
        cause = exc.cause
        detail = _root_cause(exc)
        kind: Kind
        if isinstance(cause, httpx2.ConnectTimeout):
            what = f"could not connect to {url} within {_seconds(self.connect_timeout)}"
            kind = "connect"
        elif isinstance(cause, httpx2.ConnectError):
            what = f"could not connect to {url} ({detail})"
            kind = "connect"
        elif isinstance(cause, httpx2.TimeoutException):
            what = f"no answer from {url} within {_seconds(self.timeout)} ({type(cause).__name__})"
            kind = "timeout"
        else:
            what = f"the connection to {url} failed before the answer was complete ({detail})"
            kind = "drop"
        return _Retry(ConnectionFailedError(what), kind, what)

    def _status_error(self, transport: Transport, exc: StatusAnswer) -> Exception:
        """The inert error (or ``_Retry``) for an HTTP error status."""
        status = exc.status
        body: JSON
        try:
            body = exc.response.json()
        except ValueError:
            body = exc.response.text
        message, code_text = transport.error_details(body)
        url = _public_url(str(exc.response.request.url))
        text = f"HTTP {status} from {url}: {message if message is not None else exc.message}"
        text += transport.hint(status)
        if status == 429:
            error = RateLimitError(text, status=status, code=code_text, body=body)
            if isinstance(message, str) and message.startswith("Request too large"):
                return error  # larger than the whole limit: it can never succeed
            return _Retry(error, "status", text, _retry_after(exc.response.headers))
        api_error = ApiError(text, status=status, code=code_text, body=body)
        if status == 408 or status >= 500:
            return _Retry(api_error, "status", text)
        return api_error

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        """Exponential backoff with full jitter; a server-given wait takes precedence."""
        if retry_after is not None and 0 <= retry_after <= _RETRY_AFTER_CEILING:
            return retry_after + self._random.uniform(0, 0.1 * retry_after)
        ceiling = min(self.backoff_max, self.backoff_base * 2**attempt)
        return self._random.uniform(0, ceiling)

    def _token_cost(self, tokens: int) -> float:
        """A request's charge against the ``tokens_per_minute`` cap."""
        assert self.tokens_per_minute is not None
        # The bucket holds ten seconds' worth; a larger request takes all of it.
        return min(float(tokens), max(1.0, self.tokens_per_minute / 6.0))

    @property
    def learned_limits(self) -> dict[str, tuple[float | None, float | None]]:
        """Per model, the (requests, tokens) per minute its latest answers reported.

        Only models called on the current event loop are known (None where a limit
        was not reported); empty when ``learn_limits`` is off.
        """
        try:
            state = self._loops.get(asyncio.get_running_loop())
        except RuntimeError:
            state = next(reversed(self._loops.values()), None) if self._loops else None
        if state is None or state.pacer is None:
            return {}
        return {model: pace.limits() for model, pace in state.pacer.models.items() if pace.known}


def _show_pace(view: CallProgress, state: _LoopState) -> None:
    """Give the progress line the models' pace, at most twice a second."""
    now = time.monotonic()
    if state.pacer is not None and now - state.paced_at >= 0.5:
        state.paced_at = now
        view.paced(state.pacer.summary())


def _forget(in_flight: dict[str, _Call], key: str, call: _Call) -> None:
    """Drop a finished call from the in-flight table (unless a newer one took its key)."""
    if in_flight.get(key) is call:
        del in_flight[key]


def _abandon(call: _Call) -> None:
    """A run stopped waiting: with nobody left, cancel the call (nothing is on the wire)."""
    if call.wanted == 0 and not call.posting and not call.task.done():
        call.task.cancel()


def _budget(kind: Kind, max_retries: int) -> int:
    """How many retries an attempt that failed this way gets."""
    if kind == "connect":
        return min(max_retries, CONNECT_RETRIES)
    if kind == "timeout":
        return min(max_retries, TIMEOUT_RETRIES)
    return max_retries


def _final(retry: _Retry, attempts: int, elapsed: float) -> RequestError:
    """The error a call ends with once its retries are spent: what, how often, how long."""
    error = retry.error
    tail = f"; gave up after {attempts} attempt{'s' if attempts != 1 else ''} in {elapsed:.1f} s"
    message = retry.what + tail
    if isinstance(error, ApiError):
        return type(error)(message, status=error.status, code=error.code, body=error.body)
    return type(error)(message)


def _root_cause(exc: BaseException) -> str:
    """The innermost reason for a failed connection, e.g. "connection refused"."""
    reason = f"{type(exc).__name__}: {exc}"
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno is not None:
            return os.strerror(current.errno).lower()
        if not isinstance(current, (*SDK_ERRORS, NoAnswer)) and str(current):
            reason = f"{type(current).__name__}: {current}"
        current = current.__cause__ or current.__context__
    return reason


def _seconds(value: float | None) -> str:
    return "unlimited" if value is None else f"{value:g} s"


_public_url = public_url


def _retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds the server asks us to wait (``retry-after-ms`` or ``Retry-After``)."""
    for name, scale in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        text = headers.get(name)
        if text is not None:
            try:
                return float(text) / scale
            except ValueError:
                continue  # an HTTP date: fall back to backoff
    return None
