"""``@program``: do-notation for requests over generator functions.

Inside a program, ``x = yield from request`` reads like ``await``: the program
waits for the request's value, and each sequential ``yield from`` is a data
dependency (a new round only if it performs calls). ``yield from gather(...)``
keeps independent calls in one round. A failure of the awaited request is raised
at the ``yield from`` as its :class:`~inert.RequestError`, so ``try``/``except``
works as in ordinary code. Calling a program builds a request and runs nothing; every
run starts a fresh generator, so the request can run any number of times.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Generator
from typing import Any, Generic, ParamSpec, TypeAlias, TypeVar, final

from inert._request import Request, _Suspend

P = ParamSpec("P")
R_co = TypeVar("R_co", covariant=True)
R = TypeVar("R")

Steps: TypeAlias = Generator[Request[object], object, R]
"""The return annotation of a program's generator function: ``-> Steps[Entry]``.

It yields requests and returns ``R``. What a bare ``yield`` sends back is typed
``object``, not ``Any``: ``x = yield request`` (``from`` forgotten) leaves ``x``
an ``object`` that checkers refuse to use as a value, while
``x = yield from request`` has the request's exact type.
"""


@final
class Program(Generic[P, R_co]):
    """A generator function turned into a function returning ``Request[R]``."""

    __slots__ = ("__dict__", "_fn")

    def __init__(self, fn: Callable[P, Generator[Request[object], Any, R_co]]) -> None:
        self._fn = fn
        functools.update_wrapper(self, fn)

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> Request[R_co]:
        fn = self._fn
        return _Suspend(lambda: fn(*args, **kwargs), getattr(fn, "__qualname__", "program"))

    def __repr__(self) -> str:
        return f"<program {getattr(self._fn, '__qualname__', self._fn)!s}>"


def program(fn: Callable[P, Generator[Request[object], Any, R]]) -> Program[P, R]:
    """Turn a generator function into a function that returns ``Request[R]``.

    Example::

        @program
        def entry(word: str) -> Steps[Entry]:
            clusters = yield from lexicon.clusters(word)
            defs = yield from gather_all(lexicon.define(word, c) for c in clusters)
            return Entry(word, defs)
    """
    if not callable(fn):
        raise TypeError(f"@program decorates a generator function; got {type(fn).__name__}")
    import inspect  # here: only decorating needs it, and it is slow to import

    if not inspect.isgeneratorfunction(fn):
        raise TypeError(
            f"@program needs a generator function, and {getattr(fn, '__qualname__', fn)!s} "
            "has no `yield`: read values with `x = yield from request`, or, for a plain "
            "function of values, use request.map(...)"
        )
    return Program(fn)
