"""Many processes on one store: a fresh store opens for all of them, a held lock says who holds it."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from inert import Op, Store
from inert.errors import StoreBusyError

CHILD = Path(__file__).with_name("_open_child.py")


def run_children(go: Path, count: int, answers: int, stores: list[Path]) -> list[str]:
    """Run ``count`` children that open ``stores`` once ``go`` exists; their exit lines."""
    children = [
        subprocess.Popen(
            [sys.executable, str(CHILD), str(go), f"child{i}", str(answers), *map(str, stores)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(count)
    ]
    go.touch()
    results = []
    for child in children:
        out, err = child.communicate(timeout=300)
        results.append(f"{child.returncode} {out.strip()} {err.strip()}".strip())
    return results


def test_a_fresh_store_opened_by_many_processes_at_once_never_fails(tmp_path: Path) -> None:
    """Four processes create the same new stores at the same moments; each opens each and writes."""
    stores = [tmp_path / f"fresh{i}.sqlite3" for i in range(8)]
    assert ["0 ok"] * 4 == run_children(tmp_path / "go", 4, answers=1, stores=stores)
    for path in stores:
        with Store(path) as store:
            assert 4 == store.response_count()


def test_processes_writing_at_once_all_get_their_answers_in(tmp_path: Path) -> None:
    """Two processes each write 50 answers in separate transactions; none is refused."""
    store_path = tmp_path / "shared.sqlite3"
    Store(store_path).close()
    assert ["0 ok"] * 2 == run_children(tmp_path / "go", 2, answers=50, stores=[store_path])
    with Store(store_path) as store:
        assert 100 == store.response_count()


HOLD = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN IMMEDIATE")
conn.execute("UPDATE meta SET value = value")
print("holding", flush=True)
sys.stdin.read()
"""


@pytest.fixture
def held_store(store_path: Path) -> Iterator[tuple[Path, subprocess.Popen[str]]]:
    """A store whose write lock another process holds until the test ends."""
    Store(store_path).close()
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(store_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None
    assert "holding\n" == holder.stdout.readline()
    yield store_path, holder
    holder.communicate("")


def test_a_store_another_process_holds_is_busy_and_names_it(
    held_store: tuple[Path, subprocess.Popen[str]],
) -> None:
    """Opening waits up to busy_timeout, then says which process holds the lock."""
    store_path, holder = held_store
    with pytest.raises(StoreBusyError) as caught:
        Store(store_path, busy_timeout=0.2)
    assert holder.pid == caught.value.pid
    assert f"process {holder.pid}" in str(caught.value)
    assert "nothing was lost" in str(caught.value)


def test_a_write_blocked_by_another_process_is_a_busy_error(store_path: Path) -> None:
    """A write that cannot get the lock in time raises StoreBusyError, never a raw sqlite3 error."""
    with Store(store_path, busy_timeout=0.2) as store:
        holder = subprocess.Popen(
            [sys.executable, "-c", HOLD, str(store_path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert holder.stdout is not None
        try:
            assert "holding\n" == holder.stdout.readline()
            op: Op[object] = Op(endpoint="/v1/x", body={"a": 1}, decode=lambda raw: raw)
            with pytest.raises(StoreBusyError, match=f"process {holder.pid}"):
                store.put_responses([(op, {"a": 1})])
        finally:
            holder.communicate("")
        store.put_responses([(op, {"a": 1})])
        assert 1 == store.response_count()
