"""Round and fetch counts on the scenarios Fetch (Scala) pins in its own test suite.

Each test rebuilds one of Fetch's execution-model scenarios with inert requests
and expects Fetch's figures: how many rounds, how many distinct calls. ``one(n)``
answers ``n``; ``many(n)`` answers ``[0, .., n-1]`` (another endpoint, as Fetch's
second data source).
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from inert import Op, Request, call, gather, program, pure, traverse
from inert._json import JSON
from inert.testing import FakeRunner


def _int(raw: JSON) -> int:
    assert isinstance(raw, int)
    return raw


def _ints(raw: JSON) -> list[int]:
    assert isinstance(raw, list)
    return [_int(v) for v in raw]


def one(n: int) -> Request[int]:
    return call(Op(endpoint="/v1/one", body={"id": n}, decode=_int))


def many(n: int) -> Request[list[int]]:
    return call(Op(endpoint="/v1/many", body={"id": n}, decode=_ints))


def respond(op: Op[Any]) -> JSON:
    n = op.body["id"]
    assert isinstance(n, int)
    return n if op.endpoint == "/v1/one" else list(range(n))


async def figures(request: Request[Any]) -> tuple[Any, int, int]:
    """The value, the rounds and the distinct calls of one run."""
    fake = FakeRunner(respond)
    value = await fake.run(request)
    return value, fake.report.rounds, len(fake.calls)


async def test_monadic_bind_implies_sequential_execution() -> None:
    """Two dependent calls: two rounds."""
    request = one(1).then(lambda o: one(2).map(lambda t: (o, t)))
    assert ((1, 2), 2, 2) == await figures(request)


async def test_traversals_are_implicitly_batched() -> None:
    """A traversal after a call: the traversal is one round."""
    request = many(3).then(lambda ns: traverse(ns, one))
    assert ([0, 1, 2], 2, 4) == await figures(request)


async def test_identities_are_deduped_when_batched() -> None:
    """A traversal of 1, 1, 2 asks for 1 and 2 once each, in one round."""
    assert ([1, 1, 2], 1, 2) == await figures(traverse([1, 1, 2], one))


async def test_the_product_of_two_fetches_implies_parallel_fetching() -> None:
    """A pair of calls to two sources is one round."""
    assert ((1, [0, 1, 2]), 1, 2) == await figures(gather(one(1), many(3)))


async def test_nested_products_are_fetched_concurrently() -> None:
    """``((one 1, (one 2, one 3)), one 4)``: one round, four calls."""
    request = gather(gather(one(1), gather(one(2), one(3))), one(4))
    assert (((1, (2, 3)), 4), 1, 4) == await figures(request)


@program
def _three_steps(n: int) -> Generator[Request[object], Any, int]:
    yield from one(n)  # round 1
    yield from many(n)  # round 2
    return (yield from one(n))  # answered from memory


async def test_concurrent_fetches_of_the_same_type_share_batches() -> None:
    """Two three-step programs and a call: two rounds, five calls."""
    request = gather(gather(_three_steps(1), _three_steps(2)), one(3))
    assert (((1, 2), 3), 2, 5) == await figures(request)


@program
def _levels(
    first: list[int], second: list[int], third: list[int]
) -> Generator[Request[object], Any, list[int]]:
    yield from traverse(first, one)  # round 1
    yield from traverse(second, many)  # round 2
    return (yield from traverse(third, one))  # round 3


async def test_every_level_of_sequenced_concurrent_fetches_is_batched() -> None:
    """Three levels of traversals in two programs plus a traversal: three rounds, 19 calls."""
    request = gather(
        gather(_levels([2, 3, 4], [0, 1], [9, 10, 11]), _levels([5, 6, 7], [2, 3], [12, 13, 14])),
        traverse([15, 16, 17], one),
    )
    expected = (([9, 10, 11], [12, 13, 14]), [15, 16, 17])
    assert (expected, 3, 9 + 4 + 6) == await figures(request)


async def test_sequenced_fetches_are_deduped() -> None:
    """``[one 1, one 2, one 1]`` in one round, two calls."""
    assert ((1, 2, 1), 1, 2) == await figures(gather(one(1), one(2), one(1)))


async def test_sources_inside_a_comprehension_are_fetched_concurrently() -> None:
    """A traversal after a pure value still takes a single round."""
    request = pure([1, 2, 1]).then(lambda ns: traverse(ns, one))
    assert ([1, 2, 1], 1, 2) == await figures(request)


async def test_pure_values_let_the_engine_explore_further() -> None:
    """A call behind a pure step joins the first round."""
    request = gather(one(1), pure(2).then(lambda a: one(3).map(lambda b: a + b)))
    assert ((1, 5), 1, 2) == await figures(request)


@program
def _repeats() -> Generator[Request[object], Any, int]:
    a = yield from one(1)
    b = yield from one(1)
    yield from one(1)
    yield from one(2)
    yield from one(3)
    yield from one(1)
    yield from traverse([1, 2, 3], one)
    yield from one(1)
    return a + b


async def test_elements_are_cached_and_not_fetched_more_than_once() -> None:
    """Repeated calls in a sequence are answered from memory: three calls, three rounds."""
    assert (2, 3, 3) == await figures(_repeats())


@program
def _batched_first() -> Generator[Request[object], Any, int]:
    yield from traverse([1, 2, 3], one)
    a = yield from one(1)
    b = yield from one(1)
    yield from one(2)
    yield from one(3)
    return a + b


async def test_batched_elements_are_cached() -> None:
    """After a batched traversal every later call is known: one round, three calls."""
    assert (2, 1, 3) == await figures(_batched_first())
