"""A disk that fills up mid-run: the run stops at the first failed write, every paid answer
is accounted for, and a rerun pays only for what was not stored.

The disk is a small tmpfs filled to a few kilobytes of its end (skipped, with the
reason, where no tmpfs can be mounted).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
from tests.billing import assert_billed_once, keys_of, settled_ledger

from inert import BatchRunner, ImmediateRunner, Store
from inert.emulator import Emulator
from inert.errors import StoreWriteError, UnstoredAnswersError

from ._support import ask, fill, small_filesystem

REQUESTS = [ask(i, " disk full") for i in range(120)]
CONCURRENCY = 4


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Path]:
    """An 8 MiB filesystem for the store."""
    with small_filesystem(tmp_path, "8m") as mount_point:
        yield mount_point


def immediate(client: openai.AsyncOpenAI, store: Store) -> ImmediateRunner:
    """An immediate runner with a small concurrency and no progress display."""
    return ImmediateRunner(client, store=store, max_concurrency=CONCURRENCY, progress=False)


async def test_a_full_disk_stops_the_run_and_accounts_for_every_paid_answer(
    disk: Path, client: openai.AsyncOpenAI, emu: Emulator
) -> None:
    """Billed = stored + unstored (on the error), and a new runner pays only for the rest."""
    with Store(disk / "store.sqlite3") as store:
        filler = fill(disk, leave=100_000)
        with pytest.raises(UnstoredAnswersError) as caught:
            await immediate(client, store).run_all(REQUESTS)
        error = caught.value
        stored = store.response_count()
        billed = settled_ledger(emu).total_billed()
        assert billed == stored + len(error.unstored)
        assert len(error.unstored) <= 2 * CONCURRENCY  # only calls already on the wire
        assert stored == error.kept
        assert 0 < stored < len(REQUESTS)
        assert f"This run stored {stored} answers" in str(error)
        assert "the disk holding it is full" in str(error)
        assert {key for key, _ in error.unstored}.isdisjoint(
            store.get_responses([key for key, _ in error.unstored])
        )

        filler.unlink()
        answers = await immediate(client, store).run_all(REQUESTS)
        assert len(REQUESTS) == len(answers)
        assert billed + len(REQUESTS) - stored == settled_ledger(emu).total_billed()
        assert len(REQUESTS) == store.response_count()


async def test_the_same_runner_stores_its_held_answers_before_paying_again(
    disk: Path, client: openai.AsyncOpenAI, emu: Emulator
) -> None:
    """Run again on the same runner once there is room: no call is billed twice."""
    with Store(disk / "store.sqlite3") as store:
        runner = immediate(client, store)
        filler = fill(disk, leave=100_000)
        with pytest.raises(UnstoredAnswersError):
            await runner.run_all(REQUESTS)
        filler.unlink()
        await runner.run_all(REQUESTS)
        assert_billed_once(emu, keys_of(REQUESTS))
        assert len(REQUESTS) == store.response_count()


async def test_batch_answers_that_cannot_be_stored_are_collected_by_the_rerun_unpaid(
    disk: Path, client: openai.AsyncOpenAI, emu: Emulator
) -> None:
    """The batch stays journaled as created; the rerun downloads it again and pays nothing."""
    with Store(disk / "store.sqlite3") as store:
        filler = fill(disk, leave=120_000)
        runner = BatchRunner(client, store=store, poll_interval=0.01, progress=False)
        with pytest.raises(StoreWriteError, match="the disk holding it is full"):
            await runner.run_all(REQUESTS)
        assert 0 == store.response_count()
        assert ["created"] == [record.state for record in store.shards()]
        billed = settled_ledger(emu).total_billed()
        filler.unlink()
        rerun = BatchRunner(client, store=store, poll_interval=0.01, progress=False)
        await rerun.run_all(REQUESTS)
        assert billed == len(REQUESTS)
        assert_billed_once(emu, keys_of(REQUESTS))
        assert len(REQUESTS) == store.response_count()
        assert 0 == rerun.report.batches_created


async def test_a_batch_run_on_a_full_disk_fails_before_paying(
    disk: Path, client: openai.AsyncOpenAI, emu: Emulator
) -> None:
    """When even the intent cannot be journaled, nothing is uploaded or billed."""
    with Store(disk / "store.sqlite3") as store:
        fill(disk, leave=20_000)
        with pytest.raises(StoreWriteError, match="the disk holding it is full"):
            await BatchRunner(client, store=store, poll_interval=0.01, progress=False).run_all(
                REQUESTS
            )
    assert_billed_once(emu, [])
