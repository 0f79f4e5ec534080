"""The ``inert batches`` command: list, show, cancel and resume a store's journal."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import types
from pathlib import Path

import openai
import pytest

from inert import BatchRunner, Store
from inert._cli import main
from inert.emulator import Emulator

from ._support import ask

REQUESTS = [ask(f"cli {i}") for i in range(3)]


def runner_on(emu: Emulator, store: Store) -> tuple[openai.AsyncOpenAI, BatchRunner]:
    """A client and a fast batch runner on the emulator."""
    client = openai.AsyncOpenAI(base_url=emu.base_url, api_key="test")
    return client, BatchRunner(client, store=store, poll_interval=0.01, progress=False)


def finished_run(emu: Emulator, store_path: Path) -> None:
    """Run the requests to the end."""

    async def go() -> None:
        with Store(store_path) as store:
            client, runner = runner_on(emu, store)
            async with client:
                await runner.run_all(REQUESTS)

    asyncio.run(go())


def interrupted_run(emu: Emulator, store_path: Path) -> None:
    """Start the requests and stop the process's work once the batch is created."""

    async def go() -> None:
        with Store(store_path) as store:
            client, runner = runner_on(emu, store)
            async with client:
                task = asyncio.create_task(runner.run_all(REQUESTS))
                while not store.shards(states=("created",)):  # noqa: ASYNC110 - polling the journal is the point
                    await asyncio.sleep(0.005)
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)

    asyncio.run(go())


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> None:
    """An API key in the environment, as the commands that reach the API need."""
    monkeypatch.setenv("OPENAI_API_KEY", "test")


def test_list_shows_each_batch(
    emu: Emulator, store_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`inert batches list` prints one row per journaled batch with its state."""
    finished_run(emu, store_path)
    assert 0 == main(["batches", "--store", str(store_path), "list"])
    out = capsys.readouterr().out
    (batch_id,) = emu.batch_ids()
    assert batch_id in out
    assert "downloaded" in out


def test_show_prints_the_remote_status(
    emu: Emulator, store_path: Path, capsys: pytest.CaptureFixture[str], env: None
) -> None:
    """`inert batches show ID --remote` prints the journal entry and the remote status."""
    finished_run(emu, store_path)
    (batch_id,) = emu.batch_ids()
    argv = ["batches", "--store", str(store_path), "--base-url", emu.base_url]
    assert 0 == main([*argv, "show", batch_id, "--remote"])
    out = capsys.readouterr().out
    assert "remote status" in out
    assert "completed" in out


def test_resume_collects_an_interrupted_run(
    emu: Emulator, store_path: Path, capsys: pytest.CaptureFixture[str], env: None
) -> None:
    """`inert batches resume` stores the answers of a run whose process stopped."""
    emu.set_time_scale(0.3)
    interrupted_run(emu, store_path)
    argv = ["batches", "--store", str(store_path), "--base-url", emu.base_url]
    assert 0 == main([*argv, "resume", "--poll-interval", "0.01"])
    assert "3 answers stored" in capsys.readouterr().out
    with Store(store_path) as store:
        assert 3 == store.response_count()
        assert ["downloaded"] == [r.state for r in store.shards()]


def test_cancel_cancels_unfinished_batches(
    emu: Emulator, store_path: Path, capsys: pytest.CaptureFixture[str], env: None
) -> None:
    """`inert batches cancel` cancels the journal's unfinished batches and marks them."""
    emu.set_time_scale(5.0)
    interrupted_run(emu, store_path)
    argv = ["batches", "--store", str(store_path), "--base-url", emu.base_url]
    assert 0 == main([*argv, "cancel"])
    (batch_id,) = emu.batch_ids()
    assert f"cancelling {batch_id}" in capsys.readouterr().out
    with Store(store_path) as store:
        assert ["cancelling"] == [r.state for r in store.shards()]


def test_a_missing_api_key_is_explained(
    emu: Emulator,
    store_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without OPENAI_API_KEY the command says what to set, and exits with status 2."""
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    finished_run(emu, store_path)
    assert 2 == main(["batches", "--store", str(store_path), "resume"])
    assert "set OPENAI_API_KEY" in capsys.readouterr().err


def test_a_foreign_store_file_is_explained(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A store path that is not a store gives a one-line error and status 2."""
    path = tmp_path / "notes.txt"
    path.write_text("hello")
    assert 2 == main(["batches", "--store", str(path), "list"])
    assert "not an inert store" in capsys.readouterr().err


def test_emulator_and_demo_are_dispatched(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`inert emulator` and `inert demo` hand their arguments to their own entry points."""
    with pytest.raises(SystemExit) as exited:
        main(["emulator", "--help"])
    assert 0 == exited.value.code
    assert "--time-scale" in capsys.readouterr().out
    demo = types.ModuleType("lexicon_demo")
    seen: list[list[str]] = []

    def demo_main(argv: list[str]) -> int:
        seen.append(list(argv))
        return 7

    demo.main = demo_main  # type: ignore[attr-defined]  # pyright: ignore[reportAttributeAccessIssue]  # a stand-in module
    monkeypatch.setitem(sys.modules, "lexicon_demo", demo)
    assert 7 == main(["demo", "--words", "3"])
    assert [["--words", "3"]] == seen


def test_python_dash_m_inert_runs_the_command() -> None:
    """`python -m inert --help` lists the subcommands."""
    done = subprocess.run(
        [sys.executable, "-m", "inert", "--help"], capture_output=True, text=True, check=True
    )
    assert "batches" in done.stdout
