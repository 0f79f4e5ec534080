"""The lexicon pipeline against the emulator, through both real runners."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import openai
import pytest
from tests.billing import settled_ledger

from inert import BatchRunner, ImmediateRunner, RunReport, Store
from inert.emulator import Emulator
from lexicon import Entry, Lexicon, SampleWord, entry_requests, sample_words


class RunBoth(NamedTuple):
    """What one run through each runner gave."""

    words: tuple[SampleWord, ...]
    immediate: list[Entry]
    batch: list[Entry]
    immediate_report: RunReport
    batch_report: RunReport


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    """An in-process emulator whose batches finish in a fraction of a second."""
    with Emulator(time_scale=0.05, seed=0) as emu:
        yield emu


async def run_both(emulator: Emulator, store_dir: Path) -> RunBoth:
    """Five words through the immediate runner, then the batch runner (separate stores)."""
    lexicon = Lexicon()
    words = sample_words(5, offset=40)
    client = openai.AsyncOpenAI(base_url=emulator.base_url, api_key="test", max_retries=0)
    with (
        Store(store_dir / "immediate.sqlite") as first,
        Store(store_dir / "batch.sqlite") as second,
    ):
        immediate = ImmediateRunner(client, store=first)
        batch = BatchRunner(
            client, store=second, poll_interval=0.02, poll_interval_max=0.1, progress=False
        )
        now = await immediate.run_all(entry_requests(lexicon, words))
        later = await batch.run_all(entry_requests(lexicon, words))
    await client.close()
    return RunBoth(words, now, later, immediate.report, batch.report)


async def test_the_batch_runner_needs_three_rounds_for_five_words(
    emulator: Emulator, tmp_path: Path
) -> None:
    """Five words through the Batch API take three rounds, one batch each, at half price."""
    run = await run_both(emulator, tmp_path)

    assert 3 == run.batch_report.rounds
    assert 3 == run.batch_report.batches_created
    assert [w.word for w in run.words] == [e.word for e in run.batch]
    assert run.batch_report.cost_usd == pytest.approx(run.batch_report.full_price_usd / 2)


async def test_immediate_and_batch_give_equal_entries(emulator: Emulator, tmp_path: Path) -> None:
    """Five words give the same entries both ways, and each call is billed once in each mode."""
    emulator.reset()
    run = await run_both(emulator, tmp_path)

    assert run.immediate == run.batch
    assert run.immediate_report.ops_sent == run.batch_report.ops_sent
    entries = settled_ledger(emulator).entries()
    assert run.batch_report.ops_sent == len(entries)
    assert [(1, 1)] * len(entries) == [(e.immediate, e.batch) for e in entries]
    assert run.batch_report.cost_usd == pytest.approx(run.immediate_report.cost_usd / 2)
