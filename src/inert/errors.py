"""The exception tree of per-item failures (see :mod:`inert._errors` for the drawing),
the :class:`StoreError` tree for a store that cannot be used (drawn in
:mod:`inert._store_errors`), and :class:`MissingClientError` for a run that needs a
provider its runner has no client for."""

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
from inert._providers import MissingClientError
from inert._store_errors import (
    DamagedStoreError,
    NewerStoreError,
    NotAStoreError,
    StoreBusyError,
    StoreConnectionError,
    StoreError,
    StoreNotFoundError,
    StoreReadOnlyError,
    StoreWriteError,
    UnstoredAnswersError,
)
from inert._store_file import StorePermissionsWarning

__all__ = [
    "ApiError",
    "CancelledRequestError",
    "ConnectionFailedError",
    "ContentFilterError",
    "DamagedStoreError",
    "ExpiredError",
    "InvalidOutputError",
    "MissingClientError",
    "NewerStoreError",
    "NotAStoreError",
    "RateLimitError",
    "RefusalError",
    "RequestError",
    "RequestErrorGroup",
    "StoreBusyError",
    "StoreConnectionError",
    "StoreError",
    "StoreNotFoundError",
    "StorePermissionsWarning",
    "StoreReadOnlyError",
    "StoreWriteError",
    "TruncatedError",
    "UnansweredError",
    "UnstoredAnswersError",
]

for _name in __all__:
    globals()[_name].__module__ = "inert.errors"
