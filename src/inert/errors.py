"""The exception tree of per-item failures (see :mod:`inert._errors` for the drawing)."""

from inert._errors import (
    ApiError,
    CancelledRequestError,
    ConnectionFailedError,
    ContentFilterError,
    ExpiredError,
    InvalidOutputError,
    RateLimitError,
    RefusalError,
    RequestError,
    RequestErrorGroup,
    TruncatedError,
    UnansweredError,
)

__all__ = [
    "ApiError",
    "CancelledRequestError",
    "ConnectionFailedError",
    "ContentFilterError",
    "ExpiredError",
    "InvalidOutputError",
    "RateLimitError",
    "RefusalError",
    "RequestError",
    "RequestErrorGroup",
    "TruncatedError",
    "UnansweredError",
]

for _name in __all__:
    globals()[_name].__module__ = "inert.errors"
