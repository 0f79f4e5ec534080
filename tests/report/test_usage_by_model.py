"""``RunReport.by_model`` and ``by_provider``: each model's and provider's billed tokens and cost.

The expected figures come from the emulator's ledger (what the server billed, per
op key, after every batch ran to its end) and from the providers' published price
tables, never from inert's own accounting: OpenAI's https://openai.com/api/pricing
and Anthropic's https://docs.anthropic.com/en/docs/about-claude/pricing (both
batch APIs bill 50% of these).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest
from hypothesis import given
from hypothesis import strategies as st
from tests.billing import assert_billed_once, keys_of, settled_ledger

from inert import BatchRunner, ImmediateRunner, Request, Store, Usage
from inert._report import ReportBuilder
from inert.anthropic import message
from inert.emulator import Emulator, Faults
from inert.openai import chat
from inert.testing import op_of

PUBLISHED = {
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4.1-nano": (0.10, 0.40),
    "claude-haiku-4-5": (1.00, 5.00),
}
"""Standard-tier (input, output) dollars per million tokens, as published."""

PROVIDER = {"gpt-4o-mini": "openai", "gpt-4.1-nano": "openai", "claude-haiku-4-5": "anthropic"}


def ask(model: str, i: int) -> Request[Any]:
    """A distinct call to ``model`` (chat for OpenAI's, Messages for Anthropic's)."""
    prompt = f"say something about item {i} " * (3 + i)
    if model.startswith("claude"):
        return message(model=model, max_tokens=100, messages=[{"role": "user", "content": prompt}])
    return chat(model=model, messages=[{"role": "user", "content": prompt}])


REQUESTS = [ask(model, i) for model, n in [("gpt-4o-mini", 3), ("gpt-4.1-nano", 2),
                                           ("claude-haiku-4-5", 2)] for i in range(n)]  # fmt: skip
"""Seven single calls: two OpenAI models and one Anthropic model."""


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    """A fast emulator for this module."""
    with Emulator(time_scale=0.05, seed=5) as emu:
        yield emu


@pytest.fixture
def emu(emulator: Emulator) -> Emulator:
    """The emulator with nothing billed."""
    emulator.set_faults(Faults())
    emulator.reset()
    return emulator


@pytest.fixture
async def clients(emu: Emulator) -> AsyncIterator[dict[str, Any]]:
    """An OpenAI and an Anthropic client on the emulator."""
    async with (
        openai.AsyncOpenAI(base_url=emu.base_url, api_key="sk-test") as gpt,
        anthropic.AsyncAnthropic(base_url=emu.anthropic_base_url, api_key="sk-ant-test") as claude,
    ):
        yield {"openai": gpt, "anthropic": claude}


def billed_by_model(emu: Emulator) -> dict[str, tuple[int, int, int]]:
    """``(calls, prompt, completion)`` per model, from the settled ledger."""
    model_of = {op_of(r).key: op_of(r).model for r in REQUESTS}
    billed: dict[str, tuple[int, int, int]] = {}
    for entry in settled_ledger(emu).entries():
        model = model_of[entry.key]
        assert model is not None
        calls, prompt, completion = billed.get(model, (0, 0, 0))
        billed[model] = (
            calls + entry.times_billed,
            prompt + entry.prompt_tokens,
            completion + entry.completion_tokens,
        )
    return billed


@pytest.mark.parametrize("mode", ["immediate", "batch"])
async def test_each_model_and_provider_shows_what_the_server_billed_at_its_price(
    mode: str, clients: dict[str, Any], emu: Emulator, tmp_path: Path
) -> None:
    """by_model holds each model's billed calls and tokens at its published price (half in a
    batch); by_provider sums its models; both add up to the report's totals."""
    runner: ImmediateRunner | BatchRunner
    with Store(tmp_path / "store.sqlite3") as store:
        if mode == "immediate":
            runner = ImmediateRunner(**clients, store=store, progress=False)
        else:
            runner = BatchRunner(
                **clients, store=store, poll_interval=0.01, poll_interval_max=0.05, progress=False
            )
        await runner.run_all(REQUESTS)
    assert_billed_once(emu, keys_of(REQUESTS))
    report = runner.report
    factor = 0.5 if mode == "batch" else 1.0

    billed = billed_by_model(emu)
    assert set(PUBLISHED) == set(report.by_model)
    for model, (calls, prompt, completion) in billed.items():
        usage = report.by_model[model]
        assert prompt != completion  # a swapped price would show
        per_in, per_out = PUBLISHED[model]
        full = (prompt * per_in + completion * per_out) / 1_000_000
        assert (PROVIDER[model], calls, prompt, completion) == (
            usage.provider,
            usage.calls,
            usage.prompt_tokens,
            usage.completion_tokens,
        )
        assert full == pytest.approx(usage.full_price_usd, rel=1e-9)
        assert full * factor == pytest.approx(usage.cost_usd, rel=1e-9)

    assert {"openai", "anthropic"} == set(report.by_provider)
    for provider, usage in report.by_provider.items():
        mine = [u for m, u in report.by_model.items() if PROVIDER[m] == provider]
        assert (sum(u.calls for u in mine), sum(u.prompt_tokens for u in mine)) == (
            usage.calls,
            usage.prompt_tokens,
        )
        assert sum(u.cost_usd for u in mine) == pytest.approx(usage.cost_usd, rel=1e-9)
    every = sum(report.by_provider.values(), Usage())
    assert (len(REQUESTS), report.prompt_tokens, report.completion_tokens) == (
        every.calls,
        every.prompt_tokens,
        every.completion_tokens,
    )
    assert report.cost_usd == pytest.approx(every.cost_usd, rel=1e-9)
    assert "  Anthropic: 2 calls, " in str(report)


