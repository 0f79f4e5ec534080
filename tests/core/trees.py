"""Random request trees for property tests, with a reference interpreter.

A tree is a plain tuple spec. ``build`` turns it into a ``Request[int]``;
``Reference`` evaluates it with the textbook Haxl semantics, recomputed from
scratch every round (obviously correct, and slow): a tree is either done, failed,
or blocked on a set of calls; each round answers every blocked call at once.
Property tests compare the engine against it.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any, TypeAlias

from hypothesis import strategies as st
from returns.result import Failure, Result, Success

from inert import Op, Request, RequestError, call, fail, gather_all, program, pure
from inert._json import JSON

Spec: TypeAlias = tuple[Any, ...]
OPS = 8


def op_for(n: int) -> Op[int]:
    """The op of call number ``n``: its answer decodes to an int."""
    return Op(endpoint="/v1/test", body={"n": n}, decode=_decode)


def _decode(raw: JSON) -> int:
    assert isinstance(raw, dict)
    value = raw["v"]
    assert isinstance(value, int)
    return value


def answer(n: int) -> int:
    """The value the fake API gives for call ``n``."""
    return 3 * n + 1


def respond_with(failing: frozenset[int]) -> Any:
    """A FakeRunner responder: call ``n`` fails when ``n`` is in ``failing``."""

    def respond(op: Op[Any]) -> JSON:
        n = op.body["n"]
        assert isinstance(n, int)
        if n in failing:
            raise RequestError(f"op {n} failed")
        return {"v": answer(n)}

    return respond


def specs() -> st.SearchStrategy[Spec]:
    """Random trees of every node kind, a few levels deep."""
    leaves = st.one_of(
        st.tuples(st.just("pure"), st.integers(-3, 3)),
        st.tuples(st.just("call"), st.integers(0, OPS - 1)),
        st.tuples(st.just("fail"), st.sampled_from(["x", "y"])),
    )

    def extend(children: st.SearchStrategy[Spec]) -> st.SearchStrategy[Spec]:
        return st.one_of(
            st.tuples(st.just("map"), children, st.integers(-2, 2)),
            st.tuples(st.just("then"), children, children),
            st.tuples(st.just("gather"), st.lists(children, max_size=4).map(tuple)),
            st.tuples(st.just("recover"), children, children),
            st.tuples(st.just("attempt"), children),
            st.tuples(st.just("program"), st.lists(children, min_size=1, max_size=3).map(tuple)),
        )

    return st.recursive(leaves, extend, max_leaves=12)


def build(spec: Spec, shift: int = 0) -> Request[int]:
    """The request a spec describes; ``shift`` renumbers calls inside a ``then``."""
    kind = spec[0]
    if kind == "pure":
        return pure(spec[1])
    if kind == "call":
        return call(op_for((spec[1] + shift) % OPS))
    if kind == "fail":
        return fail(RequestError(spec[1]))
    if kind == "map":
        k = spec[2]
        return build(spec[1], shift).map(lambda v: v + k)
    if kind == "then":
        sub = spec[2]
        return build(spec[1], shift).then(lambda v: build(sub, shift + v))
    if kind == "gather":
        return gather_all([build(s, shift) for s in spec[1]]).map(sum)
    if kind == "recover":
        alt = spec[2]
        return build(spec[1], shift).recover(lambda e: build(alt, shift + len(e.message)))
    if kind == "attempt":
        return build(spec[1], shift).attempt().map(_or_minus_one)
    if kind == "program":
        return _sequence(tuple(spec[1]), shift)
    raise AssertionError(kind)


def _or_minus_one(result: Result[int, RequestError]) -> int:
    return result.value_or(-1)


@program
def _sequence(parts: tuple[Spec, ...], shift: int) -> Generator[Request[object], Any, int]:
    total = 0
    for part in parts:
        total += yield from build(part, shift + total)
    return total


Step: TypeAlias = tuple[str, Any]


class Reference:
    """Evaluates specs against the answers known so far (Haxl's semantics)."""

    def __init__(self, failing: frozenset[int]) -> None:
        self.failing = failing
        self.known: dict[int, Result[int, RequestError]] = {}

    def step(self, spec: Spec, shift: int = 0) -> Step:
        """("done", v), ("failed", message) or ("blocked", calls)."""
        kind = spec[0]
        if kind == "pure":
            return ("done", spec[1])
        if kind == "fail":
            return ("failed", spec[1])
        if kind == "call":
            n = (spec[1] + shift) % OPS
            if n not in self.known:
                return ("blocked", frozenset([n]))
            known = self.known[n]
            if isinstance(known, Success):
                return ("done", known.unwrap())
            return ("failed", known.failure().message)
        if kind == "map":
            inner = self.step(spec[1], shift)
            return ("done", inner[1] + spec[2]) if inner[0] == "done" else inner
        if kind == "then":
            inner = self.step(spec[1], shift)
            return self.step(spec[2], shift + inner[1]) if inner[0] == "done" else inner
        if kind == "gather":
            steps = [self.step(s, shift) for s in spec[1]]
            blocked = [s[1] for s in steps if s[0] == "blocked"]
            if blocked:
                return ("blocked", frozenset().union(*blocked))
            failed = [s for s in steps if s[0] == "failed"]
            return failed[0] if failed else ("done", sum(s[1] for s in steps))
        if kind == "recover":
            inner = self.step(spec[1], shift)
            return self.step(spec[2], shift + len(inner[1])) if inner[0] == "failed" else inner
        if kind == "attempt":
            inner = self.step(spec[1], shift)
            return ("done", -1) if inner[0] == "failed" else inner
        if kind == "program":
            total = 0
            for part in spec[1]:
                inner = self.step(part, shift + total)
                if inner[0] != "done":
                    return inner
                total += inner[1]
            return ("done", total)
        raise AssertionError(kind)

    def run(self, roots: list[Spec]) -> tuple[list[Result[int, RequestError]], int]:
        """Results of every root and the number of rounds it took."""
        rounds = 0
        while True:
            steps = [self.step(root) for root in roots]
            blocked = frozenset().union(*(s[1] for s in steps if s[0] == "blocked"))
            if not blocked:
                break
            rounds += 1
            for n in blocked:
                self.known[n] = (
                    Failure(RequestError(f"op {n} failed"))
                    if n in self.failing
                    else Success(answer(n))
                )
        results: list[Result[int, RequestError]] = [
            Success(s[1]) if s[0] == "done" else Failure(RequestError(s[1])) for s in steps
        ]
        return results, rounds
