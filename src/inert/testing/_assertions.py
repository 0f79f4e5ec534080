"""Assertions on what a ``FakeRunner`` was asked: rounds and calls.

Counting rounds and calls is how accidental sequencing and repeated questions are
caught (ZIO Query's ``expectFetches``, Fetch's ``runLog.rounds``). Each assertion
raises ``AssertionError`` with a message that lists the ops involved (endpoint,
short key, the last user message) and the rounds they were asked in.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from typing import Literal

from inert._op import Op
from inert.testing._fake import FakeRunner, OpRef, describe_op, key_of, op_of

_SHOWN = 8


def _listing(rounds: Sequence[Sequence[Op[object]]], *, pipelined: bool, indent: str = "  ") -> str:
    if not rounds:
        return f"{indent}(no calls)"
    unit = "fetch" if pipelined else "round"
    lines: list[str] = []
    for number, ops in enumerate(rounds, 1):
        lines.append(f"{indent}{unit} {number} ({len(ops)} op{'s' if len(ops) != 1 else ''}):")
        lines.extend(f"{indent}  {describe_op(op)}" for op in ops[:_SHOWN])
        if len(ops) > _SHOWN:
            lines.append(f"{indent}  … and {len(ops) - _SHOWN} more")
    return "\n".join(lines)


def _where_asked(fake: FakeRunner, runs: Sequence[int]) -> dict[str, list[str]]:
    """Op key → the places it was asked, such as ``"run 1 round 2"``."""
    places: dict[str, list[str]] = {}
    unit = "fetch" if fake.pipelined else "round"
    for run in runs:
        for number, ops in enumerate(fake.history[run], 1):
            for op in ops:
                places.setdefault(op.key, []).append(f"run {run + 1} {unit} {number}")
    return places


def expect_rounds(fake: FakeRunner, expected: int, *, sizes: Sequence[int] | None = None) -> None:
    """Assert that the fake's last run took ``expected`` rounds (and, if given, that
    each round resolved ``sizes[i]`` distinct ops).

    Raises:
        AssertionError: listing every round of the run with its ops.
    """
    report = fake.report
    actual_sizes = list(report.round_sizes)
    rounds_ok = expected == report.rounds
    sizes_ok = sizes is None or list(sizes) == actual_sizes
    if rounds_ok and sizes_ok:
        return
    if rounds_ok:
        head = f"expected round sizes {list(sizes or ())}, the last run had {actual_sizes}"
    else:
        head = f"expected {expected} round{'s' if expected != 1 else ''}, the last run took {report.rounds}"
        if sizes is not None:
            head += f" (expected sizes {list(sizes)}, got {actual_sizes})"
    raise AssertionError(f"{head}:\n{_listing(fake.rounds_log, pipelined=fake.pipelined)}")


def expect_calls(
    fake: FakeRunner,
    expected: int | Iterable[OpRef] | None = None,
    *,
    each_once: bool = False,
    where: Callable[[Op[object]], bool] | None = None,
    scope: Literal["last", "all"] = "last",
) -> None:
    """Assert what the fake was asked.

    Args:
        fake: the fake runner to inspect.
        expected: the number of calls, or exactly which ops were called (ops,
            single-call requests or keys; repeats count), or ``None`` to check only
            ``each_once``.
        each_once: no op was sent more than once (across runs, with
            ``scope="all"``: a pipeline that runs several times against a store must
            not ask the same question twice).
        where: only count the calls for which this predicate is true.
        scope: ``"last"`` run (default) or ``"all"`` runs of this fake.

    Raises:
        AssertionError: naming the missing, unexpected or repeated ops and the
            rounds they were asked in.
    """
    runs = list(range(len(fake.history))) if scope == "all" else [len(fake.history) - 1]
    runs = [r for r in runs if r >= 0]
    calls = [
        op for r in runs for ops in fake.history[r] for op in ops if where is None or where(op)
    ]
    what = "the last run" if scope == "last" else f"the {len(runs)} runs"
    problems: list[str] = []
    if isinstance(expected, int):
        if expected != len(calls):
            problems.append(f"expected {expected} calls, {what} made {len(calls)}")
    elif expected is not None:
        wanted: Counter[str] = Counter()
        names: dict[str, str] = {}
        for ref in expected:
            key = key_of(ref)
            wanted[key] += 1
            names[key] = _describe_ref(ref)
        got = Counter(op.key for op in calls)
        for op in calls:
            names.setdefault(op.key, describe_op(op))
        missing = wanted - got
        unexpected = got - wanted
        if missing or unexpected:
            problems.append(f"the calls of {what} differ from the expected ones:")
            problems.extend(
                f"  missing ({n}× expected, not asked): {names[k]}" for k, n in missing.items()
            )
            problems.extend(
                f"  unexpected ({n}× asked, not expected): {names[k]}"
                for k, n in unexpected.items()
            )
    if each_once:
        counts = Counter(op.key for op in calls)
        repeated = {key: n for key, n in counts.items() if n > 1}
        if repeated:
            places = _where_asked(fake, runs)
            by_key = {op.key: op for op in calls}
            problems.append(f"{len(repeated)} op(s) were asked more than once in {what}:")
            problems.extend(
                f"  {n}× {describe_op(by_key[key])} ({', '.join(places.get(key, []))})"
                for key, n in repeated.items()
            )
    if problems:
        listing = "\n".join(
            f"run {r + 1}:\n{_listing(fake.history[r], pipelined=fake.pipelined)}" for r in runs
        )
        raise AssertionError(
            "\n".join(problems) + "\nwhat was asked:\n" + (listing or "  (no runs)")
        )


def _describe_ref(ref: OpRef) -> str:
    if isinstance(ref, str):
        return f"key {ref[:12]}"
    if isinstance(ref, Op):
        return describe_op(ref)
    return describe_op(op_of(ref))
