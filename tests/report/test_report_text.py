"""The run report's exact words: what ``str()`` and rich show, line by line."""

from __future__ import annotations

import io

import pytest

from inert import FailureGroup, RunReport
from inert._report import money

FULL = RunReport(
    rounds=2,
    round_sizes=(3, 1),
    ops_requested=5,
    ops_deduplicated=1,
    ops_sent=4,
    ops_paid=3,
    retries=2,
    batches_created=1,
    requests_failed=2,
    failures=(
        FailureGroup(kind="ApiError 401", count=1, example="HTTP 401: nope"),
        FailureGroup(kind="ExpiredError", count=1, example="gone"),
    ),
    prompt_tokens=1234,
    completion_tokens=56,
    cost_usd=0.0004563,
    full_price_usd=0.0009126,
    wall_seconds=1.5,
)


def rendered(report: RunReport, *, width: int, color: bool = False) -> list[str]:
    """The lines rich prints for ``report`` (trailing blanks cut)."""
    from rich.console import Console

    out = io.StringIO()
    if color:
        Console(file=out, width=width, force_terminal=True, color_system="standard").print(report)
    else:
        Console(file=out, width=width, color_system=None).print(report)
    return [line.rstrip() for line in out.getvalue().splitlines()]


def test_str_of_a_full_report_is_these_lines() -> None:
    """Every figure is said once, in this order and these words."""
    assert [
        "2 rounds (distinct calls per round: 3 / 1), 1.50s",
        "calls: 5 built, 1 merged as duplicates, 0 from the store, 4 sent, 3 paid, 2 retries, "
        "1 batch job",
        "tokens: 1,234 in, 56 out; cost $0.000456 ($0.000913 at the immediate price)",
        "failed: 2 requests",
        "  ApiError 401 ×1: HTTP 401: nope",
        "  ExpiredError ×1: gone",
    ] == str(FULL).split("\n")


def test_str_of_an_empty_report_says_none() -> None:
    """A run that did nothing says so: no rounds, nothing failed, no batch jobs."""
    assert [
        "0 rounds (distinct calls per round: none), 0.00s",
        "calls: 0 built, 0 merged as duplicates, 0 from the store, 0 sent, 0 paid, 0 retries",
        "tokens: 0 in, 0 out; cost $0.0000 ($0.0000 at the immediate price)",
        "failed: none",
    ] == str(RunReport()).split("\n")


def test_rich_shows_a_titled_table_of_the_same_figures() -> None:
    """rich prints a table titled "run report", one row per figure and one per failure kind."""
    assert [
        "                                             run report",
        "",
        "  rounds   2 rounds (distinct calls per round: 3 / 1), 1.50s",
        "  calls    5 built, 1 merged as duplicates, 0 from the store, 4 sent, 3 paid, 2 retries, 1 batch",
        "           job",
        "  tokens   1,234 in, 56 out; cost $0.000456 ($0.000913 at the immediate price)",
        "  failed   2 requests",
        "           ApiError 401 ×1: HTTP 401: nope",
        "           ExpiredError ×1: gone",
        "",
    ] == rendered(FULL, width=100)


def test_rich_folds_a_long_message_instead_of_cutting_it() -> None:
    """An example message longer than the table is folded over lines, never cut short."""
    report = RunReport(
        requests_failed=1,
        failures=(FailureGroup(kind="ApiError 500", count=1, example="x" * 130),),
    )
    lines = rendered(report, width=60)
    assert 130 == sum(line.count("x") for line in lines)
    assert not any("…" in line for line in lines)


def test_rich_names_the_figures_in_bold() -> None:
    """On a colour terminal the figure names are bold."""
    lines = rendered(RunReport(), width=60, color=True)
    for name in ("rounds", "calls", "tokens", "failed"):
        assert any(f"\x1b[1m{name}" in line for line in lines), name


@pytest.mark.parametrize(
    ("usd", "shown"),
    [
        (0, "$0.0000"),
        (0.01, "$0.0100"),
        (-0.02, "$-0.0200"),
        (1234.5, "$1,234.5000"),
        (0.0099, "$0.009900"),
        (0.000456, "$0.000456"),
        (-0.005, "$-0.005000"),
        (0.00001234, "$0.000012"),
    ],
)
def test_money_shows_four_decimals_or_six_under_a_cent(usd: float, shown: str) -> None:
    """Four decimals from a cent up (and for zero), six below, thousands separated."""
    assert shown == money(usd)
