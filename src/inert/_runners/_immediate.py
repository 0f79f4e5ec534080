"""``ImmediateRunner``: runs requests now, over concurrent HTTP calls through the SDK.

Each op's body is posted to its endpoint with the client's low-level ``post``, so
auth, base URL, headers and the connection pool are the SDK's own, while retries
are ours: the SDK's are switched off on a private copy of the client. Every
foreign exception is translated here (as httpx maps httpcore's), so callers only
see :mod:`inert.errors`:

* 429 → retried, honouring ``retry-after-ms`` / ``Retry-After``; after the last
  attempt :class:`~inert.errors.RateLimitError`;
* 408 and 5xx → retried; after the last attempt :class:`~inert.errors.ApiError`;
* a dropped connection or a timeout → retried; then
  :class:`~inert.errors.ConnectionFailedError`;
* any other 4xx → :class:`~inert.errors.ApiError` at once (it cannot succeed).
"""

from __future__ import annotations

import asyncio
import contextvars
import math
import random
import sys
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Final, TypeVar

import jiter
import openai
from aiolimiter import AsyncLimiter
from returns.result import Failure, Result, Success
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from inert._engine import RawOutcome
from inert._errors import ApiError, ConnectionFailedError, RateLimitError, RequestError
from inert._json import JSON
from inert._op import Op
from inert._pricing import Price
from inert._report import ReportBuilder
from inert._request import Request
from inert._runner import BaseRunner, ResponseStore

T = TypeVar("T")

_RETRY_AFTER_CEILING: Final = 60.0
"""Longest server-requested wait we honour (as the SDK does); longer ones use backoff."""


class _Retry(Exception):
    """One failed attempt that may succeed if repeated; carries the final error to use."""

    def __init__(self, error: RequestError, retry_after: float | None = None) -> None:
        super().__init__(error.message)
        self.error = error
        self.retry_after = retry_after


class _LoopState:
    """Per-event-loop primitives (a semaphore belongs to the loop that first waits on it)."""

    __slots__ = ("in_flight", "requests", "semaphore", "tokens")

    def __init__(self, max_concurrency: int, rpm: float | None, tpm: float | None) -> None:
        self.semaphore = asyncio.Semaphore(max_concurrency)
        # Burst windows shorter than a minute, so a limit paces requests instead of
        # letting a whole minute's worth through at once.
        self.requests = None if rpm is None else _limiter(rpm, 1.0)
        self.tokens = None if tpm is None else _limiter(tpm, 10.0)
        self.in_flight: dict[str, asyncio.Future[RawOutcome]] = {}


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