async def test_a_rerun_from_the_store_breaks_down_nothing(
    clients: dict[str, Any], emu: Emulator, tmp_path: Path
) -> None:
    """Answers read from the store cost nothing in this run: no model or provider appears."""
    with Store(tmp_path / "store.sqlite3") as store:
        await ImmediateRunner(**clients, store=store, progress=False).run_all(REQUESTS)
        again = ImmediateRunner(**clients, store=store, progress=False)
        await again.run_all(REQUESTS)
    assert (len(REQUESTS), {}, {}) == (
        again.report.cache_hits,
        again.report.by_model,
        again.report.by_provider,
    )


FIGURES = st.tuples(
    st.sampled_from(["openai", "anthropic"]),
    st.sampled_from(["gpt-4o", "claude-haiku-4-5", None]),
    st.tuples(
        st.integers(0, 5),
        st.integers(0, 10**6),
        st.integers(0, 10**6),
        st.floats(0, 1, allow_nan=False),
        st.floats(0, 1, allow_nan=False),
    ),
)


@given(st.lists(FIGURES, max_size=20))
def test_the_breakdowns_partition_the_same_usage(entries: list[Any]) -> None:
    """Whatever is counted, by_model and by_provider hold the same calls and tokens in total,
    a model named by no body is listed as "-", and money is rounded to 1e-10 USD."""
    building = ReportBuilder()
    for provider, model, figures in entries:
        building.add_usage(provider, model, figures)
    report = building.freeze()
    by_model = sum(report.by_model.values(), Usage())
    by_provider = sum(report.by_provider.values(), Usage())
    expected = (
        sum(f[0] for _, _, f in entries),
        sum(f[1] for _, _, f in entries),
        sum(f[2] for _, _, f in entries),
    )
    for total in (by_model, by_provider):
        assert expected == (total.calls, total.prompt_tokens, total.completion_tokens)
        assert sum(f[3] for _, _, f in entries) == pytest.approx(total.cost_usd, abs=1e-8)
    assert ("-" in report.by_model) == any(model is None for _, model, _ in entries)
    for usage in (*report.by_model.values(), *report.by_provider.values()):
        assert round(usage.cost_usd, 10) == usage.cost_usd
