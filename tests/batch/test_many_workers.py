"""Many workers, one PostgreSQL store: four processes ask the same requests, one dies (#16).

Four worker processes run the same two-round requests through ``BatchRunner`` on one
PostgreSQL store, each talking to the emulator over loopback HTTP through the real
openai SDK. They start at staggered times: the first one claims round one and cuts
it into four shards; the second starts once those are journaled, the third a moment
later. The first one is frozen right after its second batch create was answered (one
batch or more exists at the server, none is collected, the journal may not know of
the last one) and SIGKILLed; the fourth starts after the kill. The survivors take the
dead worker's shards over — once its lease ran out when it ran "on another machine"
(nobody can see its process end), at once when it ran on this one (its pid is gone)
— and resume them: a batch that exists at the server is polled and collected, never
submitted again. Then ``inert batches resume --store URL`` finds nothing left.

Every survivor answers every request; every call is billed exactly once, read from
the ledger only after every batch at the server ran to its end
(:func:`tests.billing.assert_billed_once`). The workers log in over TCP with a
password, which none of their output, the CLI's or the journal ever shows.

The default suite runs 200 requests; the 2,000 of #16's must-show run with
``INERT_MANY_WORKERS=2000 pytest tests/batch/test_many_workers.py -s`` (its figures are
in docs/many-workers.md). No assertion depends on
how fast the machine is: the stagger is a start delay, the patience a hang guard.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import attrs
import openai
import psycopg
import pytest
from psycopg import sql
from tests._postgres import PASSWORD, Cluster, fresh_database
from tests.billing import assert_billed_once, settled_ledger

from inert import ImmediateRunner, Store
from inert._journal import PENDING_STATES, ShardRecord
from inert._store_pg import PostgresStore
from inert.emulator import Emulator

from ._crash import kill_at_marker
from ._many_runs import SlowNetwork, batch_runner, many_run_requests, slow_client
from ._support import crash_requests
from ._workers import PATIENCE, ROOT, ChildRun, finish, reaped, start_run

pytestmark = pytest.mark.many_runs

SIZES = {"another machine": 2000, "this machine": 200}
"""Two-round requests every worker asks for (each makes two calls), by where the dead worker
ran; ``INERT_MANY_WORKERS=N`` asks N in both."""
SHARDS_PER_ROUND = 4
"""Shards a round is cut into (``max_requests_per_batch`` is a quarter of the requests)."""
FROZEN_AT_CREATE = 2
"""The dead worker freezes right after the answer of its second batch create."""
STAGGER = 0.4
"""Seconds between the starts of the later workers."""
LEASE = 1.0
"""Seconds a worker holds its shards without renewing them (renewed every quarter)."""
NETWORK_DELAY = 0.1
"""Seconds each batch input upload and each batch create spends on the slow network."""
SCALE = 0.2
"""The emulator's pace: a batch takes about 0.22 s, plus the time to answer its lines."""


@attrs.frozen
class Truth:
    """What every worker must answer, and the calls that make those answers."""

    answers: list[list[str]]
    keys: frozenset[str]


@pytest.fixture
async def truth(requests: int, client: openai.AsyncOpenAI, emu: Emulator, tmp_path: Path) -> Truth:
    """The answers and call keys of the requests, asked once in batches on a SQLite store
    of their own, then forgotten by the emulator (its answers depend only on the body)."""
    with Store(tmp_path / "truth.sqlite3") as store:
        answers = await batch_runner(client, store).run_all(many_run_requests(requests))
    keys = frozenset(settled_ledger(emu).counts())
    assert 2 * requests == len(keys)
    emu.reset()
    emu.set_time_scale(SCALE)
    return Truth(answers, keys)


@pytest.fixture
def shared_url(postgres_cluster: Cluster) -> str:
    """A database of its own on the test server, reached over TCP with a password."""
    name = f"workers_{uuid.uuid4().hex[:12]}"
    fresh_database(postgres_cluster, name)
    return postgres_cluster.password_url(name)


