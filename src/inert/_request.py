"""``Request[T]``: an immutable, covariant description of work that performs API calls.

A request is a tree of a few node kinds: a pure value, a failure, a call of an
:class:`~inert.Op`, a map, a ``then`` (flat-map), a ``recover``, a gather of parts
and a program (a generator, see :func:`~inert.program`). Building one does nothing;
a runner interprets it, as many times as you like. The data dependencies in the
tree decide the rounds: parts of a ``gather`` run in the same round, and ``then``
creates a new round only when its function needs the earlier result.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Generator, Iterator
from typing import (
    TYPE_CHECKING,
    Any,
    Final,
    Generic,
    Never,
    NoReturn,
    TypeVar,
    cast,
    final,
    overload,
)

from inert._errors import RequestError
from inert._gc import paused_gc
from inert._op import Op

if TYPE_CHECKING:
    from returns.result import Result

# The nodes are plain slotted classes and ``returns`` is imported by ``attempt()``
# alone: building requests needs neither attrs nor returns, so ``import inert``
# loads neither (see ``inert/__init__``).

T_co = TypeVar("T_co", covariant=True)
T = TypeVar("T")
U = TypeVar("U")
A = TypeVar("A")
B = TypeVar("B")
C = TypeVar("C")
D = TypeVar("D")
E = TypeVar("E")
F = TypeVar("F")
G = TypeVar("G")
H = TypeVar("H")


class Request(Generic[T_co]):
    """A description of work that produces a ``T`` (or fails with a RequestError).

    Requests are values: immutable, comparable by identity only, re-runnable. Build
    them with :func:`call`, :func:`pure`, :func:`fail`, :func:`gather`,
    :func:`gather_all`, :func:`traverse`, the methods below and ``@program``; run
    them with a runner (``await runner.run(request)``).
    """

    __slots__ = ()

    def __setattr__(self, name: str, value: object) -> NoReturn:
        raise AttributeError(f"a Request is immutable; cannot set {name!r}")

    def __delattr__(self, name: str) -> NoReturn:
        raise AttributeError(f"a Request is immutable; cannot delete {name!r}")

    def map(self, f: Callable[[T_co], U]) -> Request[U]:
        """The request whose value is ``f`` of this one's value; it adds no round."""
        node: _Map = _new_node(_Map)
        _set_map_source(node, self)
        _set_map_f(node, f)
        return node

    def then(self, f: Callable[[T_co], Request[U]]) -> Request[U]:
        """The request that continues with ``f(value)``; its calls wait for this value."""
        node: _Then = _new_node(_Then)
        _set_then_source(node, self)
        _set_then_f(node, f)
        return node

    def recover(self, handler: Callable[[RequestError], Request[U]]) -> Request[T_co | U]:
        """On failure, continue with ``handler(error)`` (Haxl's ``catch``, Effect's ``catchAll``).

        Failures that are not :class:`RequestError` (bugs in your functions) are not
        caught: they end the run.
        """
        return _Recover(self, handler)

    def attempt(self) -> Request[Result[T_co, RequestError]]:
        """The request that always succeeds, with ``Success(value)`` or ``Failure(error)``."""
        return _Recover(self.map(_success), _failure_of)

    def __iter__(self) -> Generator[Request[object], Any, T_co]:
        """``value = yield from request`` inside a ``@program`` waits for its value."""
        value: T_co = yield self
        return value


def _success(value: T) -> Result[T, RequestError]:
    from returns.result import Success

    return Success(value)


def _failure_of(error: RequestError) -> Request[Result[Any, RequestError]]:
    from returns.result import Failure

    return _Pure(Failure(error))


_set: Final = object.__setattr__
"""Sets a slot of a new node, past ``Request.__setattr__`` (which refuses)."""


@final
class _Pure(Request[T_co]):
    __slots__ = ("value",)
    value: T_co

    def __init__(self, value: T_co) -> None:
        _set(self, "value", value)

    def __repr__(self) -> str:
        return f"pure({self.value!r:.60})"


