"""A store that cannot be written is found out at open, before anything is paid for."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path

import openai
import pytest
from tests.billing import settled_ledger

from inert import ImmediateRunner, Store
from inert.emulator import Emulator
from inert.errors import StoreReadOnlyError

from ._support import ask, read_only, remount, small_filesystem

REQUESTS = [ask(i, " read-only") for i in range(20)]


def existing_store(path: Path) -> None:
    """A store that already holds one answer and was closed cleanly (no side files)."""
    with Store(path) as store:
        store.begin_run("run_x", {})


@contextlib.contextmanager
def read_only_file(tmp_path: Path) -> Iterator[Path]:
    """An inert store whose file cannot be written."""
    path = tmp_path / "store.sqlite3"
    existing_store(path)
    with read_only(path):
        yield path


@contextlib.contextmanager
def read_only_directory(tmp_path: Path) -> Iterator[Path]:
    """An inert store in a directory where SQLite cannot create its WAL files."""
    folder = tmp_path / "kept"
    folder.mkdir()
    path = folder / "store.sqlite3"
    existing_store(path)
    with read_only(folder):
        yield path


@contextlib.contextmanager
def new_store_in_read_only_directory(tmp_path: Path) -> Iterator[Path]:
    """A path for a new store in a directory that cannot be written."""
    folder = tmp_path / "kept"
    folder.mkdir()
    with read_only(folder):
        yield folder / "store.sqlite3"


@contextlib.contextmanager
def read_only_filesystem(tmp_path: Path) -> Iterator[Path]:
    """An inert store on a filesystem mounted read-only."""
    with small_filesystem(tmp_path, "4m") as mount_point:
        path = mount_point / "store.sqlite3"
        existing_store(path)
        remount(mount_point, "ro")
        yield path


CASES: dict[str, tuple[Callable[[Path], contextlib.AbstractContextManager[Path]], str]] = {
    "read-only file": (read_only_file, "the file is read-only"),
    "read-only directory": (read_only_directory, "does not let inert create the files"),
    "new store, read-only directory": (new_store_in_read_only_directory, "does not let inert"),
    "read-only filesystem": (read_only_filesystem, "mounted read-only"),
}


@pytest.mark.parametrize("case", list(CASES))
async def test_a_store_that_cannot_be_written_is_refused_before_anything_is_sent(
    case: str, tmp_path: Path, client: openai.AsyncOpenAI, emu: Emulator
) -> None:
    """Opening raises StoreReadOnlyError saying which part refuses; nothing is billed or changed."""
    make, says = CASES[case]
    with make(tmp_path) as path:
        before = path.read_bytes() if path.exists() else None
        with pytest.raises(StoreReadOnlyError) as caught, Store(path) as store:
            await ImmediateRunner(client, store=store, progress=False).run_all(REQUESTS)
        assert before == (path.read_bytes() if path.exists() else None)
    message = str(caught.value)
    assert says in message
    assert "nothing was sent" in message
    assert "not an inert store" not in message
    assert 0 == settled_ledger(emu).total_billed()
