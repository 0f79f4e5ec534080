"""A rerun on the same store pays for nothing, however large its rounds are."""

from __future__ import annotations

import openai
import pytest
from tests.billing import assert_billed_once, keys_of

from inert import BatchRunner, ImmediateRunner, Request, Store
from inert.emulator import Emulator
from inert.openai import chat

ROUND = 1_001
"""More ops in one round than the store reads in one query (SQLite's bound parameters)."""


def words(n: int) -> list[Request[str]]:
    """``n`` distinct one-round chat requests."""
    return [
        chat(model="gpt-4o-mini", messages=[{"role": "user", "content": f"w{i}"}]) for i in range(n)
    ]


@pytest.mark.parametrize("mode", ["immediate", "batch"])
async def test_rerun_of_a_large_round_sends_nothing(
    mode: str, client: openai.AsyncOpenAI, emu: Emulator, store: Store
) -> None:
    """Every answer of a round of more than a thousand ops comes back from the store on a rerun."""
    requests = words(ROUND)
    paying = BatchRunner(client, store=store, poll_interval=0.01, progress=False)
    first = await paying.run_all(requests)
    assert_billed_once(emu, keys_of(requests))
    rerun: ImmediateRunner | BatchRunner
    if mode == "immediate":
        rerun = ImmediateRunner(client, store=store)
    else:
        rerun = BatchRunner(client, store=store, poll_interval=0.01, progress=False)
    assert first == await rerun.run_all(requests)
    report = rerun.report
    assert (ROUND, 0, 0, 0) == (
        report.cache_hits,
        report.ops_sent,
        report.batches_created,
        report.prompt_tokens,
    )
    assert 0.0 == report.cost_usd
    assert_billed_once(emu, keys_of(requests))
    assert 1 == len(emu.batch_ids())  # the first run's batch, and no other