@final
class _Fail(Request[Never]):
    __slots__ = ("error",)
    error: RequestError

    def __init__(self, error: RequestError) -> None:
        _set(self, "error", error)

    def __repr__(self) -> str:
        return f"fail({self.error!r})"


@final
class _Call(Request[T_co]):
    __slots__ = ("op",)
    op: Op[T_co]

    def __init__(self, op: Op[T_co]) -> None:
        _set(self, "op", op)

    def __repr__(self) -> str:
        return f"call({self.op!r})"


@final
class _Map(Request[Any]):
    __slots__ = ("f", "source")
    source: Request[Any]
    f: Callable[[Any], Any]

    def __init__(self, source: Request[Any], f: Callable[[Any], Any]) -> None:
        _set(self, "source", source)
        _set(self, "f", f)

    def __repr__(self) -> str:
        return "<Request map>"


@final
class _Then(Request[Any]):
    __slots__ = ("f", "source")
    source: Request[Any]
    f: Callable[[Any], Request[Any]]

    def __init__(self, source: Request[Any], f: Callable[[Any], Request[Any]]) -> None:
        _set(self, "source", source)
        _set(self, "f", f)

    def __repr__(self) -> str:
        return "<Request then>"


@final
class _Recover(Request[Any]):
    __slots__ = ("handler", "source")
    source: Request[Any]
    handler: Callable[[RequestError], Request[Any]]

    def __init__(
        self, source: Request[Any], handler: Callable[[RequestError], Request[Any]]
    ) -> None:
        _set(self, "source", source)
        _set(self, "handler", handler)

    def __repr__(self) -> str:
        return "<Request recover>"


@final
class _Gather(Request[tuple[Any, ...]]):
    __slots__ = ("parts",)
    parts: tuple[Request[Any], ...]

    def __init__(self, parts: tuple[Request[Any], ...]) -> None:
        _set(self, "parts", parts)

    def __repr__(self) -> str:
        return f"<Request gather of {len(self.parts)}>"


@final
class _Suspend(Request[Any]):
    """A program: ``start()`` makes a fresh generator each time the request runs."""

    __slots__ = ("name", "start")
    start: Callable[[], Generator[Request[object], Any, Any]]
    name: str

    def __init__(
        self, start: Callable[[], Generator[Request[object], Any, Any]], name: str
    ) -> None:
        _set(self, "start", start)
        _set(self, "name", name)

    def __repr__(self) -> str:
        return f"<Request program {self.name}>"


def pure(value: T) -> Request[T]:
    """The request that produces ``value`` and performs no call (zero rounds)."""
    return _Pure(value)


def fail(error: RequestError) -> Request[Never]:
    """The request that fails with ``error``; recover from it with ``.recover``."""
    if not isinstance(error, RequestError):
        raise TypeError(
            f"fail() takes a RequestError (or subclass); got {type(error).__name__}. "
            "Wrap it: fail(RequestError(str(exc)))"
        )
    return _Fail(error)


_new_node: Final = object.__new__


def _slot_setter(cls: type, name: str) -> Callable[[object, object], None]:
    """Sets the slot ``name`` of a new ``cls`` node (what its ``__init__`` does, without
    the call): nodes are built per op, and the call of ``__init__`` costs as much as
    the rest of building one."""
    return cast(Callable[[object, object], None], cls.__dict__[name].__set__)


_set_call_op: Final = _slot_setter(_Call, "op")
_set_map_source: Final = _slot_setter(_Map, "source")
_set_map_f: Final = _slot_setter(_Map, "f")
_set_then_source: Final = _slot_setter(_Then, "source")
_set_then_f: Final = _slot_setter(_Then, "f")


def call(op: Op[T]) -> Request[T]:
    """The request that performs ``op`` and decodes its response."""
    if op.__class__ is not Op and not isinstance(op, Op):
        raise TypeError(f"call() takes an Op; got {type(op).__name__}")
    node: _Call[T] = _new_node(_Call)
    _set_call_op(node, op)
    return node


