"""Security: the API key is never written anywhere, and what is written is private (0600)."""

from __future__ import annotations

import logging
import os
import stat
import tempfile
from collections import Counter
from pathlib import Path

import openai
import pytest

from inert import BatchRunner, ImmediateRunner, Store
from inert.emulator import Emulator, Faults

from ._support import word_request

SECRET = "sk-proj-SECRET-7f3a9c1e5b2d4f6a8c0e"
"""A key distinctive enough that any copy of it is found by a byte scan."""


def files_under(*folders: Path) -> list[Path]:
    """Every regular file below the folders."""
    return [p for folder in folders for p in folder.rglob("*") if p.is_file()]


def scan(*folders: Path) -> dict[str, int]:
    """Each file below the folders, with how many times it holds the key."""
    key = SECRET.encode()
    return {str(p): p.read_bytes().count(key) for p in files_under(*folders)}


@pytest.fixture
def private_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A temporary directory that ``tempfile`` uses for the length of the test."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setenv("TMPDIR", str(folder))
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


async def test_the_api_key_is_in_no_store_journal_log_or_temp_file(
    emu: Emulator,
    tmp_path: Path,
    private_tmp: Path,
    caplog: pytest.LogCaptureFixture,
    tally: Counter[str],
) -> None:
    """After immediate and batch runs (with retries and resubmissions) no file or log holds the key."""
    caplog.set_level(logging.DEBUG)
    emu.set_faults(Faults(rate_limit=0.2, line_expired=0.3))
    store_dir = tmp_path / "store"
    store_dir.mkdir()
    async with openai.AsyncOpenAI(base_url=emu.base_url, api_key=SECRET) as client:
        with Store(store_dir / "store.sqlite3") as store:
            immediate = ImmediateRunner(client, store=store, backoff_base=0.001, backoff_max=0.01)
            await immediate.run_all([word_request(i, salt=" now") for i in range(20)])
            # 30% of lines expire at each submission: the default resubmission policy
            # (while attempts make progress) answers them all.
            batch = BatchRunner(
                client,
                store=store,
                poll_interval=0.01,
                poll_interval_max=0.05,
                progress=False,
            )
            await batch.run_all([word_request(i, salt=" later") for i in range(20)])
            assert store.response_count() == 40
            while_open = scan(store_dir, private_tmp)  # the WAL files exist while open
    after_close = scan(store_dir, private_tmp)
    tally["files_scanned"] += len(while_open) + len(after_close)
    assert len(while_open) >= 3, "the store, its WAL and shared-memory files"
    assert {} == {name: n for name, n in (while_open | after_close).items() if n}
    assert caplog.records, "nothing was logged at DEBUG"
    assert [] == [r.getMessage()[:80] for r in caplog.records if SECRET in r.getMessage()]
    assert SECRET not in caplog.text


def test_store_files_are_created_private(tmp_path: Path, private_tmp: Path) -> None:
    """The store and its side files are created 0600 even under a permissive umask."""
    old = os.umask(0o022)
    try:
        path = tmp_path / "store.sqlite3"
        with Store(path) as store:
            store.begin_run("run_security", {})
            sides = [Path(f"{path}{s}") for s in ("", "-wal", "-shm")]
            modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in sides if p.exists()}
    finally:
        os.umask(old)
    assert path.name in modes
    assert dict.fromkeys(modes, 384) == modes
    leftovers = files_under(private_tmp)
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in leftovers)
