"""Property tests of the engine against the reference interpreter in ``trees``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from returns.result import Failure, Success
from tests.core.trees import OPS, Reference, Spec, build, respond_with, specs

from inert import Op, RequestError
from inert._engine import Engine, RawOutcome
from inert._report import ReportBuilder
from inert.testing import FakeRunner

failing_sets = st.frozensets(st.integers(0, OPS - 1), max_size=3)
forests = st.lists(specs(), min_size=1, max_size=4)


@settings(max_examples=150, deadline=None)
@given(roots=forests, failing=failing_sets)
async def test_results_and_rounds_match_the_reference(
    roots: list[Spec], failing: frozenset[int]
) -> None:
    """Values, errors and the round count equal the textbook semantics, round by round."""
    expected, expected_rounds = Reference(failing).run(roots)
    fake = FakeRunner(respond_with(failing))
    actual = await fake.run_all_settled([build(r) for r in roots])
    assert expected == actual
    assert expected_rounds == fake.report.rounds
    assert expected_rounds == len(fake.rounds_log)


@settings(max_examples=150, deadline=None)
@given(roots=forests, failing=failing_sets)
async def test_each_distinct_op_is_asked_at_most_once_per_run(
    roots: list[Spec], failing: frozenset[int]
) -> None:
    """However often a call appears, the runner is asked for it once per run."""
    fake = FakeRunner(respond_with(failing))
    await fake.run_all_settled([build(r) for r in roots])
    keys = [op.key for op in fake.calls]
    assert len(set(keys)) == len(keys)
    assert fake.report.ops_sent == len(keys)
    assert fake.report.ops_requested == fake.report.ops_deduplicated + len(keys)


@settings(max_examples=100, deadline=None)
@given(roots=forests, failing=failing_sets, seed=st.integers(0, 2**16))
async def test_pipelined_and_round_scheduling_give_identical_results(
    roots: list[Spec], failing: frozenset[int], seed: int
) -> None:
    """The immediate-style schedule, answering in random order, agrees with the batch-style one."""
    rounds = FakeRunner(respond_with(failing))
    pipelined = FakeRunner(respond_with(failing), pipelined=True, seed=seed)
    requests = [build(r) for r in roots]
    expected = await rounds.run_all_settled(requests)
    actual = await pipelined.run_all_settled(requests)
    assert expected == actual
    assert {op.key for op in rounds.calls} == {op.key for op in pipelined.calls}


@settings(max_examples=100, deadline=None)
@given(roots=forests, failing=failing_sets, data=st.data())
async def test_results_do_not_depend_on_answer_order(
    roots: list[Spec], failing: frozenset[int], data: st.DataObject
) -> None:
    """However a round's answers are ordered, values, errors and rounds are the reference's.

    The engine is driven directly: a runner hands it answers keyed by op, and
    the engine must match them by key, never by position or arrival. Every round
    of two or more ops is answered out of order (a drawn permutation, reversed if
    it drew the identity), and a fixed pair of calls makes the first round such a
    round.
    """
    roots = [*roots, ("gather", (("call", 0), ("call", 1)))]
    expected, expected_rounds = Reference(failing).run(roots)
    respond = respond_with(failing)
    reordered: list[bool] = []

    async def fetch(ops: Sequence[Op[Any]]) -> Mapping[str, RawOutcome]:
        order = data.draw(st.permutations(ops))
        if len(ops) > 1 and order == list(ops):
            order.reverse()
        reordered.append(len(ops) > 1)
        outcomes: dict[str, RawOutcome] = {}
        for op in order:
            try:
                outcomes[op.key] = Success(respond(op))
            except RequestError as error:
                outcomes[op.key] = Failure(error)
        return outcomes

    report = ReportBuilder()
    actual = await Engine(fetch, pipelined=False, report=report).run([build(r) for r in roots])
    assert expected == actual
    assert expected_rounds == report.rounds
    assert reordered[0]  # the first round was answered out of order


@settings(max_examples=100, deadline=None)
@given(roots=forests, failing=failing_sets, seed=st.integers(0, 2**16))
async def test_pipelined_results_do_not_depend_on_arrival_order(
    roots: list[Spec], failing: frozenset[int], seed: int
) -> None:
    """Answers arriving in a random interleaving give the reference interpreter's results."""
    expected, _ = Reference(failing).run(roots)
    shuffled = FakeRunner(respond_with(failing), pipelined=True, seed=seed)
    assert expected == await shuffled.run_all_settled([build(r) for r in roots])


@settings(max_examples=100, deadline=None)
@given(roots=forests, failing=failing_sets)
async def test_requests_are_rerunnable(roots: list[Spec], failing: frozenset[int]) -> None:
    """Running the same request values twice gives the same results and rounds."""
    requests = [build(r) for r in roots]
    fake = FakeRunner(respond_with(failing))
    first = await fake.run_all_settled(requests)
    first_rounds = fake.report.rounds
    second = await fake.run_all_settled(requests)
    assert first == second
    assert first_rounds == fake.report.rounds


@settings(max_examples=100, deadline=None)
@given(roots=st.lists(specs(), min_size=2, max_size=4), failing=failing_sets)
async def test_a_failure_reaches_only_the_requests_that_depend_on_it(
    roots: list[Spec], failing: frozenset[int]
) -> None:
    """Each request settles exactly as it would if it ran alone: siblings never share a failure."""
    together = await FakeRunner(respond_with(failing)).run_all_settled([build(r) for r in roots])
    alone = [
        (await FakeRunner(respond_with(failing)).run_all_settled([build(r)]))[0] for r in roots
    ]
    assert alone == together
