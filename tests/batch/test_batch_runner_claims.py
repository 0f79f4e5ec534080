"""The batch runner's claims against another run's shards, fast and in one process.

A shard another run holds is journaled here by hand (:meth:`Store.claim_shards` under
that run's id, as its process would have), so no second process and no lease has to
run out: the run that needs the same lines waits for it, with a pause that grows like
the poll interval, takes it over at once when the holder's process is known to have
ended, or stops waiting when it is cancelled. ``_claim`` is wrapped to record each
pause it was called with (and to stop a wait that would never end).
"""

from __future__ import annotations

import logging
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import openai
import pytest
from returns.result import Failure
from tests.billing import assert_billed_once

from inert import BatchRunner, Request, Store
from inert._claims import ShardIntent
from inert.emulator import Emulator
from inert.errors import CancelledRequestError
from inert.openai import CHAT_COMPLETIONS
from inert.testing import op_of

from ._support import MODEL, Words, ask

LONG_LEASE = 3600.0
"""The holder's lease: it never runs out during a test."""


def fast(client: openai.AsyncOpenAI, store: Store) -> BatchRunner:
    return BatchRunner(
        client, store=store, poll_interval=0.01, poll_interval_max=0.05, progress=False
    )


def ended_pid() -> int:
    """The pid of a process that has ended (and was reaped)."""
    child = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    return int(child.stdout)


@pytest.fixture
def live_pid() -> Iterator[int]:
    """The pid of a process that runs for the whole test (then is ended)."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        yield child.pid
    finally:
        child.kill()
        child.wait()


def held_by(store: Store, run_id: str, requests: Sequence[Request[Words]], **process: Any) -> None:
    """Journal one shard of ``requests`` held by ``run_id`` (not sent), as its process would."""
    store.begin_run(run_id, {}, **process)
    store.claim_shards(
        run_id=run_id,
        keys=[op_of(r).key for r in requests],
        plan=lambda free: [ShardIntent(CHAT_COMPLETIONS, MODEL, list(free))],
        lease=LONG_LEASE,
        now=store.clock(),
    )


def record_waits(
    runner: BatchRunner,
    monkeypatch: pytest.MonkeyPatch,
    on_call: Callable[[int], None] = lambda _: None,
) -> list[float | None]:
    """The ``wait`` of each ``_claim`` call, in order; ``on_call(n)`` runs before the n-th."""
    waits: list[float | None] = []
    claim = runner._claim

    async def recorded(rnd: Any, ops: Any, wait: float | None = None) -> None:
        waits.append(wait)
        if len(waits) > 20:
            raise AssertionError(f"still waiting after {waits}")
        on_call(len(waits))
        await claim(rnd, ops, wait)

    monkeypatch.setattr(runner, "_claim", recorded)
    return waits


async def test_a_shard_of_a_run_whose_process_ended_is_taken_over_at_once(
    client: openai.AsyncOpenAI,
    store: Store,
    emu: Emulator,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Same host, no such process: its leases end now, and the lines are claimed again
    with no pause; its unsent shard has no batch, so they are submitted once."""
    requests = [ask("held one"), ask("held two")]
    held_by(store, "run_dead", requests, host=socket.gethostname(), pid=ended_pid())
    runner = fast(client, store)
    waits = record_waits(runner, monkeypatch)
    with caplog.at_level(logging.INFO, logger="inert.batch"):
        results = await runner.run_all(requests)
    assert [None, 0.0, None] == waits
    assert 2 == len(results)
    assert all(isinstance(r, Words) for r in results)
    assert ["run run_dead ended without giving up its shards: taking them"] == [
        r.getMessage() for r in caplog.records if "ended without" in r.getMessage()
    ]
    assert_billed_once(emu, [op_of(r).key for r in requests])
    assert 1 == runner.report.batches_created


async def test_a_live_holder_is_waited_for_with_a_growing_pause(
    client: openai.AsyncOpenAI, store: Store, emu: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A holder on another host may be alive: the run waits, the pause growing by half
    up to poll_interval_max, until the holder gives its shard up (here at the 7th claim)."""
    requests = [ask("live one")]
    held_by(store, "run_live", requests, host="another-host", pid=1)
    runner = fast(client, store)

    def give_up(call: int) -> None:
        if call == 7:
            store.release_leases(owner="run_live")

    waits = record_waits(runner, monkeypatch, give_up)
    results = await runner.run_all(requests)
    assert [None, 0.01, 0.015, 0.0225, 0.03375, 0.05, 0.05, None] == pytest.approx(waits)
    assert isinstance(results[0], Words)
    assert_billed_once(emu, [op_of(r).key for r in requests])


async def test_a_live_holder_on_this_host_is_waited_for(
    client: openai.AsyncOpenAI,
    store: Store,
    emu: Emulator,
    monkeypatch: pytest.MonkeyPatch,
    live_pid: int,
) -> None:
    """A holder whose process exists (a child of this test) is not taken for gone."""
    requests = [ask("live here")]
    held_by(store, "run_here", requests, host=socket.gethostname(), pid=live_pid)
    runner = fast(client, store)

    def give_up(call: int) -> None:
        if call == 3:
            store.release_leases(owner="run_here")

    waits = record_waits(runner, monkeypatch, give_up)
    results = await runner.run_all(requests)
    assert [None, 0.01, 0.015, None] == pytest.approx(waits)
    assert isinstance(results[0], Words)
    assert_billed_once(emu, [op_of(r).key for r in requests])


async def test_a_run_cancelled_while_it_waits_fails_those_lines_and_sends_nothing(
    client: openai.AsyncOpenAI, store: Store, emu: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    requests = [ask("wait one"), ask("wait two")]
    held_by(store, "run_live", requests, host="another-host", pid=1)
    runner = fast(client, store)

    def cancel(call: int) -> None:
        if call == 3:
            runner._cancel_requested = True

    waits = record_waits(runner, monkeypatch, cancel)
    results = await runner.run_all_settled(requests)
    assert [None, 0.01, 0.015] == pytest.approx(waits)
    errors = [r.failure() for r in results if isinstance(r, Failure)]
    assert 2 == len(errors)
    assert all(type(e) is CancelledRequestError for e in errors)
    assert {"the run was cancelled while it waited for another run's batch"} == {
        e.message for e in errors
    }
    assert 0 == runner.report.batches_created
    assert_billed_once(emu, [])
