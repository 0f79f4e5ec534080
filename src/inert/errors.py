"""The exception tree of per-item failures (see :mod:`inert._errors` for the drawing),
and :class:`StoreError` for a store file that cannot be used."""

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
from inert._store import StoreError

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
    "StoreError",
    "TruncatedError",
    "UnansweredError",
]

for _name in __all__:
    globals()[_name].__module__ = "inert.errors"