def worker_options(requests: int, *extra: str) -> list[str]:
    """The child's options every worker shares, then ``extra``."""
    return [
        "--requests",
        str(requests),
        "--max-per-batch",
        str(max(1, requests // SHARDS_PER_ROUND)),
        "--lease",
        str(LEASE),
        "--delay",
        str(NETWORK_DELAY),
        *extra,
    ]


def wait_for_shards(store: Store, child: subprocess.Popen[str]) -> None:
    """Wait until the child has journaled its first shards."""
    deadline = time.monotonic() + PATIENCE
    while not store.shards():
        assert child.poll() is None, f"the first worker ended early:\n{child.communicate()}"
        assert time.monotonic() < deadline, "the first worker never journaled a shard"
        time.sleep(0.02)


def orphans_of(store: Store, pid: int) -> list[ShardRecord]:
    """The pending shards a dead process's runs still hold."""
    shards = store.shards()
    dead = {s.run_id for s in shards if (found := store.run_process(s.run_id)) and found[1] == pid}
    return [s for s in shards if s.owner in dead and s.state in PENDING_STATES]


def inert_cli(emu: Emulator, *args: str) -> subprocess.CompletedProcess[str]:
    """``inert ARGS`` in a process of its own, its API key and base URL on the emulator."""
    return subprocess.run(
        [sys.executable, "-m", "inert", *args],
        cwd=ROOT,
        env={**os.environ, "OPENAI_API_KEY": "sk-test-cli", "OPENAI_BASE_URL": emu.base_url},
        capture_output=True,
        text=True,
        timeout=PATIENCE,
        check=False,
    )


def everything_in(url: str) -> str:
    """Every row of every table of the store, as text."""
    with psycopg.connect(url) as conn:
        tables = [
            str(name)
            for (name,) in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
            )
        ]
        return "\n".join(
            str(row[0])
            for table in tables
            for row in conn.execute(
                sql.SQL("SELECT t::text FROM {} t").format(sql.Identifier(table))
            )
        )


@attrs.frozen
class Takeover:
    """Seconds from the kill until every shard the dead worker held was taken over by a
    survivor, and until every one of them was collected."""

    taken: float
    collected: float


def watch_takeover(store: Store, orphans: list[ShardRecord], killed: float) -> Takeover:
    """Follow the dead worker's shards until each is collected (a figure, never a goal)."""
    taken: float | None = None
    deadline = time.monotonic() + PATIENCE
    while time.monotonic() < deadline:
        now = [store.shard(s.id) for s in orphans]
        if taken is None and all(
            n.owner != s.owner or n.state not in PENDING_STATES
            for n, s in zip(now, orphans, strict=True)
        ):
            taken = time.monotonic() - killed
        if all(n.state not in PENDING_STATES for n in now):
            return Takeover(taken or 0.0, time.monotonic() - killed)
        time.sleep(0.02)
    raise AssertionError("the dead worker's shards were never collected")


@attrs.frozen
class Figures:
    """What one many-workers run measured (printed for docs/many-workers.md)."""

    requests: int
    wall: float
    batches_created: list[int]
    orphans: list[str]
    takeover: Takeover
    batches: int
    billed: int


def say(where: str, figures: Figures) -> None:
    """Print the figures on one line (``pytest -s`` shows it)."""
    print(
        f"\nmany workers, the dead one on {where}: {figures.requests} two-round requests, "
        f"{figures.billed} calls billed (each once), {figures.batches} batches at the server, "
        f"batches created by the survivors: {figures.batches_created}, dead worker's shards "
        f"taken over: {len(figures.orphans)} ({', '.join(figures.orphans)}) "
        f"{figures.takeover.taken:.2f} s after the kill, collected "
        f"{figures.takeover.collected:.2f} s after it, wall {figures.wall:.1f} s"
    )


@pytest.mark.parametrize(
    ("where", "requests"),
    [(where, int(os.environ.get("INERT_MANY_WORKERS", n))) for where, n in SIZES.items()],
)
async def test_four_workers_one_killed_pay_each_call_once(
    where: str, requests: int, truth: Truth, emu: Emulator, shared_url: str, tmp_path: Path
) -> None:
    """Four workers on one PostgreSQL store, the first SIGKILLed after its second batch create:
    the three survivors answer every request, a final resume finds nothing left, every call
    of both rounds is billed once, and the password shows nowhere."""
    marker = tmp_path / "frozen"
    host = ["--host", "worker-0.elsewhere"] if where == "another machine" else []
    freeze = ["--freeze", "create", str(marker), "--nth", str(FROZEN_AT_CREATE)]
    options = worker_options(requests)
    started = time.monotonic()
    with Store(shared_url) as watcher:
        dead = start_run(emu, shared_url, *options, *host, *freeze)
        survivors: list[subprocess.Popen[str]] = []
        with reaped(dead):
            await asyncio.to_thread(wait_for_shards, watcher, dead)
            survivors.append(start_run(emu, shared_url, *options))
            with reaped(*survivors):
                await asyncio.sleep(STAGGER)
                survivors.append(start_run(emu, shared_url, *options))
                await asyncio.to_thread(kill_at_marker, dead, marker)
                killed = time.monotonic()
                orphans = orphans_of(watcher, dead.pid)
                assert orphans, "the dead worker held no shard when it was killed"
                takeover = asyncio.create_task(
                    asyncio.to_thread(watch_takeover, watcher, orphans, killed)
                )
                await asyncio.sleep(STAGGER)
                survivors.append(start_run(emu, shared_url, *options))
                with reaped(*survivors):
                    runs: list[ChildRun] = await asyncio.gather(
                        *(asyncio.to_thread(finish, child) for child in survivors)
                    )
                took = await takeover
        wall = time.monotonic() - started
        resumed = await asyncio.to_thread(
            inert_cli, emu, "batches", "resume", "--store", shared_url, "--poll-interval", "0.05"
        )
        listed = await asyncio.to_thread(inert_cli, emu, "batches", "list", "--store", shared_url)
        journal = everything_in(shared_url)
        still_pending = watcher.shards(states=PENDING_STATES)
    for run in runs:
        assert run.refused is None, run.refused
        assert truth.answers == run.answers
    assert 0 == resumed.returncode, resumed.stderr
    assert "nothing to resume" in resumed.stdout
    assert 0 == listed.returncode, listed.stderr
    assert [] == still_pending
    for text in (resumed.stdout, resumed.stderr, listed.stdout, listed.stderr):
        assert PASSWORD not in text
    for run in runs:
        assert PASSWORD not in run.out + run.err
    assert PASSWORD not in journal
    assert truth.answers[0][0] in journal  # (the dump does hold the store's contents)
    assert_billed_once(emu, truth.keys)
    say(
        where,
        Figures(
            requests=requests,
            wall=wall,
            batches_created=[run.report["batches_created"] for run in runs],
            orphans=[f"{s.state}{' (batch journaled)' if s.batch_id else ''}" for s in orphans],
            takeover=took,
            batches=len(emu.batch_ids()),
            billed=sum(emu.ledger.counts().values()),
        ),
    )


class AheadStore(PostgresStore):
    """The store as a worker sees it whose machine's clock runs an hour ahead of the server's."""

    def _wall_clock(self) -> float:
        return time.time() + 3600.0


async def test_a_worker_whose_clock_runs_ahead_never_takes_a_live_workers_shard(
    client: openai.AsyncOpenAI, emu: Emulator, postgres_url: str
) -> None:
    """Leases are kept by the server's clock: a worker whose machine's clock runs an hour
    ahead, arriving while another worker's batch create is on its way (its 60 s lease live),
    waits for that shard and reads its answers; it submits nothing, each call billed once."""
    expected = [a.words for a in await ImmediateRunner(client).run_all(crash_requests())]
    keys = frozenset(settled_ledger(emu).counts())
    emu.reset()
    network = SlowNetwork(0.0, create_delay=1.0)
    async with slow_client(emu.base_url, network) as owner_client:
        with Store(postgres_url) as here, AheadStore(postgres_url) as ahead:
            owner = batch_runner(owner_client, here, lease=60.0)
            owned = asyncio.create_task(owner.run_all(crash_requests()))
            try:
                await asyncio.wait_for(network.uploaded.wait(), PATIENCE)
                second = batch_runner(client, ahead, lease=60.0)
                later = await asyncio.wait_for(second.run_all(crash_requests()), PATIENCE)
                first = await asyncio.wait_for(owned, PATIENCE)
            finally:
                owned.cancel()
    assert expected == [a.words for a in first] == [a.words for a in later]
    assert 0 == second.report.batches_created
    assert 1 == len(emu.batch_ids())
    assert_billed_once(emu, keys)
