"""``Store``: one SQLite file holding paid answers and the batch journal.

Raw response bodies are kept by op key, so both runners share them as a cache and
decoding happens on read: a changed decoder re-decodes a stored answer and never
throws away a paid response. The batch journal records every step of a batch
before (intent) and after (file id, batch id, download) its side effect, so a
process killed at any point can be resumed by a new runner on the same file
without paying twice.

Journal states of a shard (one Batch API job)::

    intended ──upload──▶ uploaded ──create──▶ created ──download──▶ downloaded
        │                    │                   │ cancel()             ▲
        └──── abandoned ◀────┘ (no remote batch) └──▶ cancelling ───────┘
    created/uploaded ──▶ failed   (the batch or its input file was rejected)

Only JSON text and ids are stored: no pickle, never an API key. The file is
created with mode 0600 and uses write-ahead logging.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sqlite3
import threading
import time
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Final

import attrs

from inert._gc import paused_gc
from inert._json import JSON
from inert._op import Op
from inert._runner import usage_of

SCHEMA_VERSION: Final = 1
"""The journal layout this version of inert writes; newer files are refused."""

DEFAULT_PATH: Final = Path(".inert") / "store.sqlite3"
"""Where ``Store()`` keeps its file, relative to the current directory."""

_APPLICATION: Final = "inert"
_SQLITE_HEADER: Final = b"SQLite format 3\x00"

PENDING_STATES: Final = ("intended", "uploaded", "created", "cancelling")
"""Shards whose answers have not been collected yet (a resume looks at these)."""
UNSENT_STATES: Final = ("intended", "uploaded")
"""Shards whose batch id is not journaled: the batch may or may not exist remotely."""
ATTACHED_STATES: Final = ("created", "cancelling")
"""Shards with a remote batch whose output has not been downloaded."""

_SCHEMA: Final = """
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
CREATE TABLE runs (
    id TEXT PRIMARY KEY,
    created_at REAL NOT NULL,
    metadata TEXT NOT NULL
);
CREATE TABLE shards (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT NOT NULL REFERENCES runs(id),
    shard INTEGER NOT NULL,
    attempt INTEGER NOT NULL,
    endpoint TEXT NOT NULL,
    model TEXT,
    digest TEXT NOT NULL,
    size INTEGER NOT NULL,
    state TEXT NOT NULL,
    input_file_id TEXT,
    batch_id TEXT UNIQUE,
    remote_status TEXT,
    output_file_id TEXT,
    error_file_id TEXT,
    completed INTEGER NOT NULL DEFAULT 0,
    failed INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    UNIQUE (run_id, shard)
);
CREATE INDEX shards_state ON shards(state);
CREATE TABLE shard_lines (
    shard_id INTEGER NOT NULL REFERENCES shards(id),
    custom_id TEXT NOT NULL,
    PRIMARY KEY (shard_id, custom_id)
) WITHOUT ROWID;
CREATE INDEX shard_lines_custom_id ON shard_lines(custom_id);
CREATE TABLE anomalies (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    shard_id INTEGER NOT NULL REFERENCES shards(id),
    custom_id TEXT,
    detail TEXT NOT NULL,
    created_at REAL NOT NULL
);
"""


class StoreError(RuntimeError):
    """The store file cannot be used (not a store, or written by a newer inert)."""


StoreError.__module__ = "inert.errors"  # tracebacks name its public home


@attrs.frozen
class ShardRecord:
    """One journaled Batch API job: which lines it carries and how far it got."""

    id: int
    run_id: str
    shard: int
    attempt: int
    endpoint: str
    model: str | None
    digest: str
    size: int
    state: str
    input_file_id: str | None
    batch_id: str | None
    remote_status: str | None
    output_file_id: str | None
    error_file_id: str | None
    completed: int
    failed: int
    error: str | None
    created_at: float
    updated_at: float


_SHARD_COLUMNS: Final = ", ".join(f.name for f in attrs.fields(ShardRecord))


def custom_ids_digest(custom_ids: Iterable[str]) -> str:
    """sha256 of the sorted custom ids: names a shard's content across processes."""
    return hashlib.sha256("\n".join(sorted(custom_ids)).encode("utf-8")).hexdigest()


def _dumps(value: JSON) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


