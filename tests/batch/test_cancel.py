"""Cancel from anywhere means stop: at the server, from `inert batches cancel`, or cancel().

A cancelled batch's answered lines are kept (stored, with their values), its unrun
lines fail with CancelledRequestError, and nothing is resubmitted in that run. A later
run of the same requests is a new decision: it pays nothing again for what was
answered, and submits the lines the cancel stopped.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import openai
import pytest
from returns.result import Failure, Result, Success
from tests.billing import settled_ledger

from inert import BatchRunner, ImmediateRunner, Request, RequestError, Store
from inert._cli import main as cli_main
from inert.emulator import Emulator, Faults
from inert.errors import CancelledRequestError
from inert.testing import op_of

from ._support import Words, ask
from ._transport import LossyTransport

REQUESTS = [ask(f"cancel {i}") for i in range(20)]
KEYS = [op_of(r).key for r in REQUESTS]
ROOT = Path(__file__).resolve().parents[2]


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


def split(
    results: Sequence[Result[Words, RequestError]], expected: Sequence[Words]
) -> tuple[set[str], set[str]]:
    """The keys answered (with the right value) and the keys cancelled; nothing else allowed."""
    answered: set[str] = set()
    cancelled: set[str] = set()
    for key, want, got in zip(KEYS, expected, results, strict=True):
        if isinstance(got, Success):
            assert want == got.unwrap()
            answered.add(key)
        else:
            assert isinstance(got, Failure)
            assert isinstance(got.failure(), CancelledRequestError), got.failure()
            cancelled.add(key)
    return answered, cancelled


def assert_stored(store: Store, keys: set[str], expected: Sequence[Words]) -> None:
    """Exactly ``keys`` have stored answers, and they decode to the expected values."""
    stored = store.get_responses(KEYS)
    assert keys == set(stored)
    for request, key, want in zip(REQUESTS, KEYS, expected, strict=True):
        if key in stored:
            assert want == op_of(request).decode(stored[key])


async def started(store: Store) -> None:
    """Wait until the run's batch is journaled as created."""
    while not store.shards(states=("created",)):  # noqa: ASYNC110 - polling the journal is the point
        await asyncio.sleep(0.01)


def cli_tail(emu: Emulator) -> list[str]:
    """The end of an `inert batches` command line that cancels every batch on the emulator."""
    return ["--base-url", emu.base_url, "cancel"]


async def cli(emu: Emulator, store: Store, *args: str) -> int:
    """``inert batches ARGS`` on the same store, in its own thread, loop and connection."""
    argv = ["batches", "--store", store.location, "--base-url", emu.base_url, *args]
    return await asyncio.to_thread(cli_main, argv)


async def test_a_batch_cancelled_at_the_server_is_not_resubmitted(
    client: openai.AsyncOpenAI, store: Store, emu: Emulator, expected: list[Words]
) -> None:
    """Cancelled by someone else mid-run: answers kept, the rest CancelledRequestError, no new batch."""
    emu.set_faults(Faults(external_cancel=1.0))
    runner = fast(client, store)
    results = await runner.run_all_settled(REQUESTS)
    answered, cancelled = split(results, expected)
    assert answered
    assert cancelled
    assert 1 == len(emu.batch_ids())
    assert 0 == runner.report.retries
    assert_stored(store, answered, expected)
    assert dict.fromkeys(answered, 1) == settled_ledger(emu).counts()


