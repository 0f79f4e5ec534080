"""inert: describe OpenAI calls as inert, typed ``Request[T]`` values and run them
now (``ImmediateRunner``) or through the Batch API (``BatchRunner``).

Building a request performs no I/O; a runner interprets it. The data dependencies
in the request tree decide the rounds, identical calls are made once, and every
paid answer is kept in the :class:`Store`.
"""

from inert._errors import RequestError
from inert._op import Op
from inert._pricing import Price
from inert._program import Program, program
from inert._report import FailureGroup, RunReport
from inert._request import Request, call, fail, gather, gather_all, pure, traverse
from inert._runner import BaseRunner, Runner
from inert._runners._batch import BatchRunner
from inert._runners._immediate import ImmediateRunner
from inert._store import Store

__all__ = [
    "BaseRunner",
    "BatchRunner",
    "FailureGroup",
    "ImmediateRunner",
    "Op",
    "Price",
    "Program",
    "Request",
    "RequestError",
    "RunReport",
    "Runner",
    "Store",
    "call",
    "fail",
    "gather",
    "gather_all",
    "program",
    "pure",
    "traverse",
]

for _name in __all__:
    _obj = globals()[_name]
    if getattr(_obj, "__module__", "").startswith("inert._"):
        _obj.__module__ = "inert"
