"""Costs in the run report are the published prices of the tokens the server billed.

The expected figures are computed here from OpenAI's published price table (US
dollars per million tokens, standard and Batch tiers, https://openai.com/api/pricing)
and the token counts in the emulator's ledger, never from inert's own formula.
"""

from __future__ import annotations

import openai
import pytest
from tests.billing import assert_billed_once, keys_of, settled_ledger

from inert import BatchRunner, ImmediateRunner, Price, Request, Store
from inert._pricing import DEFAULT_PRICES
from inert.emulator import Emulator
from inert.openai import chat, embedding

STANDARD = {
    "gpt-4o": (2.50, 10.00),
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4.1": (2.00, 8.00),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1-nano": (0.10, 0.40),
    "gpt-5": (1.25, 10.00),
    "gpt-5-mini": (0.25, 2.00),
    "gpt-5-nano": (0.05, 0.40),
    "text-embedding-3-small": (0.02, 0.0),
    "text-embedding-3-large": (0.13, 0.0),
}
"""Published standard-tier prices: (input, output) dollars per million tokens."""

BATCH = {
    "gpt-4o": (1.25, 5.00),
    "gpt-4o-mini": (0.075, 0.30),
    "text-embedding-3-small": (0.01, 0.0),
}
"""Published Batch API prices of the models the runs below use."""


def requests_for(model: str) -> list[Request[object]]:
    """Three distinct calls to ``model``: chat completions, or embeddings for an embedding model."""
    if model.startswith("text-embedding"):
        return [embedding(model=model, input=f"the price of word {i} " * 5) for i in range(3)]
    return [
        chat(model=model, messages=[{"role": "user", "content": f"define word {i} " * 12}])
        for i in range(3)
    ]


def dollars(
    table: dict[str, tuple[float, float]], model: str, prompt: int, completion: int
) -> float:
    """What ``prompt`` input and ``completion`` output tokens cost at ``table``'s price."""
    per_input, per_output = table[model]
    return prompt * per_input / 1_000_000 + completion * per_output / 1_000_000


def test_default_prices_are_the_published_ones() -> None:
    """Every model in the default price table carries its published input and output price."""
    assert {m: Price(i, o) for m, (i, o) in STANDARD.items()} == dict(DEFAULT_PRICES)


@pytest.mark.parametrize("model", sorted(BATCH))
@pytest.mark.parametrize("mode", ["immediate", "batch"])
async def test_cost_is_the_published_price_of_the_billed_tokens(
    mode: str, model: str, client: openai.AsyncOpenAI, emu: Emulator, store: Store
) -> None:
    """Immediate runs cost the standard price, batch runs the Batch price, of the tokens billed."""
    runner: ImmediateRunner | BatchRunner
    if mode == "immediate":
        runner = ImmediateRunner(client, store=store)
    else:
        runner = BatchRunner(
            client, store=store, poll_interval=0.01, poll_interval_max=0.05, progress=False
        )
    requests = requests_for(model)
    await runner.run_all(requests)
    assert_billed_once(emu, keys_of(requests))
    entries = settled_ledger(emu).entries()
    prompt = sum(e.prompt_tokens for e in entries)
    completion = sum(e.completion_tokens for e in entries)
    # Inputs and outputs differ in size, so a swapped price shows in the cost.
    assert prompt != completion
    report = runner.report
    assert (prompt, completion) == (report.prompt_tokens, report.completion_tokens)
    paid = BATCH if mode == "batch" else STANDARD
    assert dollars(paid, model, prompt, completion) == pytest.approx(report.cost_usd, rel=1e-9)
    assert dollars(STANDARD, model, prompt, completion) == pytest.approx(
        report.full_price_usd, rel=1e-9
    )
    assert report.cost_usd > 0


@pytest.mark.parametrize(
    ("model", "family"),
    [
        ("gpt-4o-mini-2024-07-18", "gpt-4o-mini"),
        ("gpt-4o-2024-08-06", "gpt-4o"),
        ("gpt-4.1-nano-2025-04-14", "gpt-4.1-nano"),
        ("gpt-5-mini", "gpt-5-mini"),
    ],
)
async def test_a_dated_model_is_priced_as_its_family(
    model: str, family: str, client: openai.AsyncOpenAI, emu: Emulator
) -> None:
    """A dated snapshot name costs its family's published price (the longest matching name)."""
    runner = ImmediateRunner(client)
    await runner.run(chat(model=model, messages=[{"role": "user", "content": "price " * 9}]))
    (entry,) = settled_ledger(emu).entries()
    assert entry.prompt_tokens != entry.completion_tokens
    expected = dollars(STANDARD, family, entry.prompt_tokens, entry.completion_tokens)
    assert expected == pytest.approx(runner.report.cost_usd, rel=1e-9)


async def test_a_model_missing_from_the_table_costs_nothing_but_counts_its_tokens(
    client: openai.AsyncOpenAI, emu: Emulator
) -> None:
    """An unpriced model adds its tokens to the report and no estimate to the cost."""
    runner = ImmediateRunner(client, prices={"gpt-4o": Price(2.50, 10.00)})
    await runner.run(chat(model="o9-preview", messages=[{"role": "user", "content": "free"}]))
    (entry,) = settled_ledger(emu).entries()
    report = runner.report
    assert (entry.prompt_tokens, entry.completion_tokens) == (
        report.prompt_tokens,
        report.completion_tokens,
    )
    assert report.prompt_tokens > 0
    assert (0.0, 0.0) == (report.cost_usd, report.full_price_usd)


async def test_a_custom_price_table_replaces_the_default(
    client: openai.AsyncOpenAI, emu: Emulator
) -> None:
    """``prices=`` decides the cost; its entries are dollars per million input and output tokens."""
    runner = ImmediateRunner(client, prices={"gpt-4o-mini": Price(1.0, 1_000.0)})
    await runner.run(chat(model="gpt-4o-mini", messages=[{"role": "user", "content": "own"}]))
    (entry,) = settled_ledger(emu).entries()
    expected = entry.prompt_tokens * 1.0 / 1e6 + entry.completion_tokens * 1_000.0 / 1e6
    assert expected == pytest.approx(runner.report.cost_usd, rel=1e-9)
