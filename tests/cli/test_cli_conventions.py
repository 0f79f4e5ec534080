"""The ``inert`` command's conventions: options before or after the action, ``--version``."""

from __future__ import annotations

import asyncio
import importlib.metadata
from pathlib import Path

import openai
import pytest

from inert import BatchRunner, Store
from inert._cli import main
from inert.emulator import Emulator
from inert.openai import chat


@pytest.fixture(scope="module")
def journaled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store whose journal holds one finished batch."""
    path = tmp_path_factory.mktemp("cli") / "store.sqlite3"

    async def run() -> None:
        with Emulator(time_scale=0.01) as emulator, Store(path) as store:
            async with openai.AsyncOpenAI(base_url=emulator.base_url, api_key="k") as client:
                runner = BatchRunner(client, store=store, poll_interval=0.01, progress=False)
                await runner.run(
                    chat(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
                )

    asyncio.run(run())
    return path


@pytest.mark.parametrize(
    "argv",
    [["batches", "--store", "{store}", "list"], ["batches", "list", "--store", "{store}"]],
    ids=["before the action", "after the action"],
)
def test_store_option_is_accepted_before_or_after_the_action(
    argv: list[str], journaled: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``inert batches list --store X`` lists the same journal as ``inert batches --store X list``."""
    code = main([a.format(store=journaled) for a in argv])

    out = capsys.readouterr().out
    assert 0 == code
    assert out.startswith("ROW")
    assert "batch_" in out


def test_an_option_after_the_action_wins_over_one_before_it(
    journaled: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Given twice, the later ``--store`` is the one used (as a shell user expects)."""
    code = main(
        ["batches", "--store", str(tmp_path / "other.sqlite3"), "list", "--store", str(journaled)]
    )

    assert 0 == code
    assert "batch_" in capsys.readouterr().out


def test_version_names_the_installed_version(capsys: pytest.CaptureFixture[str]) -> None:
    """``inert --version`` prints the package's version and exits 0."""
    with pytest.raises(SystemExit) as exited:
        main(["--version"])

    assert 0 == exited.value.code
    assert f"inert {importlib.metadata.version('inert')}\n" == capsys.readouterr().out
