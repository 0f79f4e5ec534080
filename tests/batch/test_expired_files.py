"""Expired output files: 404 "No such File object" means those answers are gone.

The shard's unanswered lines are submitted again (the journal says so), and
`inert batches` shows such shards and can abandon them.
"""

from __future__ import annotations

import asyncio

import httpx2
import openai
import pytest
from returns.result import Failure

from inert import BatchRunner, ImmediateRunner, Store
from inert._cli import main as cli_main
from inert.emulator import Emulator, Faults
from inert.testing import op_of

from ._support import Words, ask
from ._transport import LossyTransport

REQUESTS = [ask(f"expiring {i}") for i in range(5)]
KEYS = [op_of(r).key for r in REQUESTS]


def fast(client: openai.AsyncOpenAI, store: Store) -> BatchRunner:
    """A batch runner that polls every few milliseconds and shows no progress."""
    return BatchRunner(
        client, store=store, poll_interval=0.01, poll_interval_max=0.05, progress=False
    )


@pytest.fixture
async def expected(client: openai.AsyncOpenAI, emu: Emulator) -> list[Words]:
    """The answers to REQUESTS, asked immediately (the emulator is reset afterwards)."""
    answers = await ImmediateRunner(client).run_all(REQUESTS)
    emu.reset()
    return answers


def completed(response: httpx2.Response) -> bool:
    """A poll answer that shows the batch completed."""
    return bool(response.json().get("status") == "completed")


def expire_outputs_once_completed(wire: LossyTransport, emu: Emulator) -> None:
    """As the first poll shows a batch completed, every output file expires."""
    wire.on_answer(
        "GET", "/v1/batches/[^/]+", lambda _: emu.expire_files("batch_output"), when=completed
    )


async def test_lines_of_an_expired_output_file_are_resubmitted_and_answered(
    client: openai.AsyncOpenAI,
    store: Store,
    emu: Emulator,
    wire: LossyTransport,
    expected: list[Words],
) -> None:
    """The output expires before download: the lines go again in one new batch and are answered."""
    expire_outputs_once_completed(wire, emu)
    runner = fast(client, store)
    assert expected == await runner.run_all(REQUESTS)
    first, second = store.shards()
    assert ("abandoned", second.parent_id) == (first.state, first.id)
    assert first.error is not None
    assert "expired before it was downloaded" in first.error
    assert "downloaded" == second.state
    assert set(KEYS) == set(store.shard_custom_ids(second.id))
    stored = store.get_responses(KEYS)
    assert expected == [op_of(r).decode(stored[op_of(r).key]) for r in REQUESTS]


async def test_the_cli_shows_and_abandons_a_shard_whose_output_expired(
    client: openai.AsyncOpenAI,
    store: Store,
    emu: Emulator,
    wire: LossyTransport,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`inert batches resume` finds the output gone and says so; `list --pending` shows the
    shard as lost; `abandon` retires it, and a later run submits its lines afresh."""
    monkeypatch.setenv("OPENAI_API_KEY", "test")
    task = asyncio.create_task(fast(client, store).run_all(REQUESTS))
    while not store.shards(states=("created",)):  # noqa: ASYNC110 - polling the journal is the point
        await asyncio.sleep(0.01)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    emu.settle()
    emu.expire_files("batch_output")
    base = ["batches", "--store", store.location, "--base-url", emu.base_url]
    assert 0 == await asyncio.to_thread(cli_main, [*base, "resume"])
    assert "its output expired before it was downloaded" in capsys.readouterr().out
    (record,) = store.shards()
    assert "lost" == record.state
    assert 0 == await asyncio.to_thread(cli_main, [*base, "list", "--pending"])
    assert "lost" in capsys.readouterr().out
    assert 0 == await asyncio.to_thread(cli_main, [*base, "abandon", str(record.id)])
    assert "abandoned" == store.shard(record.id).state
    assert 2 == await asyncio.to_thread(cli_main, [*base, "abandon", str(record.id)])
    assert "not lost" in capsys.readouterr().err
    assert 5 == len(await fast(client, store).run_all(REQUESTS))
    assert ["abandoned", "downloaded"] == [r.state for r in store.shards()]


async def test_a_batch_that_served_no_output_can_be_abandoned_by_hand(
    client: openai.AsyncOpenAI,
    store: Store,
    emu: Emulator,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Completed lines without an output file are not paid again until the user abandons the
    shard; then the next run submits them."""
    monkeypatch.setenv("OPENAI_API_KEY", "test")
    emu.set_faults(Faults(drop_output=1.0))
    first = await fast(client, store).run_all_settled(REQUESTS)
    assert all(isinstance(r, Failure) for r in first)
    (record,) = store.shards()
    assert ("created", "completed") == (record.state, record.remote_status)
    emu.set_faults(Faults())
    base = ["batches", "--store", store.location, "--base-url", emu.base_url]
    assert 0 == await asyncio.to_thread(cli_main, [*base, "abandon", str(record.id)])
    assert 5 == len(await fast(client, store).run_all(REQUESTS))
    assert ["abandoned", "downloaded"] == [r.state for r in store.shards()]
