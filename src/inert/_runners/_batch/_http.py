"""The runner's own calls to the files and batches endpoints: no SDK retries, typed failures.

The SDK retries a POST whose answer was lost (``max_retries=2`` by default) without an
idempotency key, so a ``POST /v1/batches`` that reached the server but whose answer
was lost (a 5xx from a proxy, a dropped connection) would make a second batch that
runs and bills too (openai/openai-python#2084). Every call here therefore goes
through ``client.with_options(max_retries=0)`` and is retried by :func:`retrying`,
which lets the caller look first (a create looks its batch up by metadata before
trying again).

Transient answers are retried with backoff: 408, 409, 429 (honouring ``Retry-After``)
and 5xx, dropped connections and timeouts, and bodies that are not the JSON object
asked for (an HTML page from a proxy). Giving up raises :class:`CallFailed`
carrying the typed error each op of the shard gets: :class:`~inert.errors.RateLimitError`
or :class:`~inert.errors.ApiError` with the status for an HTTP answer,
:class:`~inert.errors.ConnectionFailedError` only when no answer came at all.
"""

from __future__ import annotations

import asyncio
import email.utils
import random
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Final, TypeVar

import attrs
import httpx2
import openai
from openai.types import Batch, FileObject

from inert._errors import ApiError, ConnectionFailedError, RateLimitError, RequestError
from inert._json import JSON

T = TypeVar("T")


class _Errors:
    """Both SDKs' exception classes, alike in shape: the batch APIs of both come here.

    Anthropic's are added once its SDK is imported (a user with an Anthropic client
    has imported it; nobody else pays for importing it, which is slow).
    """

    def __init__(self) -> None:
        self.status: tuple[type[Exception], ...] = (openai.APIStatusError,)
        self.connection: tuple[type[Exception], ...] = (openai.APIConnectionError,)
        self.validation: tuple[type[Exception], ...] = (openai.APIResponseValidationError,)
        self.sdk: tuple[type[Exception], ...] = (openai.APIError,)
        self._with_anthropic = False

    def now(self) -> _Errors:
        """These classes, Anthropic's included once its SDK is loaded."""
        if not self._with_anthropic and "anthropic" in sys.modules:
            import anthropic

            self.status += (anthropic.APIStatusError,)
            self.connection += (anthropic.APIConnectionError,)
            self.validation += (anthropic.APIResponseValidationError,)
            self.sdk += (anthropic.APIError,)
            self._with_anthropic = True
        return self


_ERRORS: Final = _Errors()

RETRYABLE_STATUSES: Final = frozenset({408, 409, 429})
"""HTTP statuses worth another try besides 5xx (the SDK's own choice, _base_client.py)."""
_RETRY_AFTER_CAP: Final = 120.0
"""The longest ``Retry-After`` honoured, in seconds."""


class NotJsonError(Exception):
    """A 2xx answer whose body is not the JSON object asked for (an HTML page, say)."""

    def __init__(self, what: str, got: object) -> None:
        shown = got[:120] if isinstance(got, str) else type(got).__name__
        super().__init__(f"{what}: the API answered with a body that is not JSON: {shown!r}")


class CallFailed(Exception):
    """A call to the files or batches endpoints failed for good.

    Attributes:
        error: the typed per-op error every op of the shard gets.
        definite: the server refused (a 4xx other than 408/409/429): trying again
            would give the same answer, and nothing was created.
        status: the HTTP status, when there was an answer.
    """

    def __init__(self, error: RequestError, *, definite: bool, status: int | None) -> None:
        super().__init__(error.message)
        self.error = error
        self.definite = definite
        self.status = status


@attrs.frozen
class Backoff:
    """Delays between tries: ``first`` doubling up to ``cap``, for ``tries`` tries in all."""

    first: float
    cap: float
    tries: int

    def delay(self, failures: int) -> float:
        """The wait after the ``failures``-th consecutive failure (jittered ±25%)."""
        base: float = min(self.cap, self.first * 2.0 ** (failures - 1))
        return base * random.uniform(0.75, 1.25)


def is_transient(exc: BaseException) -> bool:
    """An answer (or lack of one) that may be different next time."""
    errors = _ERRORS.now()
    if isinstance(exc, errors.status):
        status: int = getattr(exc, "status_code", 0)
        return status in RETRYABLE_STATUSES or status >= 500
    return isinstance(exc, (*errors.connection, *errors.validation))


