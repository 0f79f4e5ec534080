"""Ctrl-C in ``inert batches resume`` ends with one line: what the store kept, how to go on."""

from __future__ import annotations

import asyncio
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
from tests._terminal import run_on_terminal

from inert import BatchRunner, Store
from inert.emulator import Emulator
from inert.openai import chat

LIVE_ROW = re.compile(r"batch 1 · batch_\w+ +in_progress")


@pytest.fixture
def slow_emulator() -> Iterator[Emulator]:
    """An emulator whose batches stay in progress for several seconds."""
    with Emulator(time_scale=8.0) as emulator:
        yield emulator


def leave_a_batch_running(emulator: Emulator, path: Path) -> None:
    """Start a batch run and stop it once its batch is created: the journal holds it."""

    async def go() -> None:
        with Store(path) as store:
            async with openai.AsyncOpenAI(base_url=emulator.base_url, api_key="k") as client:
                runner = BatchRunner(client, store=store, poll_interval=0.01, progress=False)
                ask = chat(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
                task = asyncio.create_task(runner.run(ask))
                while not store.shards(states=("created",)):  # noqa: ASYNC110 - polling the journal is the point
                    await asyncio.sleep(0.005)
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)

    asyncio.run(go())


def test_ctrl_c_while_resuming_says_what_was_kept(slow_emulator: Emulator, tmp_path: Path) -> None:
    """Interrupted while waiting for a batch: exit 130 and one line naming the store."""
    path = tmp_path / "store.sqlite3"
    leave_a_batch_running(slow_emulator, path)
    command = [
        *(sys.executable, "-m", "inert", "batches", "resume", "--store", str(path)),
        *("--base-url", slow_emulator.base_url, "--poll-interval", "0.05"),
    ]

    session = run_on_terminal(
        command,
        env={"OPENAI_API_KEY": "k"},
        interrupt_when=lambda lines: any(LIVE_ROW.search(line) for line in lines),
    )

    assert 130 == session.status, "\n".join(session.screen)
    assert (
        f"inert: interrupted: 0 answers kept in {path}; run the same command again to resume"
        == session.screen[-1]
    )
    assert not any("Traceback" in line for line in session.screen)
