"""inert: describe OpenAI calls as inert, typed ``Request[T]`` values and run them
now (``ImmediateRunner``) or through the Batch API (``BatchRunner``).

Building a request performs no I/O; a runner interprets it. The data dependencies
in the request tree decide the rounds, identical calls are made once, and every
paid answer is kept in the :class:`Store`.

Only the request core (``Request``, ``Op``, the builders, ``@program`` and the
errors) is loaded by ``import inert``. The other public names are imported on
first use (``inert.Store``, ``inert.BatchRunner``; PEP 562 module ``__getattr__``),
so that a script that only builds requests, or the ``inert`` command's help,
starts without the OpenAI SDK, rich, the emulator, sqlite3 or attrs. Type
checkers read the ``TYPE_CHECKING`` imports below, so they see every name exactly.
"""

import typing as _typing

from inert._errors import RequestError
from inert._json import JSON, JSONObject
from inert._op import Op
from inert._program import Program, Steps, program
from inert._request import Request, call, fail, gather, gather_all, pure, traverse

if _typing.TYPE_CHECKING:
    from inert._pricing import Price
    from inert._report import FailureGroup, RunReport, Usage
    from inert._runner import BaseRunner, Runner
    from inert._runners._batch import BatchRunner
    from inert._runners._immediate import ImmediateRunner
    from inert._store import Store

__all__ = [  # noqa: RUF022 - plain sorted order, pinned by a test
    "BaseRunner",
    "BatchRunner",
    "FailureGroup",
    "ImmediateRunner",
    "JSON",
    "JSONObject",
    "Op",
    "Price",
    "Program",
    "Request",
    "RequestError",
    "RunReport",
    "Runner",
    "Steps",
    "Store",
    "Usage",
    "call",
    "fail",
    "gather",
    "gather_all",
    "program",
    "pure",
    "traverse",
]

_LAZY = {
    "BaseRunner": "inert._runner",
    "BatchRunner": "inert._runners._batch",
    "FailureGroup": "inert._report",
    "ImmediateRunner": "inert._runners._immediate",
    "Price": "inert._pricing",
    "RunReport": "inert._report",
    "Runner": "inert._runner",
    "Store": "inert._store",
    "Usage": "inert._report",
}
"""Public names imported on first use, and the module each is read from.

``inert._store`` stays the one place ``Store`` is read from whichever backend
module defines it, so the store (and sqlite3) load only when a store is used.
"""


def _public(obj: _typing.Any) -> _typing.Any:
    if getattr(obj, "__module__", "").startswith("inert._"):
        obj.__module__ = "inert"
    return obj


def __getattr__(name: str) -> _typing.Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'inert' has no attribute {name!r}")
    import importlib

    value = _public(getattr(importlib.import_module(module), name))
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


for _name in __all__:
    if _name not in _LAZY:
        _public(globals()[_name])