def retry_after(exc: BaseException) -> float | None:
    """Seconds the server asked to wait (``retry-after-ms`` or ``retry-after``), if any."""
    if not isinstance(exc, _ERRORS.now().status):
        return None
    response: httpx2.Response = getattr(exc, "response")  # noqa: B009 - either SDK's APIStatusError
    headers = response.headers
    millis = headers.get("retry-after-ms")
    if millis is not None:
        try:
            return max(0.0, float(millis) / 1000)
        except ValueError:
            pass
    text = headers.get("retry-after")
    if text is None:
        return None
    try:
        return max(0.0, float(text))
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(text) if text.strip() else None
        return None if parsed is None else max(0.0, parsed.timestamp() - time.time())


def failure_of(what: str, exc: BaseException) -> CallFailed:
    """The typed failure for an exception of the SDK (or a body that is not JSON)."""
    errors = _ERRORS.now()
    if isinstance(exc, errors.status):
        # Either SDK's APIStatusError: the same three attributes.
        status: int = getattr(exc, "status_code")  # noqa: B009
        said: str = getattr(exc, "message")  # noqa: B009
        body = _json_body(getattr(exc, "response"))  # noqa: B009
        message, code = error_fields(body)
        if code is None and type(exc).__module__.startswith("anthropic"):
            code = _error_type(body)  # Anthropic's errors name their type, not a code
        text = f"{what}: HTTP {status}: {message or said}"
        error: ApiError
        if status == 429:
            error = RateLimitError(text, status=429, code=code, body=body)
        else:
            error = ApiError(text, status=status, code=code, body=body)
        return CallFailed(error, definite=not is_transient(exc), status=status)
    if isinstance(exc, errors.connection):
        return CallFailed(
            ConnectionFailedError(f"{what}: no answer from the API: {exc}"),
            definite=False,
            status=None,
        )
    # A 2xx answer that is not the JSON asked for (NotJsonError, a body that does not
    # parse, or a page the SDK could not build from it).
    answered: int | None = (
        getattr(exc, "status_code", None) if isinstance(exc, errors.validation) else None
    )
    return CallFailed(
        ApiError(
            f"{what}: the answer is not the JSON expected: {exc}",
            status=answered,
            code="not_json",
        ),
        definite=False,
        status=answered,
    )


def _error_type(body: JSON) -> str | None:
    error = body.get("error") if isinstance(body, dict) else None
    kind = error.get("type") if isinstance(error, dict) else None
    return kind if isinstance(kind, str) else None


def _json_body(response: httpx2.Response) -> JSON:
    try:
        body: JSON = response.json()
    except ValueError:
        return None
    return body


def error_fields(body: JSON) -> tuple[str, str | None]:
    """``(message, code)`` of an error body ``{"error": {"message", "code"}}``."""
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):
            message = error.get("message")
            code = error.get("code")
            return (
                message if isinstance(message, str) else "",
                code if isinstance(code, str) else None,
            )
    return "", None


async def retrying(
    what: str,
    call: Callable[[], Awaitable[T]],
    backoff: Backoff,
    *,
    before_retry: Callable[[CallFailed], Awaitable[T | None]] | None = None,
) -> T:
    """``await call()``, retrying transient failures with backoff.

    Args:
        what: names the call in errors ("creating the batch").
        call: one try; it raises the SDK's exceptions or :class:`NotJsonError`.
        backoff: the waits and the number of tries.
        before_retry: after a transient failure and before the wait, may look for
            the effect of the failed try (a batch created although its answer was
            lost) and return it; ``None`` retries.

    Raises:
        CallFailed: a definite refusal, or the last transient failure.
    """
    failures = 0
    caught: tuple[type[Exception], ...] = (
        *_ERRORS.now().sdk,
        NotJsonError,
        ValueError,
        TypeError,
        AttributeError,
    )
    while True:
        try:
            return await call()
        except caught as exc:
            # ValueError: a JSON content type whose body does not parse; TypeError and
            # AttributeError: a page object the SDK built from a body that is not JSON.
            failure = failure_of(what, exc)
            if failure.definite:
                raise failure from exc
            failures += 1
            if before_retry is not None:
                found = await before_retry(failure)
                if found is not None:
                    return found
            if failures >= backoff.tries:
                raise failure from exc
            wait = backoff.delay(failures)
            asked = retry_after(exc)
            if asked is not None:
                wait = max(wait, min(asked, _RETRY_AFTER_CAP))
            await asyncio.sleep(wait)


def checked_batch(what: str, value: object) -> Batch:
    """``value`` if it is a batch object the SDK read from JSON, else :class:`NotJsonError`."""
    if (
        isinstance(value, Batch)
        and isinstance(getattr(value, "id", None), str)
        and isinstance(getattr(value, "status", None), str)
    ):
        return value
    raise NotJsonError(what, value)


def checked_file(what: str, value: object) -> FileObject:
    """``value`` if it is a file object the SDK read from JSON, else :class:`NotJsonError`."""
    if isinstance(value, FileObject) and isinstance(getattr(value, "id", None), str):
        return value
    raise NotJsonError(what, value)