class _CallProgress:
    """A live line on stderr: calls answered of calls sent so far, and retries.

    The total grows while the run discovers dependent calls, so it is the calls
    sent so far, not a forecast.
    """

    def __init__(self) -> None:
        self._progress = Progress(
            TextColumn("calls"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("retries {task.fields[retries]}"),
            TimeElapsedColumn(),
            console=Console(stderr=True),
            transient=False,
        )
        self._task = self._progress.add_task("calls", total=0, retries=0)
        self._total = 0

    def __enter__(self) -> _CallProgress:
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()

    def sent(self, n: int) -> None:
        self._total += n
        self._progress.update(self._task, total=self._total)

    def answered(self, retries: int) -> None:
        self._progress.update(self._task, advance=1, retries=retries)


_VIEW: contextvars.ContextVar[_CallProgress | None] = contextvars.ContextVar(
    "inert_immediate_progress", default=None
)
"""The progress display of the run in this context (runs on one runner may overlap)."""


class ImmediateRunner(BaseRunner):
    """Calls the API now: bounded concurrency, rate limits, retries, pipelining.

    Pipelined: every op is sent as soon as a request needs it, so a dependent call
    starts the moment its input arrives, with no round barrier. Identical ops in
    flight at once (also across concurrent runs on this runner) are sent once.

    Args:
        client: the ``openai.AsyncOpenAI`` to send through (its base URL, key and
            HTTP client are used; its own retries are not).
        max_concurrency: the most requests in flight at once.
        requests_per_minute: a request rate limit, or None for none.
        tokens_per_minute: a token rate limit, or None; each request is charged
            its body's length / 4 plus its ``max_tokens`` / ``max_completion_tokens``.
        max_retries: extra attempts after a 429, 408, 5xx, timeout or dropped
            connection.
        backoff_base: seconds of the first backoff; doubled on every attempt, with
            full jitter.
        backoff_max: the longest backoff, in seconds.
        timeout: seconds for one attempt, or None for no limit.
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
        client: openai.AsyncOpenAI,
        *,
        max_concurrency: int = 64,
        requests_per_minute: float | None = None,
        tokens_per_minute: float | None = None,
        max_retries: int = 6,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
        timeout: float | None = 600,
        store: ResponseStore | None = None,
        prices: Mapping[str, Price] | None = None,
        progress: bool | None = None,
    ) -> None:
        super().__init__(store=store, prices=prices)
        if not isinstance(client, openai.AsyncOpenAI):
            raise TypeError(
                f"ImmediateRunner takes an openai.AsyncOpenAI client; got {type(client).__name__}"
            )
        _whole("max_concurrency", max_concurrency, minimum=1)
        _whole("max_retries", max_retries, minimum=0)
        _positive("requests_per_minute", requests_per_minute, allow_none=True)
        _positive("tokens_per_minute", tokens_per_minute, allow_none=True)
        _positive("backoff_base", backoff_base, allow_none=False)
        _positive("backoff_max", backoff_max, allow_none=False)
        _positive("timeout", timeout, allow_none=True)
        if backoff_max < backoff_base:
            raise ValueError(
                f"backoff_max ({backoff_max}) must not be less than backoff_base ({backoff_base})"
            )
        # A copy sharing the connection pool, with the SDK's retries off: ours decide.
        self._client = client.with_options(max_retries=0)
        self.max_concurrency = max_concurrency
        self.requests_per_minute = requests_per_minute
        self.tokens_per_minute = tokens_per_minute
        self.max_retries = max_retries
        self.backoff_base: float = float(backoff_base)
        self.backoff_max: float = float(backoff_max)
        self.timeout = timeout
        self._options: openai.RequestOptions = {
            "max_retries": 0,
            "timeout": timeout,
            "security": {"bearer_auth": True},
        }
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
        with _CallProgress() as view:
            token = _VIEW.set(view)
            try:
                return await super().run_all_settled(requests)
            finally:
                _VIEW.reset(token)

    def __repr__(self) -> str:
        # Never the client (its repr could carry the key): the settings only.
        return (
            f"ImmediateRunner(max_concurrency={self.max_concurrency}, "
            f"requests_per_minute={self.requests_per_minute}, "
            f"tokens_per_minute={self.tokens_per_minute}, max_retries={self.max_retries})"
        )

    def _state(self) -> _LoopState:
        loop = asyncio.get_running_loop()
        state = self._loops.get(loop)
        if state is None:
            for old in [old for old in self._loops if old.is_closed()]:
                del self._loops[old]
            state = _LoopState(
                self.max_concurrency, self.requests_per_minute, self.tokens_per_minute
            )
            self._loops[loop] = state
        return state

    async def _send(
        self, ops: Sequence[Op[Any]], report: ReportBuilder
    ) -> Mapping[str, RawOutcome]:
        state = self._state()
        view = _VIEW.get()
        if view is not None:
            view.sent(len(ops))
        if len(ops) == 1:
            op = ops[0]
            outcome = await self._shared(op, report, state)
            if view is not None:
                view.answered(report.retries)
            return {op.key: outcome}
        outcomes = await asyncio.gather(*(self._shared(op, report, state) for op in ops))
        if view is not None:
            for _ in ops:
                view.answered(report.retries)
        return {op.key: outcome for op, outcome in zip(ops, outcomes, strict=True)}

    async def _shared(self, op: Op[Any], report: ReportBuilder, state: _LoopState) -> RawOutcome:
        """Send ``op``, or wait for the identical op another run already has in flight."""
        if not op.dedup:  # distinct samples are wanted: never share an answer
            return await self._attempts(op, report, state)
        key = op.key
        pending = state.in_flight.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[RawOutcome] = asyncio.get_running_loop().create_future()
        state.in_flight[key] = future
        try:
            outcome = await self._attempts(op, report, state)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved: waiters (if any) get it too
            raise
        finally:
            del state.in_flight[key]
        future.set_result(outcome)
        return outcome

    async def _attempts(self, op: Op[Any], report: ReportBuilder, state: _LoopState) -> RawOutcome:
        """Post ``op`` until it succeeds, fails for good, or its retries are spent."""
        path = op.endpoint[3:] if op.endpoint.startswith("/v1/") else op.endpoint
        cost = self._token_cost(op) if state.tokens is not None else 0.0
        attempt = 0
        while True:
            if state.requests is not None:
                await state.requests.acquire()
            if state.tokens is not None:
                await state.tokens.acquire(cost)
            try:
                async with state.semaphore:
                    return Success(await self._post(path, op.canonical_body().encode()))
            except _Retry as retry:
                if attempt >= self.max_retries:
                    return Failure(retry.error)
                delay = self._backoff(attempt, retry.retry_after)
            except RequestError as error:
                return Failure(error)
            attempt += 1
            report.retries += 1
            await asyncio.sleep(delay)

    async def _post(self, path: str, body: bytes) -> JSON:
        """One attempt; translates every foreign error into an inert one (or ``_Retry``).

        The body goes out as the op's canonical JSON text, the very bytes the batch
        runner writes into its JSONL lines, so the two modes cannot differ.
        """
        try:
            content = await self._client.post(
                path, cast_to=bytes, content=body, options=self._options
            )
        except openai.APIStatusError as exc:
            raise _status_error(exc) from None
        except openai.APIConnectionError as exc:  # APITimeoutError is one too
            what = "timed out" if isinstance(exc, openai.APITimeoutError) else "failed"
            raise _Retry(ConnectionFailedError(f"the connection {what}: {exc}")) from None
        except openai.OpenAIError as exc:
            raise ConnectionFailedError(f"{type(exc).__name__}: {exc}") from None
        try:
            raw = jiter.from_json(content)  # typed JSON (typestubs/jiter)
        except ValueError:
            raise _Retry(
                ConnectionFailedError("the response body is not JSON (a cut-off answer?)")
            ) from None
        return raw

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        """Exponential backoff with full jitter; a server-given wait takes precedence."""
        if retry_after is not None and 0 <= retry_after <= _RETRY_AFTER_CEILING:
            return retry_after + self._random.uniform(0, 0.1 * retry_after)
        ceiling = min(self.backoff_max, self.backoff_base * 2**attempt)
        return self._random.uniform(0, ceiling)

    def _token_cost(self, op: Op[Any]) -> float:
        """Estimated tokens of one request, for the tokens-per-minute limit."""
        body = op.body
        limit = body.get("max_completion_tokens") or body.get("max_tokens") or 0
        estimate = len(op.canonical_body()) / 4 + (limit if isinstance(limit, int) else 0)
        assert self.tokens_per_minute is not None
        # The bucket holds ten seconds' worth; a larger request takes all of it.
        return min(float(estimate), max(1.0, self.tokens_per_minute / 6.0))


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


def _status_error(exc: openai.APIStatusError) -> Exception:
    """The inert error (or ``_Retry``) for an HTTP error status."""
    status = exc.status_code
    body: JSON
    try:
        body = exc.response.json()
    except ValueError:
        body = exc.response.text
    details = body.get("error") if isinstance(body, dict) else None
    message = details.get("message") if isinstance(details, dict) else None
    code = details.get("code") if isinstance(details, dict) else None
    text = f"HTTP {status}: {message if isinstance(message, str) else exc.message}"
    code_text = code if isinstance(code, str) else None
    if status == 429:
        error = RateLimitError(text, status=status, code=code_text, body=body)
        return _Retry(error, _retry_after(exc.response.headers))
    api_error = ApiError(text, status=status, code=code_text, body=body)
    if status == 408 or status >= 500:
        return _Retry(api_error)
    return api_error
