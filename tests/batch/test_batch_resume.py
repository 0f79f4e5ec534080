"""Resume: a new runner on the same store re-attaches to batches instead of paying again."""

from __future__ import annotations

import asyncio
from typing import Any

import openai
import pytest

from inert import BatchRunner, Store
from inert.emulator import Emulator

from ._support import ask


class Crash(BaseException):
    """Stands in for the process dying at a precise point."""


def fast(client: openai.AsyncOpenAI, store: Store) -> BatchRunner:
    """A batch runner that polls every few milliseconds and shows no progress."""
    return BatchRunner(
        client, store=store, poll_interval=0.01, poll_interval_max=0.05, progress=False
    )


REQUESTS = [ask(f"resume {i}") for i in range(5)]


async def test_cancelled_task_leaves_the_batch_to_be_collected(
    client: openai.AsyncOpenAI, store: Store, emu: Emulator
) -> None:
    """Cancelling a run mid-poll keeps the batch running; a new runner collects it."""
    emu.set_time_scale(1.0)
    first = fast(client, store)
    polled = asyncio.Event()
    retrieve = client.batches.retrieve

    async def spy(*args: Any, **kwargs: Any) -> Any:
        polled.set()
        return await retrieve(*args, **kwargs)

    client.batches.retrieve = spy  # type: ignore[method-assign]  # a test spy
    task = asyncio.create_task(first.run_all(REQUESTS))
    await polled.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    (record,) = store.shards()
    assert "created" == record.state
    second = fast(client, store)
    results = await second.run_all(REQUESTS)
    assert 5 == len(results)
    assert 0 == second.report.batches_created
    assert dict.fromkeys(store.shard_custom_ids(record.id), 1) == emu.ledger.counts()


async def test_batch_created_but_not_journaled_is_found_by_metadata(
    client: openai.AsyncOpenAI, store: Store, emu: Emulator
) -> None:
    """A batch whose id never reached the journal is found through batches.list and reused."""
    create = client.batches.create

    async def create_then_die(**kwargs: Any) -> Any:
        await create(**kwargs)
        raise Crash

    client.batches.create = create_then_die  # type: ignore[method-assign]  # a test spy
    with pytest.raises(Crash):
        await fast(client, store).run_all(REQUESTS)
    (record,) = store.shards()
    assert ("uploaded", None) == (record.state, record.batch_id)
    client.batches.create = create  # type: ignore[method-assign]  # restore
    second = fast(client, store)
    results = await second.run_all(REQUESTS)
    assert 5 == len(results)
    assert 0 == second.report.batches_created
    assert 1 == len(emu.batch_ids())
    assert [] == emu.ledger.billed_more_than_once()


async def test_lost_create_answer_is_recovered_in_the_same_run(
    client: openai.AsyncOpenAI, store: Store, emu: Emulator
) -> None:
    """When the create call's answer is lost, the runner finds the batch instead of resubmitting."""
    create = client.batches.create

    async def create_then_lose_answer(**kwargs: Any) -> Any:
        await create(**kwargs)
        raise openai.APIConnectionError(request=None)  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]  # no request to show

    client.batches.create = create_then_lose_answer  # type: ignore[method-assign]  # a test spy
    runner = fast(client, store)
    results = await runner.run_all(REQUESTS)
    assert 5 == len(results)
    assert 1 == len(emu.batch_ids())
    assert [] == emu.ledger.billed_more_than_once()


async def test_intent_without_upload_is_submitted_once(
    client: openai.AsyncOpenAI, store: Store, emu: Emulator
) -> None:
    """A shard journaled but never created is abandoned on resume and submitted afresh, once."""
    upload = client.files.create

    async def die_on_upload(**kwargs: Any) -> Any:
        raise Crash

    client.files.create = die_on_upload  # type: ignore[method-assign]  # a test spy
    with pytest.raises(Crash):
        await fast(client, store).run_all(REQUESTS)
    client.files.create = upload  # type: ignore[method-assign]  # restore
    second = fast(client, store)
    assert 5 == len(await second.run_all(REQUESTS))
    assert ["abandoned", "downloaded"] == [r.state for r in store.shards()]
    assert 1 == second.report.batches_created
    assert [] == emu.ledger.billed_more_than_once()


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