@overload
def gather() -> Request[tuple[()]]: ...
@overload
def gather(a: Request[A], /) -> Request[tuple[A]]: ...
@overload
def gather(a: Request[A], b: Request[B], /) -> Request[tuple[A, B]]: ...
@overload
def gather(a: Request[A], b: Request[B], c: Request[C], /) -> Request[tuple[A, B, C]]: ...
@overload
def gather(
    a: Request[A], b: Request[B], c: Request[C], d: Request[D], /
) -> Request[tuple[A, B, C, D]]: ...
@overload
def gather(
    a: Request[A], b: Request[B], c: Request[C], d: Request[D], e: Request[E], /
) -> Request[tuple[A, B, C, D, E]]: ...
@overload
def gather(
    a: Request[A], b: Request[B], c: Request[C], d: Request[D], e: Request[E], f: Request[F], /
) -> Request[tuple[A, B, C, D, E, F]]: ...
@overload
def gather(
    a: Request[A],
    b: Request[B],
    c: Request[C],
    d: Request[D],
    e: Request[E],
    f: Request[F],
    g: Request[G],
    /,
) -> Request[tuple[A, B, C, D, E, F, G]]: ...
@overload
def gather(
    a: Request[A],
    b: Request[B],
    c: Request[C],
    d: Request[D],
    e: Request[E],
    f: Request[F],
    g: Request[G],
    h: Request[H],
    /,
) -> Request[tuple[A, B, C, D, E, F, G, H]]: ...
@overload
def gather(*parts: Request[T]) -> Request[tuple[T, ...]]: ...
def gather(*parts: Request[Any]) -> Request[tuple[Any, ...]]:
    """Independent requests as one: their calls share rounds; the value is a tuple.

    If parts fail, the gather fails with the error of the first failed part (in
    argument order), after every part has settled, so the result never depends on
    the order in which answers arrive.
    """
    _check_requests(parts, "gather")
    return _Gather(parts)


def gather_all(requests: Collection[Request[T]] | Iterator[Request[T]]) -> Request[list[T]]:
    """A list of independent requests as one request of a list, in order.

    ``requests`` is a collection (a list, a tuple...) or an iterator (a generator
    expression...). A single request is refused, by the type checker and at run
    time: a ``Request`` is iterable only for ``yield from`` inside a ``@program``.
    Given an iterator (or through :func:`traverse`), it builds the requests with the
    cyclic garbage collector paused: 100,000 new requests hold no cycles, and the
    collector's passes over them would cost more than building them.
    """
    if isinstance(requests, Request):
        raise TypeError(
            "gather_all() takes a list of requests, not one Request; "
            "write gather_all([request]), or use the request itself"
        )
    if isinstance(requests, list | tuple):
        parts = tuple(requests)
    else:
        with paused_gc():
            parts = tuple(requests)
    _check_requests(parts, "gather_all")
    return _Map(_Gather(parts), list)


def traverse(items: Collection[A] | Iterator[A], f: Callable[[A], Request[B]]) -> Request[list[B]]:
    """``gather_all(f(item) for item in items)``: one request per item, in one round.

    ``items`` is a collection or an iterator of plain values; a ``Request`` is
    refused (to use a request's value, ``request.then(lambda xs: traverse(xs, f))``).
    """
    if isinstance(items, Request):
        raise TypeError(
            "traverse() takes the items themselves, not a Request of them; "
            "write request.then(lambda items: traverse(items, f))"
        )
    return gather_all(map(f, items))


_NODE_KINDS: Final = frozenset({_Pure, _Fail, _Call, _Map, _Then, _Recover, _Gather, _Suspend})
"""Every kind of request node (all final)."""


def _check_requests(parts: tuple[object, ...], where: str) -> None:
    if all(map(_NODE_KINDS.__contains__, map(type, parts))):
        return  # every part is a node: the common case, checked in C
    for i, part in enumerate(parts):
        if not isinstance(part, Request):
            hint = (
                " (did you pass a coroutine? build Requests, not awaitables)"
                if hasattr(part, "__await__")
                else ""
            )
            raise TypeError(f"{where}() part {i} is a {type(part).__name__}, not a Request{hint}")
