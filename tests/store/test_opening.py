"""Opening a store: what the path is, whose file it is, and messages that never invite data loss."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import stat
import subprocess
import sys
import threading
import warnings
from pathlib import Path

import pytest

from inert import Op, Store
from inert._json import JSON
from inert.errors import (
    DamagedStoreError,
    NotAStoreError,
    StoreNotFoundError,
    StorePermissionsWarning,
    StoreReadOnlyError,
)


def mode(path: Path) -> int:
    """The permission bits of a file."""
    return stat.S_IMODE(os.stat(path).st_mode)


def answer_op(i: int) -> Op[JSON]:
    """A small op whose answers the tests store directly."""
    return Op(endpoint="/v1/x", body={"i": i}, decode=lambda raw: raw)


def filled_store(path: Path, n: int = 300) -> list[str]:
    """A store holding ``n`` answers of about 500 bytes; returns their keys."""
    ops = [answer_op(i) for i in range(n)]
    with Store(path) as store:
        store.put_responses([(op, {"text": "x" * 500, "i": i}) for i, op in enumerate(ops)])
    return [op.key for op in ops]


def test_a_dangling_symlink_creates_a_private_target(tmp_path: Path) -> None:
    """A store reached through a symlink to nothing is created at the target, mode 0600."""
    link = tmp_path / "link.sqlite3"
    target = tmp_path / "real" / "store.sqlite3"
    target.parent.mkdir()
    link.symlink_to(target)
    with Store(link) as store:
        store.begin_run("run_x", {})
        assert target == store.path
        assert [0o600] * 2 == [mode(target), mode(Path(f"{target}-wal"))]
    assert link.is_symlink()


def test_side_files_live_beside_the_target_not_the_link(tmp_path: Path) -> None:
    """SQLite's WAL files are made next to the real file, where a second opener finds them."""
    target = tmp_path / "store.sqlite3"
    link = tmp_path / "elsewhere" / "link.sqlite3"
    link.parent.mkdir()
    link.symlink_to(target)
    with Store(link) as store:
        store.begin_run("run_x", {})
        assert Path(f"{target}-wal").exists()
        assert not Path(f"{link}-wal").exists()


def test_a_store_readable_by_others_is_made_private_with_a_warning(store_path: Path) -> None:
    """An existing 0644 store and its WAL file become 0600, and the user is told."""
    with Store(store_path):
        pass
    store_path.chmod(0o644)
    with pytest.warns(StorePermissionsWarning, match="readable by other users") as caught:
        store = Store(store_path)
    with store:
        store.begin_run("run_x", {})
        assert [0o600] * 2 == [mode(store_path), mode(Path(f"{store_path}-wal"))]
    assert "0644 -> 0600" in str(caught[0].message)


def test_making_a_store_private_never_adds_permissions(store_path: Path) -> None:
    """Only group and other bits are taken away: an owner-read-only store stays read-only."""
    with Store(store_path):
        pass
    store_path.chmod(0o444)
    # Root writes through permission bits, so the store opens; anyone else is refused.
    with pytest.warns(StorePermissionsWarning), contextlib.suppress(StoreReadOnlyError):
        Store(store_path).close()
    assert 0o400 == mode(store_path)


def test_a_private_store_opens_without_a_warning(store_path: Path) -> None:
    """A store that is already 0600 opens silently."""
    Store(store_path).close()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Store(store_path).close()


def test_a_missing_store_is_refused_when_not_creating(tmp_path: Path) -> None:
    """``create=False`` names the path and creates nothing there."""
    path = tmp_path / "typo.sqlite3"
    with pytest.raises(StoreNotFoundError, match=r"there is no store at .*typo\.sqlite3"):
        Store(path, create=False)
    assert [] == list(tmp_path.iterdir())


@pytest.mark.parametrize(
    ("make", "says"),
    [
        (lambda p: p.mkdir(), "is a directory"),
        (lambda p: os.mkfifo(p), "is a FIFO"),
    ],
    ids=["directory", "fifo"],
)
def test_a_special_file_is_refused_without_being_read(
    tmp_path: Path, make: object, says: str
) -> None:
    """A directory or FIFO where the store should be is refused at once (no hang)."""
    path = tmp_path / "store.sqlite3"
    assert callable(make)
    make(path)
    result = subprocess.run(
        [sys.executable, "-c", f"from inert import Store; Store({str(path)!r})"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert 0 != result.returncode
    assert "NotAStoreError" in result.stderr
    assert says in result.stderr
    assert [path.name] == [p.name for p in tmp_path.iterdir()]


def test_a_device_is_refused() -> None:
    """A character device is not a store file."""
    with pytest.raises(NotAStoreError, match="is a device"):
        Store("/dev/null")


def test_a_store_cut_short_is_damaged_and_says_how_to_recover(store_path: Path) -> None:
    """A truncated inert store is called damaged (not "not a store") with the recover command."""
    filled_store(store_path)
    data = store_path.read_bytes()
    store_path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DamagedStoreError) as caught:
        Store(store_path)
    message = str(caught.value)
    assert "cut short" in message
    assert f"inert store recover {store_path}" in message
    assert "not an inert store" not in message
    assert len(data) // 2 == store_path.stat().st_size


def test_a_store_whose_pages_are_still_being_written_opens_once_they_are(
    store_path: Path,
) -> None:
    """A file cut short only while its creator writes it is waited for, not called damaged.

    Many processes opening one new store at once: one writes the first pages while
    another looks at the file. Here the rest of the file arrives 0.2 s after the look.
    """
    keys = filled_store(store_path)
    data = store_path.read_bytes()
    half = len(data) // 2
    store_path.write_bytes(data[:half])

    def write_the_rest() -> None:  # as its creator does: the file only grows
        with store_path.open("r+b") as f:
            f.seek(half)
            f.write(data[half:])

    finish = threading.Timer(0.2, write_the_rest)
    finish.start()
    try:
        with Store(store_path) as store:
            assert len(keys) == len(store.get_responses(keys))
    finally:
        finish.join()


def test_garbage_mid_file_is_a_damaged_store_error_not_a_raw_sqlite_error(
    store_path: Path,
) -> None:
    """Overwritten pages in the middle surface as DamagedStoreError on the first read of them."""
    keys = filled_store(store_path)
    size = store_path.stat().st_size
    with store_path.open("r+b") as f:
        f.seek(size // 2 // 4096 * 4096)
        f.write(b"\xde\xad\xbe\xef" * 1024)
    with (
        pytest.raises(DamagedStoreError, match="inert store recover") as caught,
        Store(store_path) as store,
    ):
        store.get_responses(keys)
    assert not isinstance(caught.value, sqlite3.Error)


def test_a_huge_row_number_is_not_found_rather_than_overflowing(store_path: Path) -> None:
    """A journal row number past SQLite's integers is simply not in the journal."""
    with Store(store_path) as store:
        assert store.find_shard("99999999999999999999999") is None
        assert store.find_shard("١٢") is None  # Arabic-Indic digits are no row number
