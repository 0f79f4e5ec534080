"""Crash safety: a process killed with SIGKILL at any step is resumed without paying twice."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import openai
import pytest
from tests.billing import settled_ledger

from inert import BatchRunner, ImmediateRunner, Store
from inert.emulator import Emulator
from inert.testing import op_of

from ._crash import kill_at_marker
from ._support import Words, crash_requests

CHILD = Path(__file__).with_name("_crash_child.py")
ROOT = Path(__file__).resolve().parents[2]


def start_child(emu: Emulator, store_path: Path, marker: Path, point: str) -> subprocess.Popen[str]:
    """Start the child process that runs a batch round and freezes at ``point``."""
    return subprocess.Popen(
        [sys.executable, str(CHILD), emu.base_url, str(store_path), str(marker), point],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.fixture
async def expected(client: openai.AsyncOpenAI, emu: Emulator) -> list[Words]:
    """The correct answers (the emulator's answers depend only on the request body)."""
    answers = await ImmediateRunner(client).run_all(crash_requests())
    emu.reset()
    return answers


@pytest.mark.parametrize("point", ["upload", "create", "poll", "download"])
async def test_killed_run_resumes_and_pays_once(
    point: str,
    expected: list[Words],
    client: openai.AsyncOpenAI,
    emu: Emulator,
    tmp_path: Path,
) -> None:
    """Killed after upload, after create, mid-poll or mid-download, a rerun gets every answer once."""
    emu.set_time_scale(0.5)
    store_path = tmp_path / "crash.sqlite3"
    marker = tmp_path / "marker"
    kill_at_marker(start_child(emu, store_path, marker, point), marker)
    with Store(store_path) as store:
        rerun = BatchRunner(client, store=store, poll_interval=0.02, progress=False)
        assert expected == await rerun.run_all(crash_requests())
        keys = {op_of(r).key for r in crash_requests()}
        assert dict.fromkeys(keys, 1) == settled_ledger(emu).counts()
        if point != "upload":
            assert 0 == rerun.report.batches_created
            assert 1 == len(emu.batch_ids())
