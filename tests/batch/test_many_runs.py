"""Many runs, one store: nobody pays twice (#12).

Two processes, two runners in one process, and two ``run_all`` on one runner ask for
the same two-round requests on one store, the second started 0, 0.5 or 1.5 s after
the first. Uploads and creates go over a slow network (0.4 s each), so the second
run arrives while the first one's shards are journaled but not yet at the server:
at 0 s both submit round one together, at 0.5 s the first is still submitting it, at
1.5 s it submits round two. That is where runs used to pay twice. A run
that finds another live run's shard waits for it or takes its answers; only a shard
whose owner's lease ran out is taken over, and then resumed where it stopped.

Every money check reads the ledger only after every batch at the server ran to its
end (:func:`tests.billing.assert_billed_once`): a duplicate batch still running
would otherwise look free. The offsets are start delays, never deadlines: no
assertion depends on how fast a loaded machine is. Run them alone with
``pytest -m many_runs``.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
from collections.abc import AsyncIterator, Awaitable
from pathlib import Path
from typing import TypeVar

import attrs
import openai
import pytest
from tests.billing import assert_billed_once, assert_reports_add_up, settled_ledger

from inert import ImmediateRunner, Request, RunReport, Store
from inert.emulator import Emulator

from ._crash import kill_at_marker
from ._many_runs import REQUESTS, SlowNetwork, batch_runner, many_run_requests, slow_client
from ._support import Words, crash_requests
from ._workers import PATIENCE, finish, reaped, start_run, wait_for

pytestmark = pytest.mark.many_runs

T = TypeVar("T")

SCALE = 0.5
"""The emulator's pace in these tests: a batch takes about 0.55 s; with the slow network's
0.8 s from a shard's intent to its batch, one run takes about 3 s."""
OFFSETS = [0.0, 0.5, 1.5]
"""Seconds between the start of the first run and the start of the second."""


@attrs.frozen
class Truth:
    """What every run must answer, and the calls that make those answers."""

    answers: list[list[str]]
    keys: frozenset[str]


@pytest.fixture
async def truth(client: openai.AsyncOpenAI, emu: Emulator) -> Truth:
    """The two-round answers and their call keys, asked once without batches, then forgotten.

    The emulator's answers depend only on the request body, so every run, batch or not,
    must answer the same; the ledger of this one run names every call of both rounds.
    """
    answers = await ImmediateRunner(client).run_all(many_run_requests())
    keys = frozenset(settled_ledger(emu).counts())
    assert 2 * REQUESTS == len(keys)
    emu.reset()
    emu.set_time_scale(SCALE)
    return Truth(answers, keys)


async def within(work: Awaitable[T]) -> T:
    """``work``, failing the test instead of hanging it when a run never ends."""
    return await asyncio.wait_for(work, PATIENCE)


async def after(delay: float, work: Awaitable[T]) -> T:
    """``work`` started ``delay`` seconds from now."""
    await asyncio.sleep(delay)
    return await work


@pytest.fixture
async def slow(emu: Emulator) -> AsyncIterator[openai.AsyncOpenAI]:
    """A client over the slow network: 0.4 s per batch input upload and per batch create."""
    async with slow_client(emu.base_url) as sdk:
        yield sdk


def reported(figures: dict[str, int]) -> RunReport:
    """A child's run report, from the figures it printed."""
    return RunReport(
        ops_sent=figures["ops_sent"],
        ops_paid=figures["ops_paid"],
        cache_hits=figures["cache_hits"],
        prompt_tokens=figures["prompt_tokens"],
        completion_tokens=figures["completion_tokens"],
    )


def assert_each_run_counted_every_call(reports: list[RunReport]) -> None:
    """Each run answered each of its distinct calls once: sent by it, or from the store
    (stored before it asked, or by the run it waited for)."""
    for report in reports:
        assert 2 * REQUESTS == report.cache_hits + report.ops_sent, report


# --- two processes ----------------------------------------------------------------------


