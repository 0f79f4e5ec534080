"""``Store``: one SQLite file holding paid answers and the batch journal.

Raw response bodies are kept by op key, so both runners share them as a cache and
decoding happens on read: a changed decoder re-decodes a stored answer and never
throws away a paid response. The batch journal records every step of a batch
before (intent) and after (file id, batch id, download) its side effect, so a
process killed at any point can be resumed by a new runner on the same file
without paying twice.

The journal's tables, states and methods live in :mod:`inert._journal`.

Only JSON text and ids are stored: no pickle, never an API key. The file is
created with mode 0600 and uses write-ahead logging.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Final

from inert._journal import (
    ATTACHED_STATES,
    JOURNAL_DDL,
    LOST_STATE,
    PENDING_STATES,
    UNSENT_STATES,
    JournalTables,
    ShardRecord,
    custom_ids_digest,
    migrate_journal,
)
from inert._json import JSON
from inert._op import Op
from inert._runner import usage_of

SCHEMA_VERSION: Final = 2
"""The layout this version of inert writes; older files are migrated, newer ones refused.

1: the first layout; 2: shards carry their token estimate and parent, runs their
cancellation request (see :mod:`inert._journal`).
"""

DEFAULT_PATH: Final = Path(".inert") / "store.sqlite3"
"""Where ``Store()`` keeps its file, relative to the current directory."""

_APPLICATION: Final = "inert"
_SQLITE_HEADER: Final = b"SQLite format 3\x00"

_SCHEMA: Final = (
    """
