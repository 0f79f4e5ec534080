"""Copy what can still be read from a damaged store into a new one.

A store holds answers that were paid for, so a damaged file is never thrown away:
``inert store recover DAMAGED NEW`` reads a private copy of it (the damaged file
and its WAL are only read) table by table, in row-id order, stepping over the
parts SQLite cannot read, and writes every readable row into a fresh store.
Answers, the batch journal (so batches still running can be collected) and
anomalies all come across; a row that cannot be read is counted, never guessed.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import attrs

from inert._store import Store
from inert._store_errors import StoreError, StoreNotFoundError
from inert._store_file import locate

_ROWID_TABLES: Final = ("runs", "shards", "anomalies", "responses")
"""Tables read in row-id order (``shard_lines`` is read per shard)."""
_CHUNK: Final = 256
_KEY: Final = re.compile(r"[0-9a-f]{64}")
_FAR: Final = 1 << 62


@attrs.frozen
class Recovery:
    """What ``recover`` copied: rows per table, and the places it could not read.

    Attributes:
        tables: ``(table, rows copied, damaged places skipped)`` for each table.
        answers: stored answers now in ``destination``.
    """

    destination: Path
    tables: tuple[tuple[str, int, int], ...]
    answers: int

    @property
    def unreadable(self) -> int:
        """Damaged places skipped over all tables."""
        return sum(lost for _, _, lost in self.tables)


def _columns(conn: sqlite3.Connection, table: str) -> list[str]:
    return [str(row[1]) for row in conn.execute(f"PRAGMA table_info({table})")]


def _readable_rows(
    conn: sqlite3.Connection, table: str, columns: list[str]
) -> Iterator[tuple[object, ...] | None]:
    """Rows of ``table`` in row-id order; ``None`` marks a damaged place that was skipped.

    A chunk that cannot be read is read again row by row; a row that cannot be
    reached is stepped over by seeking further ahead (doubling, then halving back
    to the first row id that can be read again), so one damaged page costs only
    the rows on it. inert's tables have positive row ids.
    """
    names = ", ".join(columns)
    chunk = f"SELECT rowid, {names} FROM {table} WHERE rowid > ? ORDER BY rowid LIMIT {_CHUNK}"
    single = f"SELECT rowid, {names} FROM {table} WHERE rowid > ? ORDER BY rowid LIMIT 1"
    last = 0
    while True:
        try:
            rows = conn.execute(chunk, (last,)).fetchall()
        except sqlite3.DatabaseError:
            try:
                rows = conn.execute(single, (last,)).fetchall()
            except sqlite3.DatabaseError:
                yield None
                skipped = _skip(conn, single, last)
                if skipped is None:
                    return
                last = skipped
                continue
        if not rows:
            return
        for row in rows:
            rowid = row[0]
            if not isinstance(rowid, int) or rowid <= last:  # a damaged page read as rows
                yield None
                skipped = _skip(conn, single, last)
                if skipped is None:
                    return
                last = skipped
                break
            yield tuple(row[1:])
            last = rowid


def _readable_from(conn: sqlite3.Connection, single: str, after: int) -> bool:
    try:
        rows = conn.execute(single, (after,)).fetchall()
    except sqlite3.DatabaseError:
        return False
    return not rows or (isinstance(rows[0][0], int) and rows[0][0] > after)


def _skip(conn: sqlite3.Connection, single: str, last: int) -> int | None:
    """The smallest ``after > last`` from which ``single`` reads again (``None``: never)."""
    step = 1
    while not _readable_from(conn, single, last + step):
        step *= 2
        if step > _FAR:
            return None
    low, high = (
        last + step // 2,
        last + step,
    )  # unreadable from low (or low == last), readable from high
    while high - low > 1:
        middle = (low + high) // 2
        if _readable_from(conn, single, middle):
            high = middle
        else:
            low = middle
    return high


def _sound_answer(row: dict[str, object]) -> bool:
    """A ``responses`` row read from a damaged page can be junk: keep only a sound one."""
    key, text = row.get("key"), row.get("response")
    if not (isinstance(key, str) and _KEY.fullmatch(key) and isinstance(text, str)):
        return False
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def _copy_into(
    target: sqlite3.Connection,
    table: str,
    rows: Iterator[tuple[object, ...] | None],
    columns: list[str],
) -> tuple[int, int]:
    insert = (
        f"INSERT OR IGNORE INTO {table} ({', '.join(columns)}) "
        f"VALUES ({', '.join('?' * len(columns))})"
    )
    copied = lost = 0
    batch: list[tuple[object, ...]] = []
    for row in rows:
        if row is None or (
            table == "responses" and not _sound_answer(dict(zip(columns, row, strict=True)))
        ):
            lost += 1
            continue
        batch.append(row)
        if len(batch) >= _CHUNK:
            copied += len(batch)
            target.executemany(insert, batch)
            batch = []
    if batch:
        copied += len(batch)
        target.executemany(insert, batch)
    return copied, lost


def _shard_lines(
    source: sqlite3.Connection, shard_ids: list[int]
) -> Iterator[tuple[object, ...] | None]:
    for shard_id in shard_ids:
        try:
            rows = source.execute(
                "SELECT shard_id, custom_id FROM shard_lines WHERE shard_id = ?", (shard_id,)
            ).fetchall()
        except sqlite3.DatabaseError:
            yield None
            continue
        yield from (tuple(row) for row in rows)


def _pad_to_header_size(copy: Path) -> None:
    """Extend a copy cut short with zeros to the size its header records.

    SQLite refuses every read of a file shorter than its header says; padded, the
    pages that are there read as before and only the missing ones are damaged.
    """
    with copy.open("r+b") as f:
        head = f.read(100)
        if len(head) < 100 or head[92:96] != head[24:28]:
            return
        page_size = int.from_bytes(head[16:18], "big")
        page_size = 65536 if page_size == 1 else page_size
        expected = int.from_bytes(head[28:32], "big") * page_size
        size = f.seek(0, 2)
        if size < expected:
            f.truncate(expected)


def recover(damaged: Path, new: Path) -> Recovery:
    """Copy every readable row of the store at ``damaged`` into a new store at ``new``.

    Raises:
        StoreNotFoundError: nothing at ``damaged``.
        StoreError: ``new`` already exists (recovery writes only into a new file), or
            not even the list of tables of ``damaged`` can be read.
    """
    source_path = locate(damaged)
    target_path = locate(new)
    if not source_path.is_file():
        raise StoreNotFoundError(f"there is no store file at {source_path}", path=source_path)
    if target_path.exists():
        raise StoreError(
            f"{target_path} already exists; recover writes only into a new file: "
            "pass a path where there is nothing yet",
            path=target_path,
        )
    with tempfile.TemporaryDirectory(prefix="inert-recover-") as scratch:
        copy = Path(scratch) / "damaged.sqlite3"
        shutil.copyfile(source_path, copy)
        _pad_to_header_size(copy)
        wal = Path(f"{source_path}-wal")
        if wal.is_file():
            shutil.copyfile(wal, Path(f"{copy}-wal"))
        source = sqlite3.connect(copy, isolation_level=None)
        try:
            try:
                present = {
                    str(row[0])
                    for row in source.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
                }
            except sqlite3.DatabaseError as exc:
                raise StoreError(
                    f"not even the list of tables of {source_path} can be read ({exc}); the "
                    f"sqlite3 tool may read more: `sqlite3 {source_path} .recover > "
                    "recovered.sql`",
                    path=source_path,
                ) from None
            return _recover_tables(source, present, target_path)
        finally:
            source.close()


def _recover_tables(source: sqlite3.Connection, present: set[str], target_path: Path) -> Recovery:
    tables: list[tuple[str, int, int]] = []
    with Store(target_path) as store:
        target = store._sqlite  # the new store's own connection: one process, one file
        target.execute("PRAGMA foreign_keys = OFF")  # a shard row may be lost, not its lines
        target.execute("BEGIN IMMEDIATE")
        try:
            for table in _ROWID_TABLES:
                if table not in present:
                    continue
                try:
                    wanted = set(_columns(source, table))
                except sqlite3.DatabaseError:
                    wanted = set()
                columns = [c for c in _columns(target, table) if not wanted or c in wanted]
                copied, lost = _copy_into(
                    target, table, _readable_rows(source, table, columns), columns
                )
                tables.append((table, copied, lost))
            if "shard_lines" in present:
                shard_ids = [int(row[0]) for row in target.execute("SELECT id FROM shards")]
                copied, lost = _copy_into(
                    target,
                    "shard_lines",
                    _shard_lines(source, shard_ids),
                    ["shard_id", "custom_id"],
                )
                tables.append(("shard_lines", copied, lost))
            target.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(StoreError):
                target.execute("ROLLBACK")
            raise
        target.execute("PRAGMA foreign_keys = ON")
        answers = store.response_count()
    return Recovery(destination=target_path, tables=tuple(tables), answers=answers)