async def test_a_cli_cancel_from_another_process_stops_the_run(
    client: openai.AsyncOpenAI, store: Store, emu: Emulator, expected: list[Words]
) -> None:
    """`inert batches cancel` run as another process stops the live run: nothing resubmitted."""
    emu.set_time_scale(10.0)
    task = asyncio.create_task(fast(client, store).run_all_settled(REQUESTS))
    await started(store)
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "inert", "batches", "--store", store.location, *cli_tail(emu)],
        cwd=ROOT,
        env={**os.environ, "OPENAI_API_KEY": "test"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert 0 == done.returncode, done.stderr
    answered, cancelled = split(await task, expected)
    assert cancelled
    assert 1 == len(emu.batch_ids())
    assert_stored(store, answered, expected)
    assert dict.fromkeys(answered, 1) == settled_ledger(emu).counts()


async def test_a_run_after_a_cli_cancel_pays_only_for_the_lines_it_stopped(
    client: openai.AsyncOpenAI,
    store: Store,
    emu: Emulator,
    expected: list[Words],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """After a CLI cancel, the same requests again: answered lines come from the store, the
    cancelled ones are submitted anew, and every line is paid once."""
    monkeypatch.setenv("OPENAI_API_KEY", "test")
    emu.set_time_scale(2.0)
    first = asyncio.create_task(fast(client, store).run_all_settled(REQUESTS))
    await started(store)
    assert 0 == await cli(emu, store, "cancel")
    answered, cancelled = split(await first, expected)
    assert cancelled
    again = fast(client, store)
    assert expected == await again.run_all(REQUESTS)
    assert len(answered) == again.report.cache_hits
    assert 1 == again.report.batches_created
    assert dict.fromkeys(KEYS, 1) == settled_ledger(emu).counts()


async def test_a_killed_run_cancelled_by_the_cli_is_collected_then_completed(
    client: openai.AsyncOpenAI,
    store: Store,
    emu: Emulator,
    expected: list[Words],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A run killed mid-batch, then `inert batches cancel`: a rerun collects the cancelled batch's
    answers from the journal and submits only the lines it never ran, each paid once."""
    monkeypatch.setenv("OPENAI_API_KEY", "test")
    emu.set_time_scale(2.0)
    first = asyncio.create_task(fast(client, store).run_all(REQUESTS))
    await started(store)
    first.cancel()
    await asyncio.gather(first, return_exceptions=True)
    assert 0 == await cli(emu, store, "cancel")
    assert ["cancelling"] == [r.state for r in store.shards()]
    rerun = fast(client, store)
    assert expected == await rerun.run_all(REQUESTS)
    original, resubmitted = store.shards()
    assert (original.state, resubmitted.parent_id) == ("downloaded", original.id)
    assert dict.fromkeys(KEYS, 1) == settled_ledger(emu).counts()


async def test_cancel_stops_the_runners_batches_and_resubmits_nothing(
    client: openai.AsyncOpenAI, emu: Emulator, store: Store, wire: LossyTransport
) -> None:
    """runner.cancel() cancels the running batch; its lines fail as cancelled, not resubmitted."""
    emu.set_time_scale(3.0)
    runner = fast(client, store)
    requests: list[Request[Words]] = [ask("z1"), ask("z2")]
    task = asyncio.create_task(runner.run_all_settled(requests))
    await started(store)
    cancelled = await runner.cancel()
    results = await task
    assert 1 == len(cancelled)
    assert all(
        isinstance(r, Failure) and isinstance(r.failure(), CancelledRequestError) for r in results
    )
    assert 1 == runner.report.batches_created
    (record,) = store.shards()
    assert ("downloaded", "cancelled") == (record.state, record.remote_status)
    assert {} == settled_ledger(emu).counts()


async def test_a_cancel_between_upload_and_create_creates_no_batch(
    client: openai.AsyncOpenAI, emu: Emulator, store: Store, wire: LossyTransport
) -> None:
    """A cancel recorded in the journal by another connection while uploading: no batch is made."""
    with Store(store.location) as elsewhere:
        wire.on_answer("POST", "/v1/files", lambda _: elsewhere.request_cancel())
        results = await fast(client, store).run_all_settled([ask("late")])
    (result,) = results
    assert isinstance(result, Failure)
    assert isinstance(result.failure(), CancelledRequestError)
    assert [] == emu.batch_ids()
    assert ["abandoned"] == [r.state for r in store.shards()]
