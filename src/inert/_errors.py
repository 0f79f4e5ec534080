"""The exception tree of per-item failures.

Every failure of one request is a :class:`RequestError`; it reaches only the
requests that depend on the failed call, never their siblings::

    RequestError                  base; user code and fakes may raise it too
    ├── ApiError                  the API answered with an error (status, code, body)
    │   └── RateLimitError        429 after every retry was spent
    ├── ConnectionFailedError     no answer at all (dropped connection, timeout)
    ├── RefusalError              the model refused (``message.refusal``)
    ├── TruncatedError            ``finish_reason == "length"``: the answer was cut off
    ├── ContentFilterError        ``finish_reason == "content_filter"``
    ├── InvalidOutputError        the answer does not decode or validate (also ValueError)
    ├── ExpiredError              a batch line expired, and every resubmission did too
    ├── CancelledRequestError     the batch carrying the line was cancelled
    ├── UnansweredError           a runner returned no outcome for an op it was given
    └── RequestErrorGroup         ``run_all`` failed for several requests; ``.errors``

The names end in ``Error`` and the classes are ordinary exceptions, so ``except``
works as usual; they are also values in ``Result`` from ``run_all_settled`` and
``Request.attempt``.
"""

from __future__ import annotations

from collections.abc import Sequence

from inert._json import JSON


class RequestError(Exception):
    """A request failed. Raised by runners, decoders, ``fail(...)`` and user code.

    Args:
        message: what happened, for people.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r})"

    def __eq__(self, other: object) -> bool:
        # Errors are values: two of the same class and message are the same failure.
        # Property tests compare results across schedulers, so equality must not be identity.
        if type(other) is not type(self):
            return NotImplemented
        assert isinstance(other, RequestError)
        return self.message == other.message

    def __hash__(self) -> int:
        return hash((type(self).__name__, self.message))


class ApiError(RequestError):
    """The API answered with an error: a status code, an error code and the body."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        body: JSON = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.body = body


class RateLimitError(ApiError):
    """HTTP 429 that persisted through every retry."""


class ConnectionFailedError(RequestError):
    """The API gave no answer: the connection dropped or timed out on every attempt."""


class RefusalError(RequestError):
    """The model refused to answer; ``refusal`` holds its words."""

    def __init__(self, message: str, *, refusal: str = "") -> None:
        super().__init__(message)
        self.refusal = refusal


class TruncatedError(RequestError):
    """The answer stopped at the token limit (``finish_reason == "length"``)."""


class ContentFilterError(RequestError):
    """The answer was withheld by the content filter."""


class InvalidOutputError(RequestError, ValueError):
    """The answer arrived but does not decode to the expected type."""


class ExpiredError(RequestError):
    """A batch line expired before it ran, on every attempt allowed."""


class CancelledRequestError(RequestError):
    """The batch carrying this call was cancelled before the line ran."""


class UnansweredError(RequestError):
    """A runner returned no outcome for an op it was asked for (a bug in the runner)."""


class RequestErrorGroup(RequestError):
    """Several requests of one ``run_all`` failed; ``errors`` pairs each index with its error."""

    def __init__(self, errors: Sequence[tuple[int, RequestError]]) -> None:
        shown = "; ".join(f"[{i}] {type(e).__name__}: {e.message}" for i, e in errors[:5])
        more = f"; and {len(errors) - 5} more" if len(errors) > 5 else ""
        super().__init__(f"{len(errors)} requests failed: {shown}{more}")
        self.errors: tuple[tuple[int, RequestError], ...] = tuple(errors)


# Tracebacks and reprs name the public home of each error, not this private module
# (httpx's habit), however the error was imported.
for _value in list(globals().values()):
    if isinstance(_value, type) and issubclass(_value, RequestError):
        _value.__module__ = "inert.errors"