@pytest.mark.parametrize("offset", OFFSETS)
async def test_two_processes_on_one_store_pay_each_call_once(
    offset: float,
    truth: Truth,
    client: openai.AsyncOpenAI,
    emu: Emulator,
    store_path: Path,
) -> None:
    """Two processes run the same two-round requests on one store: both get the answers (or
    one is refused with a clear message and a final run gets them), each call billed once."""
    first = start_run(emu, store_path)
    with reaped(first):
        await asyncio.sleep(offset)
        second = start_run(emu, store_path)
        with reaped(second):
            runs = await asyncio.gather(
                asyncio.to_thread(finish, first), asyncio.to_thread(finish, second)
            )
    for run in runs:
        if run.refused is not None:
            assert "store" in run.refused.lower(), run.refused
        else:
            assert truth.answers == run.answers
    assert sum(run.refused is not None for run in runs) <= 1, "both runs were refused"
    reports = [reported(run.report) for run in runs if run.refused is None]
    if any(run.refused is not None for run in runs):
        with Store(store_path) as store:
            final = batch_runner(client, store)
            assert truth.answers == await within(final.run_all(many_run_requests()))
            reports.append(final.report)
    assert_billed_once(emu, truth.keys)
    assert_each_run_counted_every_call(reports)
    assert_reports_add_up(emu, reports)


# --- two runners in one process; two run_all on one runner -------------------------------


@pytest.mark.parametrize("offset", OFFSETS)
@pytest.mark.parametrize("stores", ["one Store", "two Stores on one file"])
async def test_two_runners_in_one_process_pay_each_call_once(
    offset: float,
    stores: str,
    truth: Truth,
    slow: openai.AsyncOpenAI,
    emu: Emulator,
    store_path: Path,
) -> None:
    """Two BatchRunners on one store (one Store object, or two on the same file), started
    ``offset`` apart in one event loop, both answer everything; each call is billed once."""
    with Store(store_path) as one, Store(store_path) as other:
        first = batch_runner(slow, one)
        second = batch_runner(slow, one if stores == "one Store" else other)
        answers = await within(
            asyncio.gather(
                first.run_all(many_run_requests()),
                after(offset, second.run_all(many_run_requests())),
            )
        )
    assert [truth.answers, truth.answers] == list(answers)
    assert_billed_once(emu, truth.keys)
    assert_each_run_counted_every_call([first.report, second.report])
    assert_reports_add_up(emu, [first.report, second.report])


@pytest.mark.parametrize("offset", OFFSETS)
async def test_two_run_alls_on_one_runner_pay_each_call_once(
    offset: float, truth: Truth, slow: openai.AsyncOpenAI, emu: Emulator, store: Store
) -> None:
    """Two concurrent run_all on one BatchRunner, ``offset`` apart, both answer everything;
    each call is billed once."""
    runner = batch_runner(slow, store)
    answers = await within(
        asyncio.gather(
            runner.run_all(many_run_requests()),
            after(offset, runner.run_all(many_run_requests())),
        )
    )
    assert [truth.answers, truth.answers] == list(answers)
    assert_billed_once(emu, truth.keys)


# --- leases: a dead owner's shard is taken over, a live owner's never ---------------------


@pytest.fixture
async def crash_truth(client: openai.AsyncOpenAI, emu: Emulator) -> Truth:
    """The answers of the one-round crash requests and their keys, asked once, then forgotten."""
    answers = await ImmediateRunner(client).run_all(crash_requests())
    keys = frozenset(settled_ledger(emu).counts())
    emu.reset()
    return Truth([a.words for a in answers], keys)


BATCHES_THE_RERUN_MAKES = {"upload": 1, "create": 0, "poll": 0}
"""Killed after its upload, the owner made no batch: the new owner makes it. Killed after
the create (journaled or not), the batch exists: the new owner resumes it."""


@pytest.mark.parametrize("point", list(BATCHES_THE_RERUN_MAKES))
async def test_a_dead_owners_shard_is_taken_over_once_its_lease_expires(
    point: str,
    crash_truth: Truth,
    client: openai.AsyncOpenAI,
    emu: Emulator,
    tmp_path: Path,
) -> None:
    """A run SIGKILLed while it holds a shard (lease 1 s) leaves it to a run started at once:
    that run takes the shard over (once the lease ran out, or at once if it knows the owner's
    process is gone) and resumes it, paying each call once."""
    emu.set_time_scale(0.5)
    store_path = tmp_path / "store.sqlite3"
    marker = tmp_path / "marker"
    kill_at_marker(
        start_run(
            emu, store_path, "--lease", "1.0", "--delay", "0", "--freeze", point, str(marker)
        ),
        marker,
    )
    with Store(store_path) as store:
        rerun = batch_runner(client, store, lease=1.0)
        answers = await within(rerun.run_all(crash_requests()))
    assert crash_truth.answers == [a.words for a in answers]
    assert BATCHES_THE_RERUN_MAKES[point] == rerun.report.batches_created
    assert 1 == len(emu.batch_ids())
    assert_billed_once(emu, crash_truth.keys)


