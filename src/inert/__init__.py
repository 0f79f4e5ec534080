"""inert: describe OpenAI calls as inert, typed ``Request[T]`` values and run them
now (``ImmediateRunner``) or through the Batch API (``BatchRunner``).

Building a request performs no I/O; a runner interprets it. The data dependencies
in the request tree decide the rounds, identical calls are made once, and every
paid answer is kept in the :class:`Store`.

The two runners are imported when first used (``inert.BatchRunner``), so that
``import inert`` does not load the OpenAI SDK, rich or the emulator: a script
that only builds requests, or the ``inert`` command's help, starts quickly.
"""

import typing as _typing

from inert._errors import RequestError
from inert._json import JSON, JSONObject
from inert._op import Op
from inert._pricing import Price
from inert._program import Program, Steps, program
from inert._report import FailureGroup, RunReport, Usage
from inert._request import Request, call, fail, gather, gather_all, pure, traverse
from inert._runner import BaseRunner, Runner
from inert._store import Store

if _typing.TYPE_CHECKING:
    from inert._runners._batch import BatchRunner
    from inert._runners._immediate import ImmediateRunner

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
    "BatchRunner": "inert._runners._batch",
    "ImmediateRunner": "inert._runners._immediate",
}
"""Public names whose modules load the OpenAI SDK: imported on first use."""


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
