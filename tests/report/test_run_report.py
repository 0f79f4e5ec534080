"""``RunReport``: readable, rounded, with the failures grouped and sent vs paid calls apart."""

from __future__ import annotations

import io
from collections.abc import Iterator

import openai
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console
from tests.core.trees import OPS, build, respond_with, specs

from inert import FailureGroup, ImmediateRunner, Request, RunReport
from inert._report import ReportBuilder, group_failures
from inert.emulator import Emulator
from inert.errors import ApiError, RateLimitError, RefusalError, RequestError
from inert.openai import chat
from inert.testing import FakeRunner, chat_completion
from lexicon import Lexicon

FAILING = st.frozensets(st.integers(0, OPS - 1), max_size=3)
FORESTS = st.lists(specs(), min_size=1, max_size=4)


def ask(text: str) -> Request[object]:
    """A chat request asking ``text``."""
    return chat(model="gpt-4o-mini", messages=[{"role": "user", "content": text}])


@pytest.fixture(scope="module")
def guarded() -> Iterator[Emulator]:
    """An emulator that requires the key 'right-key'."""
    with Emulator(api_key="right-key") as emulator:
        yield emulator


async def test_a_rejected_key_is_sent_not_paid_and_grouped_with_its_message(
    guarded: Emulator,
) -> None:
    """Calls refused with 401 count as sent, not paid; the report keeps the API's text once."""
    requests = [ask(f"question {i}") for i in range(3)]
    async with openai.AsyncOpenAI(base_url=guarded.base_url, api_key="wrong-key") as client:
        runner = ImmediateRunner(client, progress=False)
        await runner.run_all_settled(requests)

    report = runner.report
    assert (3, 0, 3) == (report.ops_sent, report.ops_paid, report.requests_failed)
    assert (
        FailureGroup(
            kind="ApiError 401",
            count=3,
            example=f"HTTP 401 from {guarded.base_url}/chat/completions: "
            "Incorrect API key provided.",
        ),
    ) == report.failures


def test_failures_are_grouped_by_kind_most_frequent_first() -> None:
    """Each kind appears once, with how many requests ended in it and the first message."""
    errors: list[RequestError] = [
        RefusalError("no"),
        RateLimitError("HTTP 429: slow down", status=429),
        RateLimitError("HTTP 429: slower", status=429),
        ApiError("HTTP 400: bad", status=400),
    ]

    assert (
        FailureGroup(kind="RateLimitError 429", count=2, example="HTTP 429: slow down"),
        FailureGroup(kind="RefusalError", count=1, example="no"),
        FailureGroup(kind="ApiError 400", count=1, example="HTTP 400: bad"),
    ) == group_failures(errors)


@settings(max_examples=50, deadline=None)
@given(costs=st.lists(st.floats(0, 1e-3, allow_nan=False), max_size=50))
def test_money_carries_no_float_noise(costs: list[float]) -> None:
    """Dollar figures are the sum rounded to 1e-10: their repr has at most ten decimals."""
    building = ReportBuilder()
    for cost in costs:
        building.cost_usd += cost
        building.full_price_usd += cost
    report = building.freeze()

    assert round(sum(costs), 10) == pytest.approx(report.cost_usd, abs=1e-12)
    assert len(repr(report.cost_usd).partition(".")[2].partition("e")[0]) <= 16
    assert "0.00045630000000000014" not in repr(
        ReportBuilder(cost_usd=0.00045630000000000014).freeze()
    )


def test_str_and_rich_say_the_figures_in_words() -> None:
    """``str()`` and rich show rounds, calls sent and paid, cost, and each kind of failure."""
    report = RunReport(
        rounds=2,
        round_sizes=(3, 1),
        ops_requested=5,
        ops_sent=4,
        ops_paid=3,
        requests_failed=1,
        failures=(FailureGroup(kind="ApiError 401", count=1, example="HTTP 401: nope"),),
        cost_usd=0.00045630000000000014,
        full_price_usd=0.0009126,
    )
    text = str(report)
    rich_out = io.StringIO()
    Console(file=rich_out, width=100).print(report)

    assert "2 rounds (distinct calls per round: 3 / 1)" in text
    assert "4 sent, 3 paid" in text
    assert "cost $0.000456 ($0.000913 at the immediate price)" in text
    assert "ApiError 401 ×1: HTTP 401: nope" in text
    assert "HTTP 401: nope" in rich_out.getvalue()
    assert "4 sent, 3 paid" in rich_out.getvalue()


def test_one_round_and_one_retry_are_singular() -> None:
    """Counts of one take the singular noun."""
    text = str(RunReport(rounds=1, round_sizes=(1,), retries=1))
    assert "1 round " in text
    assert "1 retry" in text


@settings(max_examples=100, deadline=None)
@given(roots=FORESTS, failing=FAILING, pipelined=st.booleans())
async def test_round_sizes_have_one_entry_per_round_in_both_modes(
    roots: list[tuple[object, ...]], failing: frozenset[int], pipelined: bool
) -> None:
    """``len(round_sizes) == rounds``, and the sizes add up to the distinct ops, in both modes."""
    fake = FakeRunner(respond_with(failing), pipelined=pipelined)
    await fake.run_all_settled([build(r) for r in roots])

    report = fake.report
    assert report.rounds == len(report.round_sizes)
    assert report.ops_sent + report.cache_hits == sum(report.round_sizes)
    assert all(size > 0 for size in report.round_sizes)


async def test_answered_calls_are_paid_and_decode_failures_are_grouped() -> None:
    """An answer that fails to decode is paid for, and its failure is grouped by kind."""
    fake = FakeRunner(lambda op: chat_completion("plain text"))

    await fake.run_all_settled([Lexicon().pronunciation("bank")])

    report = fake.report
    assert (1, 1) == (report.ops_sent, report.ops_paid)
    assert ["InvalidOutputError"] == [group.kind for group in report.failures]