LEASE = 0.4
"""The short lease of the heartbeat test: its owner's shard outlives it several times."""


@pytest.fixture
async def slow_creates(emu: Emulator) -> AsyncIterator[tuple[openai.AsyncOpenAI, SlowNetwork]]:
    """A client whose batch creates wait four leases, with the network that holds them."""
    network = SlowNetwork(0.0, create_delay=4 * LEASE)
    async with slow_client(emu.base_url, network) as sdk:
        yield sdk, network


async def test_a_live_owners_lease_is_renewed_so_its_slow_shard_is_never_taken_over(
    crash_truth: Truth,
    slow_creates: tuple[openai.AsyncOpenAI, SlowNetwork],
    client: openai.AsyncOpenAI,
    emu: Emulator,
    store_path: Path,
) -> None:
    """A run whose shard takes many leases (a create held four leases, a batch of about three)
    keeps it by its heartbeat: a second run, started two leases after the upload, waits for
    it or takes its answers, and never submits the shard itself."""
    emu.set_time_scale(SCALE)
    owner_client, network = slow_creates
    requests: list[Request[Words]] = crash_requests()
    with Store(store_path) as one, Store(store_path) as other:
        owner = batch_runner(owner_client, one, lease=LEASE)
        owned = asyncio.create_task(owner.run_all(requests))
        try:
            await within(network.uploaded.wait())
            await asyncio.sleep(2 * LEASE)
            second = batch_runner(client, other, lease=LEASE)
            later = await within(second.run_all(requests))
            first = await within(owned)
        finally:
            owned.cancel()
    assert crash_truth.answers == [a.words for a in first] == [a.words for a in later]
    assert 0 == second.report.batches_created
    assert 1 == len(emu.batch_ids())
    assert_billed_once(emu, crash_truth.keys)


async def test_a_stale_owner_that_wakes_after_a_takeover_pays_nothing_more(
    crash_truth: Truth,
    client: openai.AsyncOpenAI,
    emu: Emulator,
    tmp_path: Path,
) -> None:
    """An owner stopped (SIGSTOP) right after its upload loses its shard when its lease runs
    out; the run that took it over answers everything. Woken again, the stale owner's journal
    writes no longer count: it makes no batch, and ends with the answers or a RequestError."""
    emu.set_time_scale(0.5)
    store_path = tmp_path / "store.sqlite3"
    marker, release = tmp_path / "marker", tmp_path / "release"
    owner = start_run(
        emu,
        store_path,
        "--lease",
        "1.0",
        "--delay",
        "0",
        "--pause",
        "upload",
        str(marker),
        str(release),
    )
    with reaped(owner):
        wait_for(marker, owner)
        os.kill(owner.pid, signal.SIGSTOP)
        try:
            with Store(store_path) as store:
                rerun = batch_runner(client, store, lease=1.0)
                answers = await within(rerun.run_all(crash_requests()))
        finally:
            release.write_text("go")
            os.kill(owner.pid, signal.SIGCONT)
        out, err = await asyncio.to_thread(owner.communicate, timeout=PATIENCE)
    assert crash_truth.answers == [a.words for a in answers]
    assert owner.returncode in (0, 4), (
        f"the stale owner crashed ({owner.returncode}):\n{out}\n{err}"
    )
    printed = json.loads(out.splitlines()[-1])
    if owner.returncode == 0:
        assert crash_truth.answers == printed["answers"]
    else:
        assert printed["failed"]
    assert 1 == rerun.report.batches_created
    assert 1 == len(emu.batch_ids())
    assert_billed_once(emu, crash_truth.keys)