class Store:
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

    # --- the batch journal ------------------------------------------------------------

    def begin_run(self, run_id: str, metadata: Mapping[str, str]) -> None:
        """Journal a run (one ``run_all`` of a batch runner)."""
        with self._transaction() as conn:
            conn.execute(
                "INSERT OR IGNORE INTO runs (id, created_at, metadata) VALUES (?, ?, ?)",
                (run_id, time.time(), _dumps(dict(metadata))),
            )

    def next_shard_index(self, run_id: str) -> int:
        """The next free shard number of a run."""
        with self._lock:
            (top,) = self._conn.execute(
                "SELECT MAX(shard) FROM shards WHERE run_id = ?", (run_id,)
            ).fetchone()
        return 0 if top is None else int(top) + 1

    def intend_shard(
        self,
        *,
        run_id: str,
        shard: int,
        attempt: int,
        endpoint: str,
        model: str | None,
        custom_ids: Sequence[str],
    ) -> ShardRecord:
        """Journal the intent to submit these lines, before anything is uploaded."""
        now = time.time()
        digest = custom_ids_digest(custom_ids)
        with self._transaction() as conn:
            cursor = conn.execute(
                "INSERT INTO shards (run_id, shard, attempt, endpoint, model, digest, size, "
                "state, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, 'intended', ?, ?)",
                (run_id, shard, attempt, endpoint, model, digest, len(custom_ids), now, now),
            )
            shard_id = cursor.lastrowid
            assert shard_id is not None
            conn.executemany(
                "INSERT INTO shard_lines (shard_id, custom_id) VALUES (?, ?)",
                [(shard_id, cid) for cid in custom_ids],
            )
        return self.shard(shard_id)

    def _update(
        self, shard_id: int, *, only_from: Collection[str] | None = None, **values: object
    ) -> ShardRecord:
        values["updated_at"] = time.time()
        sets = ", ".join(f"{name} = ?" for name in values)
        params: list[object] = [*values.values(), shard_id]
        condition = ""
        if only_from is not None:
            condition = f" AND state IN ({','.join('?' * len(only_from))})"
            params.extend(only_from)
        with self._transaction() as conn:
            conn.execute(f"UPDATE shards SET {sets} WHERE id = ?{condition}", params)
        return self.shard(shard_id)

    def mark_uploaded(self, shard_id: int, input_file_id: str) -> ShardRecord:
        """Journal the uploaded input file of a shard."""
        return self._update(shard_id, state="uploaded", input_file_id=input_file_id)

    def mark_created(self, shard_id: int, batch_id: str, remote_status: str) -> ShardRecord:
        """Journal the remote batch id of a shard."""
        return self._update(
            shard_id, state="created", batch_id=batch_id, remote_status=remote_status
        )

    def mark_remote(
        self, shard_id: int, remote_status: str, completed: int, failed: int
    ) -> ShardRecord:
        """Record the latest status and request counts seen for a shard's batch."""
        return self._update(
            shard_id, remote_status=remote_status, completed=completed, failed=failed
        )

    def mark_state(
        self,
        shard_id: int,
        state: str,
        error: str | None = None,
        *,
        only_from: Collection[str] | None = None,
    ) -> ShardRecord:
        """Move a shard to ``state`` (``failed``, ``abandoned``, ``cancelling``...).

        With ``only_from``, only a shard now in one of those states moves, so a
        shard finished meanwhile by another task is never moved back.
        """
        if error is None:
            return self._update(shard_id, only_from=only_from, state=state)
        return self._update(shard_id, only_from=only_from, state=state, error=error)

    def finish_shard(
        self,
        shard: ShardRecord,
        *,
        state: str,
        remote_status: str,
        answers: Sequence[tuple[str, JSON]],
        completed: int,
        failed: int,
        output_file_id: str | None,
        error_file_id: str | None,
        anomalies: Sequence[tuple[str | None, str]] = (),
        error: str | None = None,
    ) -> ShardRecord:
        """Store a shard's answers and close its journal entry in ONE transaction.

        Either both happen or neither does, so a crash can never leave a shard
        marked downloaded without its answers.
        """
        now = time.time()
        with paused_gc(), self._transaction() as conn:
            self._insert_responses(
                conn, ((key, shard.endpoint, shard.model, raw) for key, raw in answers), "batch"
            )
            conn.executemany(
                "INSERT INTO anomalies (shard_id, custom_id, detail, created_at) "
                "VALUES (?, ?, ?, ?)",
                [(shard.id, cid, detail, now) for cid, detail in anomalies],
            )
            conn.execute(
                "UPDATE shards SET state = ?, remote_status = ?, completed = ?, failed = ?, "
                "output_file_id = ?, error_file_id = ?, error = COALESCE(?, error), "
                "updated_at = ? WHERE id = ?",
                (
                    state,
                    remote_status,
                    completed,
                    failed,
                    output_file_id,
                    error_file_id,
                    error,
                    now,
                    shard.id,
                ),
            )
        return self.shard(shard.id)

    def shard(self, shard_id: int) -> ShardRecord:
        """The journal entry with this row id."""
        with self._lock:
            row = self._conn.execute(
                f"SELECT {_SHARD_COLUMNS} FROM shards WHERE id = ?", (shard_id,)
            ).fetchone()
        if row is None:
            raise KeyError(f"no shard {shard_id} in the journal of {self.path}")
        return ShardRecord(*row)

    def find_shard(self, ident: str) -> ShardRecord | None:
        """The entry for a batch id, or for a journal row id given as digits."""
        with self._lock:
            row = self._conn.execute(
                f"SELECT {_SHARD_COLUMNS} FROM shards WHERE batch_id = ?", (ident,)
            ).fetchone()
        if row is not None:
            return ShardRecord(*row)
        if ident.isdigit():
            with contextlib.suppress(KeyError):
                return self.shard(int(ident))
        return None

    def shards(
        self, *, run_id: str | None = None, states: Collection[str] | None = None
    ) -> list[ShardRecord]:
        """Journal entries, oldest first, optionally of one run and in some states."""
        where: list[str] = []
        params: list[object] = []
        if run_id is not None:
            where.append("run_id = ?")
            params.append(run_id)
        if states is not None:
            where.append(f"state IN ({','.join('?' * len(states))})")
            params.extend(states)
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        with self._lock:
            rows = self._conn.execute(
                f"SELECT {_SHARD_COLUMNS} FROM shards{clause} ORDER BY id", params
            ).fetchall()
        return [ShardRecord(*row) for row in rows]

    def pending_shards_for(self, custom_ids: Iterable[str]) -> list[ShardRecord]:
        """Pending shards (not yet collected) that carry any of ``custom_ids``, oldest first."""
        marks = ",".join("?" * len(PENDING_STATES))
        with self._lock:
            conn = self._conn
            conn.execute("CREATE TEMP TABLE IF NOT EXISTS wanted (custom_id TEXT PRIMARY KEY)")
            conn.execute("DELETE FROM temp.wanted")
            conn.executemany(
                "INSERT OR IGNORE INTO temp.wanted (custom_id) VALUES (?)",
                ((cid,) for cid in custom_ids),
            )
            rows = conn.execute(
                f"SELECT {_SHARD_COLUMNS} FROM shards WHERE state IN ({marks}) AND id IN "
                "(SELECT shard_id FROM shard_lines JOIN temp.wanted USING (custom_id)) "
                "ORDER BY id",
                PENDING_STATES,
            ).fetchall()
            conn.execute("DELETE FROM temp.wanted")
        return [ShardRecord(*row) for row in rows]

    def shard_custom_ids(self, shard_id: int) -> list[str]:
        """The custom ids (op keys) of a shard's lines."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT custom_id FROM shard_lines WHERE shard_id = ?", (shard_id,)
            ).fetchall()
        return [row[0] for row in rows]

    def anomalies(self, shard_id: int | None = None) -> list[tuple[int, str | None, str]]:
        """Recorded anomalies ``(shard id, custom id, detail)``: lines that matched no op."""
        query = "SELECT shard_id, custom_id, detail FROM anomalies"
        params: tuple[object, ...] = ()
        if shard_id is not None:
            query += " WHERE shard_id = ?"
            params = (shard_id,)
        with self._lock:
            rows = self._conn.execute(query + " ORDER BY id", params).fetchall()
        return [(int(r[0]), r[1], str(r[2])) for r in rows]


def _chunks(items: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
