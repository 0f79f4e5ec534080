"""Rounds of one op (chains of thens) take a shorter way through the fake and the engine.

The fake answers a round of one op in one step, and the engine fetches the next op
of a chain at once, without queueing the fiber. Both must behave exactly as the
general way does: the same values and errors, the same rounds and counts, the
same ops asked. A fake whose ``_send`` is overridden (to the same answers) takes
the general way through both, so a run on each must agree.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from returns.result import Result

from inert import Op, Request, RequestError, call, gather_all, pure
from inert._engine import Outcome
from inert._json import JSON
from inert._report import ReportBuilder
from inert.testing import FakeRunner

STEPS = (
    "plain",  # a dict answer
    "priced",  # a dict with usage: counted and priced
    "error_object",  # a dict with an error member: the op's ApiError
    "null_error",  # "error": null, an answer (as the Responses API sends)
    "refused",  # respond raises a RequestError
    "not_dict",  # a list answer, checked as plain JSON
    "awaited",  # an async respond
    "bad_decode",  # the decoder raises something other than a RequestError
    "then_fails",  # the function of the then raises a RequestError
    "pure",  # the then returns a value, not a call
    "repeat",  # the same op as an earlier step (answered from memory)
    "no_dedup",  # an op built with dedup=False
)


def _body(kind: str, index: int) -> dict[str, JSON]:
    return {"model": "gpt-4o-mini", "kind": kind, "i": index}


def _respond(op: Op[object]) -> Any:
    kind = op.body["kind"]
    if kind == "refused":
        raise RequestError(f"refused {op.body['i']}")
    if kind == "priced":
        return {"value": 1, "usage": {"prompt_tokens": 3, "completion_tokens": 2}}
    if kind == "error_object":
        return {"error": {"message": "over quota", "code": "quota"}}
    if kind == "null_error":
        return {"value": 2, "error": None}
    if kind == "not_dict":
        return [3]
    if kind == "awaited":

        async def later() -> JSON:
            await asyncio.sleep(0)
            return {"value": 4}

        return later()
    return {"value": 5}


def _decode(raw: JSON) -> int:
    if isinstance(raw, list):
        value = raw[0]
    else:
        assert isinstance(raw, dict)
        value = raw["value"]
    assert isinstance(value, int)
    return value


def _bad_decode(raw: JSON) -> int:
    raise KeyError("not decodable")


def _same(value: int) -> int:
    return value


def _chain(kinds: Sequence[str], *, recover_every: int = 3, general: bool = False) -> Request[int]:
    """A chain of thens, one step per kind, with a recover after every few steps.

    ``general`` maps every call by the identity: the frame above the call is then a
    map, not a then, and the engine takes its general way through every round.
    """

    def step(index: int, kind: str) -> Request[int]:
        if kind == "then_fails":
            raise RequestError(f"the then of step {index} failed")
        if kind == "pure":
            return pure(index)
        decode = _bad_decode if kind == "bad_decode" else _decode
        body = _body("plain", 0) if kind == "repeat" else _body(kind, index)
        asked = call(Op(endpoint="/v1/test", body=body, decode=decode, dedup=kind != "no_dedup"))
        return asked.map(_same) if general else asked

    def next_step(index: int, kind: str) -> Any:
        return lambda _value: step(index, kind)

    def recovered(error: RequestError) -> Request[int]:
        return pure(-1)

    chain: Request[int] = call(Op(endpoint="/v1/test", body=_body("plain", 0), decode=_decode))
    for index, kind in enumerate(kinds, start=1):
        chain = chain.then(next_step(index, kind))
        if index % recover_every == 0:
            chain = chain.recover(recovered)
    return chain.recover(recovered)


class _GeneralFake(FakeRunner):
    """The same answers through the general way (``_send`` overridden)."""

    async def _send(
        self, ops: Sequence[Op[Any]], report: ReportBuilder
    ) -> Mapping[str, Outcome] | list[Outcome]:
        return await super()._send(ops, report)


def _run(fake: FakeRunner, requests: Sequence[Request[object]]) -> tuple[Any, ...]:
    results: list[Result[object, RequestError]] = asyncio.run(fake.run_all_settled(requests))
    report = fake.report
    shown = [
        r.value_or(None) if r.value_or(None) is not None else str(r.failure()) for r in results
    ]
    return (
        shown,
        report.rounds,
        report.round_sizes,
        report.ops_requested,
        report.ops_deduplicated,
        report.ops_sent,
        report.ops_paid,
        report.prompt_tokens,
        report.completion_tokens,
        report.cost_usd,
        [[op.key for op in ops] for ops in fake.rounds_log],
        [op.key for op in fake.calls],
    )


@given(chains=st.lists(st.lists(st.sampled_from(STEPS), max_size=12), min_size=1, max_size=3))
def test_chains_run_as_on_the_general_way(chains: list[list[str]]) -> None:
    """Chains of one-op rounds give what the general way gives, to the last count.

    The general way: a fake whose ``_send`` is overridden, and a map above every call.
    """
    shorter = _run(FakeRunner(_respond), [_chain(kinds) for kinds in chains])
    general = _run(_GeneralFake(_respond), [_chain(kinds, general=True) for kinds in chains])
    assert shorter == general


def test_a_chain_of_every_kind_counts_each_round() -> None:
    """One chain with every step: its rounds, paid ops and tokens, by hand."""
    fake = FakeRunner(_respond)
    kinds = [k for k in STEPS if k not in ("then_fails", "pure", "repeat")]
    asyncio.run(fake.run(_chain(kinds, recover_every=1)))
    report = fake.report
    assert report.rounds == 1 + len(kinds)
    assert report.round_sizes == (1,) * (1 + len(kinds))
    # Paid: every answer but the refused one and the error object.
    assert (report.ops_sent, report.ops_paid) == (1 + len(kinds), 1 + len(kinds) - 2)
    assert (report.prompt_tokens, report.completion_tokens) == (3, 2)


def _wide(kinds: Sequence[str], *, general: bool = False) -> Request[list[int]]:
    """One gather of a call per kind (a round of many ops), then a second such round."""

    def asked(index: int, kind: str) -> Request[int]:
        decode = _bad_decode if kind == "bad_decode" else _decode
        body = _body("plain", 0) if kind == "repeat" else _body(kind, index)
        request = call(Op(endpoint="/v1/test", body=body, decode=decode, dedup=kind != "no_dedup"))
        request = request.recover(lambda error: pure(-1))
        return request.map(_same) if general else request

    first = gather_all([asked(i, kind) for i, kind in enumerate(kinds)])
    return first.then(lambda _: gather_all([asked(i, kind) for i, kind in enumerate(kinds)]))


@given(kinds=st.lists(st.sampled_from(STEPS), min_size=2, max_size=12))
def test_wide_rounds_run_as_on_the_general_way(kinds: list[str]) -> None:
    """Rounds of many ops, counted as the fake answers them, give what the general way gives.

    The second round repeats the first: its ops are answered from memory, except those
    built with ``dedup=False``.
    """
    kinds = [kind for kind in kinds if kind not in ("then_fails", "pure")] or ["plain", "plain"]
    shorter = _run(FakeRunner(_respond), [_wide(kinds)])
    general = _run(_GeneralFake(_respond), [_wide(kinds, general=True)])
    assert shorter == general


class _Broken(Exception):
    """A bug in a respond function: it ends the run."""


def _respond_breaking_at(breaking: int) -> Any:
    def respond(op: Op[object]) -> Any:
        if op.body["i"] == breaking:
            raise _Broken(f"respond broke at {breaking}")
        return _respond(op)

    return respond


@given(
    kinds=st.lists(st.sampled_from(STEPS), min_size=1, max_size=12),
    breaking=st.integers(min_value=1, max_value=12),
)
def test_a_chain_ended_by_a_bug_counts_as_on_the_general_way(
    kinds: list[str], breaking: int
) -> None:
    """A respond that raises something other than a RequestError ends the run; what was
    sent and paid until then is counted as the general way counts it."""
    kinds = [kind for kind in kinds if kind != "repeat"]
    seen: list[tuple[Any, ...]] = []
    for fake, general in (
        (FakeRunner(_respond_breaking_at(breaking)), False),
        (_GeneralFake(_respond_breaking_at(breaking)), True),
    ):
        broke = True
        try:
            asyncio.run(fake.run_all_settled([_chain(kinds, general=general)]))
        except _Broken:
            pass
        else:
            broke = False
        report = fake.report
        seen.append(
            (
                broke,
                report.rounds,
                report.round_sizes,
                report.ops_requested,
                report.ops_sent,
                report.ops_paid,
                [op.key for op in fake.calls],
            )
        )
    assert seen[0] == seen[1]
