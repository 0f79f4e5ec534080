"""Functor, monad and gather laws, checked by running both sides with a fake.

Two requests are equal when they produce the same outcome *and* take the same
number of rounds with the same calls, so a law that held only for values but
added a round would fail here.
"""

from __future__ import annotations

from typing import Any

from hypothesis import assume, given, settings
from hypothesis import strategies as st
from returns.result import Success
from tests.core.trees import OPS, Spec, build, respond_with, specs

from inert import Request, RequestError, fail, gather, gather_all, pure, traverse
from inert.testing import FakeRunner

failing_sets = st.frozensets(st.integers(0, OPS - 1), max_size=2)
small_ints = st.integers(-5, 5)


async def observe(request: Request[Any], failing: frozenset[int]) -> tuple[Any, int, list[str]]:
    """Outcome, rounds and the sorted keys of calls of one run."""
    fake = FakeRunner(respond_with(failing))
    (outcome,) = await fake.run_all_settled([request])
    return outcome, fake.report.rounds, sorted(op.key for op in fake.calls)


def add(k: int) -> Any:
    return lambda v: v + k


def then_spec(spec: Any) -> Any:
    return lambda v: build(spec, v)


@settings(max_examples=75, deadline=None)
@given(spec=specs(), failing=failing_sets)
async def test_map_identity(spec: Spec, failing: frozenset[int]) -> None:
    """``r.map(id)`` is ``r``."""
    r = build(spec)
    assert await observe(r, failing) == await observe(r.map(lambda v: v), failing)


@settings(max_examples=75, deadline=None)
@given(spec=specs(), failing=failing_sets, j=small_ints, k=small_ints)
async def test_map_composition(spec: Spec, failing: frozenset[int], j: int, k: int) -> None:
    """``r.map(f).map(g)`` is ``r.map(g . f)``."""
    r = build(spec)
    left = r.map(add(j)).map(lambda v: v * k)
    right = r.map(lambda v: (v + j) * k)
    assert await observe(left, failing) == await observe(right, failing)


@settings(max_examples=75, deadline=None)
@given(spec=specs(), failing=failing_sets, a=small_ints)
async def test_then_left_identity(spec: Spec, failing: frozenset[int], a: Any) -> None:
    """``pure(a).then(f)`` is ``f(a)``."""
    f = then_spec(spec)
    assert await observe(pure(a).then(f), failing) == await observe(f(a), failing)


@settings(max_examples=75, deadline=None)
@given(spec=specs(), failing=failing_sets)
async def test_then_right_identity(spec: Spec, failing: frozenset[int]) -> None:
    """``r.then(pure)`` is ``r``."""
    r = build(spec)
    assert await observe(r.then(pure), failing) == await observe(r, failing)


@settings(max_examples=75, deadline=None)
@given(spec=specs(), f_spec=specs(), g_spec=specs(), failing=failing_sets)
async def test_then_associativity(
    spec: Spec, f_spec: Spec, g_spec: Spec, failing: frozenset[int]
) -> None:
    """``r.then(f).then(g)`` is ``r.then(lambda x: f(x).then(g))``."""
    r, f, g = build(spec), then_spec(f_spec), then_spec(g_spec)
    left = r.then(f).then(g)
    right = r.then(lambda x: f(x).then(g))
    assert await observe(left, failing) == await observe(right, failing)


@settings(max_examples=75, deadline=None)
@given(a=specs(), b=specs(), failing=failing_sets)
async def test_gather_costs_the_rounds_of_its_slowest_part(
    a: Any, b: Any, failing: frozenset[int]
) -> None:
    """Parts of a gather share rounds: ``gather(a, b)`` takes max, not the sum, of their rounds."""
    _, rounds_a, _ = await observe(build(a), failing)
    _, rounds_b, _ = await observe(build(b), failing)
    _, rounds, _ = await observe(gather(build(a), build(b)), failing)
    assert rounds <= max(rounds_a, rounds_b)


@settings(max_examples=75, deadline=None)
@given(values=st.lists(small_ints, max_size=6))
async def test_gather_of_pure_values_is_pure_and_takes_no_round(values: list[int]) -> None:
    """``gather_all(map(pure, xs))`` is ``pure(xs)``: zero rounds, no calls."""
    outcome, rounds, calls = await observe(gather_all([pure(v) for v in values]), frozenset())
    assert (outcome.unwrap(), rounds, calls) == (values, 0, [])


@settings(max_examples=75, deadline=None)
@given(a=specs(), b=specs(), k=small_ints, failing=failing_sets)
async def test_gather_is_natural(a: Any, b: Any, k: int, failing: frozenset[int]) -> None:
    """Mapping a part before gathering equals mapping the tuple after."""
    left = gather(build(a).map(add(k)), build(b))
    right = gather(build(a), build(b)).map(lambda t: (t[0] + k, t[1]))
    assert await observe(left, failing) == await observe(right, failing)


@settings(max_examples=75, deadline=None)
@given(items=st.lists(st.integers(0, OPS - 1), max_size=6), failing=failing_sets)
async def test_traverse_is_gather_all_of_mapped_items(
    items: list[int], failing: frozenset[int]
) -> None:
    """``traverse(xs, f)`` is ``gather_all([f(x) for x in xs])``."""

    def f(n: int) -> Request[int]:
        return build(("call", n))

    assert await observe(traverse(items, f), failing) == await observe(
        gather_all([f(n) for n in items]), failing
    )


@settings(max_examples=75, deadline=None)
@given(spec=specs(), alt=specs(), failing=failing_sets)
async def test_recover_of_a_success_is_the_success(
    spec: Spec, alt: Spec, failing: frozenset[int]
) -> None:
    """``recover`` changes nothing for a request that succeeds."""
    r = build(spec)
    outcome, rounds, calls = await observe(r, failing)
    assume(isinstance(outcome, Success))
    assert (outcome, rounds, calls) == await observe(r.recover(lambda e: build(alt)), failing)


@settings(max_examples=75, deadline=None)
@given(alt=specs(), message=st.text(max_size=5), failing=failing_sets)
async def test_recover_of_a_failure_is_the_handler(
    alt: Spec, message: str, failing: frozenset[int]
) -> None:
    """``fail(e).recover(h)`` is ``h(e)``."""
    error = RequestError(message)
    left = fail(error).recover(lambda e: build(alt, len(e.message)))
    assert await observe(left, failing) == await observe(build(alt, len(message)), failing)


@settings(max_examples=75, deadline=None)
@given(spec=specs(), failing=failing_sets)
async def test_attempt_always_succeeds_with_the_outcome(
    spec: Spec, failing: frozenset[int]
) -> None:
    """``r.attempt()`` succeeds with ``r``'s outcome as a Result, in the same rounds."""
    r = build(spec)
    outcome, rounds, calls = await observe(r, failing)
    attempted, attempted_rounds, attempted_calls = await observe(r.attempt(), failing)
    assert (Success(outcome), rounds, calls) == (attempted, attempted_rounds, attempted_calls)
