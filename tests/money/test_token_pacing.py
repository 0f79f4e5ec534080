"""``tokens_per_minute`` paces the immediate runner's requests by their estimated tokens."""

from __future__ import annotations

import time

import openai
from tests.billing import assert_billed_once, keys_of

from inert import ImmediateRunner
from inert.emulator import Emulator
from inert.openai import chat
from inert.testing import op_of

TPM = 6_000
"""The cap under test: 100 tokens a second."""
BURST_SECONDS = 10.0
"""How much of the rate the runner lets through at once (its docstring: ten seconds' worth)."""
MAX_TOKENS = 190


async def test_tokens_per_minute_paces_requests(client: openai.AsyncOpenAI, emu: Emulator) -> None:
    """Requests whose estimated tokens exceed the burst wait until the rate allows them."""
    requests = [
        chat(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": f"pace {i}"}],
            max_tokens=MAX_TOKENS,
        )
        for i in range(5)
    ]
    # The documented estimate: the body's length / 4 plus its max_tokens.
    charged = sum(len(op_of(r).canonical_body()) / 4 + MAX_TOKENS for r in requests)
    per_second = TPM / 60
    at_least = (charged - BURST_SECONDS * per_second) / per_second
    assert at_least > 0.5  # the requests need more than the burst: pacing must show
    runner = ImmediateRunner(client, tokens_per_minute=TPM)
    started = time.perf_counter()
    answers = await runner.run_all(requests)
    elapsed = time.perf_counter() - started
    # Only a lower bound: a slow machine makes the run longer, never shorter.
    assert elapsed >= at_least
    assert 5 == len(set(answers))
    assert_billed_once(emu, keys_of(requests))
