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
import operator
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar, Final, Self

import attrs

from inert._claims import Claim, ClaimTables, ShardIntent
from inert._gc import paused_gc
from inert._journal import (
    ATTACHED_STATES,
    JOURNAL_DDL,
    LOST_STATE,
    PENDING_STATES,
    UNSENT_STATES,
    ShardRecord,
    custom_ids_digest,
    migrate_journal,
)
from inert._json import JSON
from inert._op import Op
from inert._runner import usage_of
from inert._sql import SqlConnection, is_url
from inert._store_errors import (
    DamagedStoreError,
    NewerStoreError,
    NotAStoreError,
    StoreBusyError,
    StoreError,
    damaged,
    translate,
)
from inert._store_file import (
    APPLICATION_ID,
    FileLook,
    inspect,
    locate,
    looks_like_inert,
    make_private,
)

SCHEMA_VERSION: Final = 3
"""The layout this version of inert writes; older files are migrated, newer ones refused.

1: the first layout; 2: shards carry their token estimate and parent, runs their
cancellation request (see :mod:`inert._journal`); 3: shards carry their owner and
lease, and each line's key is claimed by one shard (see :mod:`inert._claims`).
"""

DEFAULT_PATH: Final = Path(".inert") / "store.sqlite3"
"""Where ``Store()`` keeps its file, relative to the current directory."""

_APPLICATION: Final = "inert"
_MAX_ROW_ID: Final = 2**63 - 1
_NOT_AN_ANSWER: Final = "COALESCE(json_type({column}, '$.error'), 'null') != 'null'"
"""SQL for "this stored body is an error object", as :func:`inert._answers.is_answer`."""

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


@attrs.frozen
class StoredAnswer:
    """One stored response, without its body (see :meth:`Store.keys`)."""

    key: str
    endpoint: str
    model: str | None
    source: str
    prompt_tokens: int
    completion_tokens: int
    created_at: float
    size: int


@attrs.frozen
class AnswerGroup:
    """Stored answers of one endpoint, model and source (immediate or batch)."""

    endpoint: str
    model: str | None
    source: str
    answers: int
    prompt_tokens: int
    completion_tokens: int


@attrs.frozen
class StoreStats:
    """What a store holds (see :meth:`Store.stats`).

    Attributes:
        answers: stored responses.
        not_answers: stored bodies that are no answer (error objects an older inert
            kept); ``inert store forget --all-failed`` drops them.
        groups: answers by endpoint, model and source.
        shards: batch journal entries by state.
    """

    path: Path
    size_bytes: int
    schema_version: int
    answers: int
    not_answers: int
    prompt_tokens: int
    completion_tokens: int
    groups: tuple[AnswerGroup, ...]
    runs: int
    shards: Mapping[str, int]
    anomalies: int


_ENCODE: Final = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode
"""``json.dumps`` with these options, without making an encoder per call (the same text)."""


def _dumps(value: JSON) -> str:
    return _ENCODE(value)


class _Cursor(sqlite3.Cursor):
    """A cursor whose every database error is raised as the store's own error."""

    def _failed(self, exc: sqlite3.Error) -> StoreError:
        connection = self.connection
        assert isinstance(connection, _Connection)
        return connection.translate(exc)

    # ``Any`` parameters: the database boundary, as typeshed's private ``_Parameters``.
    def execute(self, sql: str, parameters: Any = (), /) -> Self:
        try:
            super().execute(sql, parameters)
        except sqlite3.Error as exc:
            raise self._failed(exc) from exc
        return self

    def executemany(self, sql: str, seq_of_parameters: Iterable[Any], /) -> Self:
        try:
            super().executemany(sql, seq_of_parameters)
        except sqlite3.Error as exc:
            raise self._failed(exc) from exc
        return self

    def fetchone(self) -> Any:
        try:
            return super().fetchone()
        except sqlite3.Error as exc:
            raise self._failed(exc) from exc

    def fetchall(self) -> list[Any]:
        try:
            return super().fetchall()
        except sqlite3.Error as exc:
            raise self._failed(exc) from exc

    def __next__(self) -> Any:
        try:
            return super().__next__()
        except sqlite3.Error as exc:
            raise self._failed(exc) from exc


class _Connection(sqlite3.Connection):
    """A connection whose statements run on :class:`_Cursor` (errors translated)."""

    translate: Callable[[sqlite3.Error], StoreError]

    def execute(self, sql: str, parameters: Any = (), /) -> _Cursor:
        return self.cursor(_Cursor).execute(sql, parameters)

    def executemany(self, sql: str, parameters: Iterable[Any], /) -> _Cursor:
        return self.cursor(_Cursor).executemany(sql, parameters)


