"""Costs in the run report are the published prices of the tokens the server billed.

The expected figures are computed here from OpenAI's published price table (US
dollars per million tokens, standard and Batch tiers, https://openai.com/api/pricing),
Anthropic's (base input and output tokens, and the Batch processing table,
https://docs.anthropic.com/en/docs/about-claude/pricing) and the token counts in
the emulator's ledger, never from inert's own formula.
"""

from __future__ import annotations

import openai
import pytest
from tests.billing import assert_billed_once, keys_of, settled_ledger

from inert import BatchRunner, ImmediateRunner, Price, Request, Store
from inert._pricing import BATCH_DISCOUNT, DEFAULT_PRICES, price_for
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

ANTHROPIC_STANDARD = {
    "claude-opus-4-1": (15.00, 75.00),
    "claude-opus-4-0": (15.00, 75.00),
    "claude-opus-4-20250514": (15.00, 75.00),
    "claude-sonnet-4-5": (3.00, 15.00),
    "claude-sonnet-4-0": (3.00, 15.00),
    "claude-sonnet-4-20250514": (3.00, 15.00),
    "claude-3-7-sonnet": (3.00, 15.00),
    "claude-haiku-4-5": (1.00, 5.00),
    "claude-3-5-haiku": (0.80, 4.00),
    "claude-3-haiku": (0.25, 1.25),
}
"""Anthropic's published base input and output prices, dollars per million tokens, by
model id or alias (an Opus 4 / Sonnet 4 id is listed as alias and dated id)."""

ANTHROPIC_BATCH = {
    "claude-opus-4-1": (7.50, 37.50),
    "claude-sonnet-4-5": (1.50, 7.50),
    "claude-haiku-4-5": (0.50, 2.50),
    "claude-3-5-haiku": (0.40, 2.00),
    "claude-3-haiku": (0.125, 0.625),
}
"""Anthropic's published Message Batches prices of some of those models."""


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
    published = {**STANDARD, **ANTHROPIC_STANDARD}
    assert {m: Price(i, o) for m, (i, o) in published.items()} == dict(DEFAULT_PRICES)


@pytest.mark.parametrize("model", sorted(ANTHROPIC_BATCH))
def test_the_batch_discount_gives_anthropics_published_batch_prices(model: str) -> None:
    """Half the default price is the Message Batches price Anthropic publishes for the model."""
    price = DEFAULT_PRICES[model]
    assert ANTHROPIC_BATCH[model] == (
        price.input_per_million * BATCH_DISCOUNT,
        price.output_per_million * BATCH_DISCOUNT,
    )


@pytest.mark.parametrize(
    ("model", "family"),
    [
        ("claude-sonnet-4-5-20250929", "claude-sonnet-4-5"),
        ("claude-haiku-4-5-20251001", "claude-haiku-4-5"),
        ("claude-opus-4-1-20250805", "claude-opus-4-1"),
        ("claude-3-5-haiku-20241022", "claude-3-5-haiku"),
    ],
)
def test_a_dated_claude_model_is_priced_as_its_alias(model: str, family: str) -> None:
    """A dated Claude id costs its alias's published price (the longest matching name)."""
    assert Price(*ANTHROPIC_STANDARD[family]) == price_for(model, DEFAULT_PRICES)


def test_a_later_claude_model_is_not_priced_as_an_older_one() -> None:
    """An id the table does not list (a newer Opus) gets no price rather than Opus 4's."""
    assert price_for("claude-opus-4-5-20251101", DEFAULT_PRICES) is None


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
