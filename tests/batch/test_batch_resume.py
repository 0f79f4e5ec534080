"""Resume: a new runner on the same store re-attaches to batches instead of paying again."""

from __future__ import annotations

import asyncio

import openai
import pytest
from tests.billing import settled_ledger

from inert import BatchRunner, Store
from inert.emulator import Emulator
from inert.testing import op_of

from ._support import ask
from ._transport import LossyTransport


class Crash(BaseException):
    """Stands in for the process dying at a precise point."""


def fast(client: openai.AsyncOpenAI, store: Store) -> BatchRunner:
    """A batch runner that polls every few milliseconds and shows no progress."""
    return BatchRunner(
        client, store=store, poll_interval=0.01, poll_interval_max=0.05, progress=False
    )


REQUESTS = [ask(f"resume {i}") for i in range(5)]
KEYS = {op_of(r).key for r in REQUESTS}


async def test_cancelled_task_leaves_the_batch_to_be_collected(
    client: openai.AsyncOpenAI, store: Store, emu: Emulator
) -> None:
    """Cancelling a run mid-poll keeps the batch running; a new runner collects it, paying once."""
    emu.set_time_scale(1.0)
    task = asyncio.create_task(fast(client, store).run_all(REQUESTS))
    while not store.shards(states=("created",)):  # noqa: ASYNC110 - polling the journal is the point
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    (record,) = store.shards()
    assert "created" == record.state
    second = fast(client, store)
    results = await second.run_all(REQUESTS)
    assert [r.words for r in results] == [r.words for r in await second.run_all(REQUESTS)]
    assert 0 == second.report.batches_created
    assert [record.batch_id] == emu.batch_ids()
    assert dict.fromkeys(KEYS, 1) == settled_ledger(emu).counts()


async def test_batch_created_but_not_journaled_is_found_by_metadata(
    client: openai.AsyncOpenAI, store: Store, emu: Emulator, wire: LossyTransport
) -> None:
    """A batch whose id never reached the journal is found through batches.list and reused."""
    wire.crash("POST", "/v1/batches", Crash())
    with pytest.raises(Crash):
        await fast(client, store).run_all(REQUESTS)
    (record,) = store.shards()
    assert ("uploaded", None) == (record.state, record.batch_id)
    second = fast(client, store)
    results = await second.run_all(REQUESTS)
    assert 5 == len({tuple(r.words) for r in results})
    assert 0 == second.report.batches_created
    (only,) = emu.batch_ids()
    assert only == store.shard(record.id).batch_id
    assert dict.fromkeys(KEYS, 1) == settled_ledger(emu).counts()


async def test_intent_without_upload_is_submitted_once(
    client: openai.AsyncOpenAI, store: Store, emu: Emulator, wire: LossyTransport
) -> None:
    """A shard journaled but never uploaded is abandoned on resume and submitted afresh, once."""
    wire.crash("POST", "/v1/files", Crash(), before=True)
    with pytest.raises(Crash):
        await fast(client, store).run_all(REQUESTS)
    assert ["intended"] == [r.state for r in store.shards()]
    second = fast(client, store)
    assert 5 == len(await second.run_all(REQUESTS))
    assert ["abandoned", "downloaded"] == [r.state for r in store.shards()]
    assert 1 == second.report.batches_created
    assert dict.fromkeys(KEYS, 1) == settled_ledger(emu).counts()


async def test_finished_run_is_all_cache_hits(
    client: openai.AsyncOpenAI, store: Store, emu: Emulator
) -> None:
    """Running the same requests again after a finished run costs nothing."""
    first = await fast(client, store).run_all(REQUESTS)
    again = fast(client, store)
    assert first == await again.run_all(REQUESTS)
    assert (5, 0, 0) == (
        again.report.cache_hits,
        again.report.ops_sent,
        again.report.batches_created,
    )
    assert dict.fromkeys(KEYS, 1) == settled_ledger(emu).counts()