def _positive_seconds(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
        raise ValueError(f"{name} must be a number of seconds >= 0, not {value!r}")
    return float(value)


__all__ = [
    "ATTACHED_STATES",
    "DEFAULT_PATH",
    "LOST_STATE",
    "PENDING_STATES",
    "SCHEMA_VERSION",
    "UNSENT_STATES",
    "Claim",
    "ShardIntent",
    "ShardRecord",
    "Store",
    "StoreError",
    "custom_ids_digest",
]


class Store(ClaimTables):
    """Raw responses by op key, the batch journal and usage: a SQLite file or a PostgreSQL database.

    Args:
        path: the file; ``None`` uses ``.inert/store.sqlite3`` under the current
            directory (the directory is created). ``~`` and symlinks are resolved:
            the store is the file the path finally names. A ``postgresql://`` URL
            opens a store on a PostgreSQL server instead (a
            :class:`~inert._store_pg.PostgresStore`, shared by many workers and
            machines; needs ``pip install inert[postgres]``).
        create: make a new store when there is none at ``path`` (``False``: raise
            :class:`~inert.errors.StoreNotFoundError`, as commands that only read do).
        busy_timeout: seconds to wait for another connection's lock before raising
            :class:`~inert.errors.StoreBusyError`.

    Raises:
        StoreError: the store cannot be used; nothing is sent and nothing is
            written to a file that is not an inert store. The subclass says why:
            :class:`~inert.errors.NotAStoreError` (another file or database, a
            directory or special file), :class:`~inert.errors.NewerStoreError`,
            :class:`~inert.errors.DamagedStoreError` (with how to recover the
            answers), :class:`~inert.errors.StoreReadOnlyError` (checked by a real
            write at open, before anything is paid),
            :class:`~inert.errors.StoreBusyError`,
            :class:`~inert.errors.StoreNotFoundError`.

    Every file of the store is kept private (mode 0600): a new one is created so,
    and an existing one readable by others is fixed, with a
    :class:`~inert.errors.StorePermissionsWarning`. Any number of processes may
    open one store at once (SQLite's locking; writes are short transactions);
    within a process, calls are serialised by a lock.
    """

    _not_an_answer: ClassVar[str] = _NOT_AN_ANSWER
    location: str
    """Where the store is, for messages: the file's path, or the server's URL without a password."""

    def __new__(
        cls, path: str | os.PathLike[str] | None = None, *args: Any, **kwargs: Any
    ) -> Store:
        """A URL picks the PostgreSQL store; anything else is a SQLite file."""
        if cls is Store and is_url(path):
            from inert._store_pg import PostgresStore

            return object.__new__(PostgresStore)
        return object.__new__(cls)

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        create: bool = True,
        busy_timeout: float = 30.0,
    ) -> None:
        self.busy_timeout: float = _positive_seconds("busy_timeout", busy_timeout)
        if path is None:
            default = DEFAULT_PATH.absolute()
            if create:
                default.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            path = default
        self.path: Path = locate(path)
        self.location = str(self.path)
        self._lock = threading.RLock()
        look = inspect(self.path, create=create)
        self._sqlite = self._connect(look)
        self._conn: SqlConnection = self._sqlite
        try:
            self._open(look)
        except BaseException:
            self._sqlite.close()
            raise
        self._sqlite.translate = self._translate

    # --- opening ----------------------------------------------------------------------

    def _translate(self, exc: sqlite3.Error) -> StoreError:
        return translate(exc, self.path, busy_timeout=self.busy_timeout)

    def _connect(self, look: FileLook) -> _Connection:
        try:
            conn = sqlite3.connect(
                self.path,
                isolation_level=None,
                check_same_thread=False,
                timeout=self.busy_timeout,
                factory=_Connection,
            )
        except sqlite3.Error as exc:
            raise self._translate(exc) from exc

        def while_opening(exc: sqlite3.Error) -> StoreError:
            error = self._translate(exc)
            if isinstance(error, DamagedStoreError) and not (
                look.inert or looks_like_inert(self.path)
            ):
                return NotAStoreError(
                    f"{self.path} is not an inert store (SQLite cannot read it: {exc}); "
                    "inert wrote nothing to it: pass the path of an inert store or of a "
                    "new file",
                    path=self.path,
                )
            return error

        conn.translate = while_opening
        return conn

    def _open(self, look: FileLook) -> None:
        """Check the file is an inert store, then make it one (if new) and prove it writable.

        Several processes may open a new store at the same moment: the schema is
        created inside ``BEGIN IMMEDIATE`` after looking again, so exactly one of
        them creates it, and a lock held by another opener is waited for.
        """
        deadline = time.monotonic() + self.busy_timeout
        while True:
            try:
                self._open_once()
                return
            except StoreBusyError:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(0.02)

    def _open_once(self) -> None:
        conn = self._sqlite
        tables = self._tables()
        if tables:
            self._check_version(tables)  # refuses foreign files before any write
        make_private(self.path)
        if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            conn.execute("PRAGMA journal_mode = WAL")
        with self._transaction():
            # The writable check is this real write, before anything can be paid for.
            tables = self._tables()
            if not tables:
                self._create_schema()
            elif self._check_version(tables) < SCHEMA_VERSION:
                self._migrate()
            if conn.execute("PRAGMA application_id").fetchone()[0] != APPLICATION_ID:
                conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            conn.execute("UPDATE meta SET value = value WHERE key = 'application'")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = ON")
        make_private(self.path)

    def _tables(self) -> set[str]:
        rows = self._conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        return {row[0] for row in rows}

    def _create_schema(self) -> None:
        conn = self._sqlite
        for statement in (s.strip() for s in _SCHEMA.split(";")):
            if statement:
                conn.execute(statement)
        conn.executemany(
            "INSERT INTO meta (key, value) VALUES (?, ?)",
            [("application", _APPLICATION), ("schema_version", str(SCHEMA_VERSION))],
        )

    def _check_version(self, tables: set[str]) -> int:
        meta: dict[str, str] = {}
        if "meta" in tables:
            meta = dict(self._conn.execute("SELECT key, value FROM meta").fetchall())
        if meta.get("application") != _APPLICATION or "schema_version" not in meta:
            raise NotAStoreError(
                f"{self.path} is a SQLite database but not an inert store; inert wrote "
                "nothing to it: pass the path of an inert store or of a new file",
                path=self.path,
            )
        try:
            version = int(meta["schema_version"])
        except ValueError:
            raise damaged(
                self.path, f"its schema version {meta['schema_version']!r} is unreadable"
            ) from None
        if version > SCHEMA_VERSION:
            raise NewerStoreError(
                f"{self.path} was written by a newer inert (store schema version {version}; "
                f"this inert reads up to version {SCHEMA_VERSION}); upgrade inert "
                "(pip install -U inert) or pass another path to Store(...)",
                path=self.path,
            )
        return version

    def _migrate(self) -> None:
        """Bring a store written by an older inert to this layout (inside the open's
        ``BEGIN IMMEDIATE``: with several openers, exactly one migrates)."""
        conn = self._sqlite
        (text,) = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        migrate_journal(conn, int(text), SCHEMA_VERSION)
        conn.execute(
            "UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION),)
        )

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[SqlConnection]:
        with self._lock:
            conn = self._sqlite
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    with contextlib.suppress(StoreError):
                        conn.execute("ROLLBACK")
                raise

    def close(self) -> None:
        """Close the file (the store cannot be used afterwards)."""
        with self._lock:
            self._sqlite.close()

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
        """The stored raw responses of those ``keys`` that have one (decoded JSON).

        Decoded with the collector paused (see :mod:`inert._gc`): a run's look-up of
        50,000 answers makes hundreds of thousands of acyclic containers.
        """
        found: dict[str, JSON] = {}
        with self._lock, paused_gc():
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
        conn: SqlConnection,
        rows: Iterable[tuple[str, str, str | None, JSON]],
        source: str,
    ) -> None:
        now = time.time()
        encode = _ENCODE
        first = operator.itemgetter(0)
        conn.executemany(
            "INSERT INTO responses (key, endpoint, model, response, prompt_tokens, "
            "completion_tokens, created_at, source) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
            # The first answer of a key stays; an error object kept by an older inert
            # gives way to a real answer.
            "ON CONFLICT (key) DO UPDATE SET endpoint = excluded.endpoint, "
            "model = excluded.model, response = excluded.response, "
            "prompt_tokens = excluded.prompt_tokens, "
            "completion_tokens = excluded.completion_tokens, "
            "created_at = excluded.created_at, source = excluded.source "
            f"WHERE {self._not_an_answer.format(column='responses.response')}",
            # In key order (the key index then grows at its end, page after page) and
            # from a generator: a round of 50,000 answers is never held twice as text.
            (
                (key, endpoint, model, encode(raw), *usage_of(raw), now, source)
                for key, endpoint, model, raw in sorted(rows, key=first)
            ),
        )

    def forget(self, keys: Iterable[str]) -> int:
        """Delete the stored answers of these op keys in one transaction.

        The next run sends those calls again (and pays for them): this is how a bad
        stored answer is dropped. Keys with no stored answer are ignored. Returns
        how many answers were deleted.
        """
        wanted = list(dict.fromkeys(keys))
        forgotten = 0
        with self._transaction() as conn:
            for chunk in _chunks(wanted, 500):
                marks = ",".join("?" * len(chunk))
                cursor = conn.execute(f"DELETE FROM responses WHERE key IN ({marks})", chunk)
                forgotten += cursor.rowcount
        return forgotten

    def answers(
        self,
        *,
        prefix: str = "",
        failed: bool = False,
        endpoint: str | None = None,
        model: str | None = None,
        limit: int | None = None,
    ) -> list[StoredAnswer]:
        """Stored answers, newest first, without their bodies.

        Args:
            prefix: only keys that start with it.
            failed: only bodies that are no answer (error objects an older inert kept).
            endpoint: only this endpoint.
            model: only this model.
            limit: at most this many.
        """
        where = ["key >= ?", "key < ?"]
        params: list[object] = [prefix, prefix + "\uffff"]
        if failed:
            where.append(self._not_an_answer.format(column="response"))
        if endpoint is not None:
            where.append("endpoint = ?")
            params.append(endpoint)
        if model is not None:
            where.append("model = ?")
            params.append(model)
        clause = " AND ".join(where)
        tail = "" if limit is None else f" LIMIT {int(limit)}"
        with self._lock:
            rows = self._conn.execute(
                "SELECT key, endpoint, model, source, prompt_tokens, completion_tokens, "
                f"created_at, length(response) FROM responses WHERE {clause} "
                f"ORDER BY created_at DESC, key{tail}",
                params,
            ).fetchall()
        return [StoredAnswer(*row) for row in rows]

    def stats(self) -> StoreStats:
        """Counts of what the store holds: answers, tokens, the journal, its size on disk."""
        with self._lock:
            conn = self._conn
            by_kind = conn.execute(
                "SELECT endpoint, model, source, COUNT(*), COALESCE(SUM(prompt_tokens), 0), "
                "COALESCE(SUM(completion_tokens), 0) FROM responses "
                "GROUP BY endpoint, model, source ORDER BY endpoint, model, source"
            ).fetchall()
            (failed,) = conn.execute(
                "SELECT COUNT(*) FROM responses WHERE "
                + self._not_an_answer.format(column="response")
            ).fetchone()
            shard_states = conn.execute(
                "SELECT state, COUNT(*) FROM shards GROUP BY state ORDER BY state"
            ).fetchall()
            (runs,) = conn.execute("SELECT COUNT(*) FROM runs").fetchone()
            (anomalies,) = conn.execute("SELECT COUNT(*) FROM anomalies").fetchone()
            (version,) = conn.execute(
                "SELECT value FROM meta WHERE key = 'schema_version'"
            ).fetchone()
        size = 0
        for suffix in ("", "-wal", "-shm"):
            with contextlib.suppress(OSError):
                size += os.stat(f"{self.path}{suffix}").st_size
        groups = tuple(AnswerGroup(*row) for row in by_kind)
        return StoreStats(
            path=self.path,
            size_bytes=size,
            schema_version=int(version),
            answers=sum(g.answers for g in groups),
            not_answers=int(failed),
            prompt_tokens=sum(g.prompt_tokens for g in groups),
            completion_tokens=sum(g.completion_tokens for g in groups),
            groups=groups,
            runs=int(runs),
            shards={str(state): int(n) for state, n in shard_states},
            anomalies=int(anomalies),
        )

    def check(self) -> list[str]:
        """SQLite's full integrity check of the file: ``[]`` when it is sound.

        Reads every page, so it takes time in proportion to the store's size;
        opening a store checks only its header and schema.
        """
        with self._lock:
            rows = self._conn.execute("PRAGMA integrity_check").fetchall()
        problems = [str(row[0]) for row in rows]
        return [] if problems == ["ok"] else problems

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