CREATE TABLE meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE responses (
    key TEXT PRIMARY KEY,
    endpoint TEXT NOT NULL,
    model TEXT,
    response TEXT NOT NULL,
    prompt_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    created_at REAL NOT NULL,
    source TEXT NOT NULL CHECK (source IN ('immediate', 'batch'))
);
"""
    + JOURNAL_DDL
)


class StoreError(RuntimeError):
    """The store file cannot be used (not a store, or written by a newer inert)."""


def _dumps(value: JSON) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


__all__ = [
    "ATTACHED_STATES",
    "DEFAULT_PATH",
    "LOST_STATE",
    "PENDING_STATES",
    "SCHEMA_VERSION",
    "UNSENT_STATES",
    "ShardRecord",
    "Store",
    "StoreError",
    "custom_ids_digest",
]


class Store(JournalTables):
    """One SQLite file: raw responses by op key, the batch journal and usage.

    Args:
        path: the file; ``None`` uses ``.inert/store.sqlite3`` under the current
            directory (the directory is created).

    Raises:
        StoreError: the file is not an inert store (another SQLite database or
            not a database at all), or a newer inert wrote it. Nothing is written
            to such a file.

    One store is meant for one process and one event loop; calls are serialised
    by a lock, and each write is one transaction.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = Path(DEFAULT_PATH if path is None else path).absolute()
        self._lock = threading.RLock()
        if path is None:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._check_header()
        self._conn = self._connect()
        try:
            self._open_schema()
        except BaseException:
            self._conn.close()
            raise

    # --- opening ----------------------------------------------------------------------

    def _check_header(self) -> None:
        path = self.path
        if not path.exists():
            try:
                fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
            except FileExistsError:
                return
            except FileNotFoundError:
                raise StoreError(
                    f"cannot create the store {path}: its directory does not exist; "
                    "create the directory or pass another path"
                ) from None
            os.close(fd)
            return
        if path.is_dir():
            raise StoreError(f"the store path {path} is a directory; pass a file path")
        with path.open("rb") as f:
            head = f.read(len(_SQLITE_HEADER))
        if head and head != _SQLITE_HEADER:
            raise StoreError(
                f"{path} is not an inert store (not a SQLite database); move it away "
                "or pass another path to Store(...)"
            )

    def _connect(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, timeout=30.0
            )
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the store {self.path}: {exc}") from exc
        return conn

    def _open_schema(self) -> None:
        conn = self._conn
        try:
            tables = {
                row[0]
                for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            }
        except sqlite3.DatabaseError as exc:
            raise StoreError(
                f"{self.path} is not an inert store ({exc}); move it away or pass another "
                "path to Store(...)"
            ) from exc
        if not tables:
            conn.execute("PRAGMA journal_mode = WAL")
            self._create_schema()
        else:
            self._check_version(tables)
            conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = ON")
        for suffix in ("-wal", "-shm"):
            side = Path(f"{self.path}{suffix}")
            with contextlib.suppress(FileNotFoundError):
                side.chmod(0o600)

    def _create_schema(self) -> None:
        conn = self._conn
        statements = [s.strip() for s in _SCHEMA.split(";") if s.strip()]
        with self._transaction():
            for statement in statements:
                conn.execute(statement)
            conn.executemany(
                "INSERT INTO meta (key, value) VALUES (?, ?)",
                [("application", _APPLICATION), ("schema_version", str(SCHEMA_VERSION))],
            )

    def _check_version(self, tables: set[str]) -> None:
        meta: dict[str, str] = {}
        if "meta" in tables:
            with contextlib.suppress(sqlite3.DatabaseError):
                meta = dict(self._conn.execute("SELECT key, value FROM meta").fetchall())
        if meta.get("application") != _APPLICATION or "schema_version" not in meta:
            raise StoreError(
                f"{self.path} is a SQLite database but not an inert store; move it away "
                "or pass another path to Store(...)"
            )
        try:
            version = int(meta["schema_version"])
        except ValueError:
            raise StoreError(
                f"{self.path} has an unreadable schema version {meta['schema_version']!r}; "
                "move it away or pass another path to Store(...)"
            ) from None
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path} was written by a newer inert (store schema version {version}; "
                f"this inert reads up to version {SCHEMA_VERSION}); upgrade inert "
                "(pip install -U inert) or pass another path to Store(...)"
            )
        if version < SCHEMA_VERSION:
            self._migrate()

    def _migrate(self) -> None:
        """Bring a store written by an older inert to this layout, in one transaction."""
        with self._transaction() as conn:
            # Read again under the write lock: another process may have migrated it first.
            (text,) = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            version = int(text)
            if version >= SCHEMA_VERSION:
                return
            migrate_journal(conn, version, SCHEMA_VERSION)
            conn.execute(
                "UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION),)
            )

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            conn = self._conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def close(self) -> None:
        """Close the file (the store cannot be used afterwards)."""
        with self._lock:
            self._conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({str(self.path)!r})"

    # --- responses --------------------------------------------------------------------

    def get_responses(self, keys: Sequence[str]) -> Mapping[str, JSON]:
        """The stored raw responses of those ``keys`` that have one (decoded JSON)."""
        found: dict[str, JSON] = {}
        with self._lock:
            for chunk in _chunks(keys, 500):
                marks = ",".join("?" * len(chunk))
                rows = self._conn.execute(
                    f"SELECT key, response FROM responses WHERE key IN ({marks})", chunk
                )
                for key, text in rows:
                    found[key] = json.loads(text)
        return found

    def put_responses(
        self, entries: Sequence[tuple[Op[Any], JSON]], *, source: str = "immediate"
    ) -> None:
        """Store raw responses of ops in one transaction; the first answer of a key stays."""
        rows = [(op.key, op.endpoint, op.model, raw) for op, raw in entries]
        with self._transaction() as conn:
            self._insert_responses(conn, rows, source)

    def _insert_responses(
        self,
        conn: sqlite3.Connection,
        rows: Iterable[tuple[str, str, str | None, JSON]],
        source: str,
    ) -> None:
        now = time.time()
        conn.executemany(
            "INSERT OR IGNORE INTO responses (key, endpoint, model, response, prompt_tokens, "
            "completion_tokens, created_at, source) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (key, endpoint, model, _dumps(raw), *usage_of(raw), now, source)
                for key, endpoint, model, raw in rows
            ],
        )

    def response_count(self) -> int:
        """How many raw responses are stored."""
        with self._lock:
            (count,) = self._conn.execute("SELECT COUNT(*) FROM responses").fetchone()
        return int(count)

    def usage(self) -> tuple[int, int]:
        """``(prompt_tokens, completion_tokens)`` over every stored response."""
        with self._lock:
            row = self._conn.execute(
                "SELECT COALESCE(SUM(prompt_tokens), 0), COALESCE(SUM(completion_tokens), 0) "
                "FROM responses"
            ).fetchone()
        return int(row[0]), int(row[1])


def _chunks(items: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
