"""The run report's exact words: what ``str()`` and rich show, line by line."""

from __future__ import annotations

import io

import pytest

from inert import FailureGroup, RunReport, Usage
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


MINI = Usage(
    calls=2, prompt_tokens=1000, completion_tokens=40, cost_usd=0.0003, full_price_usd=0.0006
)
FOUR = Usage(
    calls=1, prompt_tokens=34, completion_tokens=6, cost_usd=0.00005, full_price_usd=0.0001
)
HAIKU = Usage(
    provider="anthropic",
    calls=1,
    prompt_tokens=200,
    completion_tokens=10,
    cost_usd=0.00015,
    full_price_usd=0.0003,
)
MIXED = RunReport(
    rounds=1,
    round_sizes=(4,),
    ops_requested=4,
    ops_sent=4,
    ops_paid=4,
    prompt_tokens=1234,
    completion_tokens=56,
    cost_usd=0.0005,
    full_price_usd=0.001,
    wall_seconds=0.25,
    by_model={"gpt-4o-mini": MINI, "gpt-4o": FOUR, "claude-haiku-4-5": HAIKU},
    by_provider={"openai": MINI + FOUR, "anthropic": HAIKU},
)
"""Three models of two providers: the report breaks its tokens and cost down."""


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


def test_str_of_a_mixed_report_breaks_usage_down_by_provider_then_model() -> None:
    """Under the tokens line: each provider's figures (OpenAI first), its models by name below."""
    assert [
        "1 round (distinct calls per round: 4), 0.25s",
        "calls: 4 built, 0 merged as duplicates, 0 from the store, 4 sent, 4 paid, 0 retries",
        "tokens: 1,234 in, 56 out; cost $0.000500 ($0.001000 at the immediate price)",
        "  OpenAI: 3 calls, 1,034 in, 46 out, $0.000350",
        "    gpt-4o: 1 call, 34 in, 6 out, $0.000050",
        "    gpt-4o-mini: 2 calls, 1,000 in, 40 out, $0.000300",
        "  Anthropic: 1 call, 200 in, 10 out, $0.000150",
        "    claude-haiku-4-5: 1 call, 200 in, 10 out, $0.000150",
        "failed: none",
    ] == str(MIXED).split("\n")


def test_one_provider_with_two_models_shows_model_lines_only() -> None:
    """A provider line would repeat the totals: with one provider only the models are listed."""
    report = RunReport(
        by_model={"gpt-4o-mini": MINI, "gpt-4o": FOUR}, by_provider={"openai": MINI + FOUR}
    )
    assert [
        "tokens: 0 in, 0 out; cost $0.0000 ($0.0000 at the immediate price)",
        "  gpt-4o: 1 call, 34 in, 6 out, $0.000050",
        "  gpt-4o-mini: 2 calls, 1,000 in, 40 out, $0.000300",
        "failed: none",
    ] == str(report).split("\n")[2:]


def test_one_model_adds_no_breakdown() -> None:
    """A run of one model says its figures once, on the tokens line."""
    report = RunReport(by_model={"gpt-4o": FOUR}, by_provider={"openai": FOUR})
    assert str(RunReport()).count("\n") == str(report).count("\n")


def test_an_unpriced_model_says_so_instead_of_costing_nothing() -> None:
    """Tokens of a model missing from the price table show "no price known", not $0."""
    unpriced = Usage(calls=1, prompt_tokens=5, completion_tokens=2)
    report = RunReport(
        by_model={"gpt-4o": FOUR, "my-model": unpriced}, by_provider={"openai": FOUR + unpriced}
    )
    assert "  my-model: 1 call, 5 in, 2 out, no price known" in str(report).split("\n")


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


def test_rich_shows_the_breakdown_under_the_tokens_row() -> None:
    """rich puts the provider and model lines in unlabelled rows after "tokens"."""
    assert [
        "                                       run report",
        "",
        "  rounds   1 round (distinct calls per round: 4), 0.25s",
        "  calls    4 built, 0 merged as duplicates, 0 from the store, 4 sent, 4 paid, 0 retries",
        "  tokens   1,234 in, 56 out; cost $0.000500 ($0.001000 at the immediate price)",
        "           OpenAI: 3 calls, 1,034 in, 46 out, $0.000350",
        "             gpt-4o: 1 call, 34 in, 6 out, $0.000050",
        "             gpt-4o-mini: 2 calls, 1,000 in, 40 out, $0.000300",
        "           Anthropic: 1 call, 200 in, 10 out, $0.000150",
        "             claude-haiku-4-5: 1 call, 200 in, 10 out, $0.000150",
        "  failed   none",
        "",
    ] == rendered(MIXED, width=100)


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
