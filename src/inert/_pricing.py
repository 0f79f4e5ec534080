"""Prices per million tokens, for the cost estimates in ``RunReport``.

Estimates only: the tokens come from each response's ``usage``; the prices are a
table the user can override (``prices=`` on a runner). Batch runs are billed at
``BATCH_DISCOUNT`` of these prices.
"""

from __future__ import annotations

from collections.abc import Mapping

import attrs

BATCH_DISCOUNT = 0.5
"""Both batch APIs bill half the immediate price: OpenAI's Batch API
(https://openai.com/api/pricing) and Anthropic's Message Batches API ("a 50%
discount on both input and output tokens",
https://docs.anthropic.com/en/docs/about-claude/pricing#batch-processing)."""


@attrs.frozen
class Price:
    """US dollars per million input and output tokens, at the immediate price."""

    input_per_million: float
    output_per_million: float

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        """Dollars for these token counts."""
        return (
            prompt_tokens * self.input_per_million + completion_tokens * self.output_per_million
        ) / 1_000_000


DEFAULT_PRICES: Mapping[str, Price] = {
    "gpt-4o": Price(2.50, 10.00),
    "gpt-4o-mini": Price(0.15, 0.60),
    "gpt-4.1": Price(2.00, 8.00),
    "gpt-4.1-mini": Price(0.40, 1.60),
    "gpt-4.1-nano": Price(0.10, 0.40),
    "gpt-5": Price(1.25, 10.00),
    "gpt-5-mini": Price(0.25, 2.00),
    "gpt-5-nano": Price(0.05, 0.40),
    "text-embedding-3-small": Price(0.02, 0.0),
    "text-embedding-3-large": Price(0.13, 0.0),
    # Anthropic's published prices, base input and output tokens, from
    # https://docs.anthropic.com/en/docs/about-claude/pricing ("Model pricing").
    # Keys are the model ids and aliases of the models overview; a dated id such
    # as claude-sonnet-4-5-20250929 is priced by its alias prefix. Opus 4 and
    # Sonnet 4 are keyed by alias and dated id, because their bare prefixes
    # (claude-opus-4) would also price later models that cost otherwise.
    "claude-opus-4-1": Price(15.00, 75.00),
    "claude-opus-4-0": Price(15.00, 75.00),
    "claude-opus-4-20250514": Price(15.00, 75.00),
    "claude-sonnet-4-5": Price(3.00, 15.00),
    "claude-sonnet-4-0": Price(3.00, 15.00),
    "claude-sonnet-4-20250514": Price(3.00, 15.00),
    "claude-3-7-sonnet": Price(3.00, 15.00),
    "claude-haiku-4-5": Price(1.00, 5.00),
    "claude-3-5-haiku": Price(0.80, 4.00),
    "claude-3-haiku": Price(0.25, 1.25),
}


def price_for(model: str | None, prices: Mapping[str, Price]) -> Price | None:
    """The price of ``model``: an exact entry, else the longest entry it starts with
    (so ``gpt-4o-mini-2024-07-18`` is priced as ``gpt-4o-mini``), else None."""
    if model is None:
        return None
    exact = prices.get(model)
    if exact is not None:
        return exact
    best = max((name for name in prices if model.startswith(name)), key=len, default=None)
    return None if best is None else prices[best]
