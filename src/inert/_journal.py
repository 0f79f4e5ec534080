"""The batch journal inside a :class:`~inert.Store`: runs, shards and their lines.

Every step of a batch is journaled before (intent) or after (file id, batch id,
download) its side effect, so a process killed at any point can be resumed by a new
runner on the same file without paying twice. States of a shard (one Batch API job)::

    intended ──upload──▶ uploaded ──create──▶ created ──download──▶ downloaded
        │                    │                 │   │ cancel             ▲
        └──── abandoned ◀────┘ (no remote      │   └──▶ cancelling ─────┘
                  ▲             batch found)   └──▶ lost (its output file expired
                  └───────── (abandoned by hand,      before it was downloaded)
                              or its lines resubmitted)
    intended/uploaded/created ──▶ failed  (the input file or the batch was refused)

Every change of state is a compare-and-set on the states the caller last saw
(:meth:`JournalTables.transition`): a shard moved meanwhile by another task or
another process is never moved back, and the caller learns it lost the race. Nothing
here relies on memory of the process: a run's cancellation is a column of its row.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import threading
import time
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import ClassVar, Final

import attrs

from inert._gc import paused_gc
from inert._json import JSON
from inert._sql import SqlConnection

PENDING_STATES: Final = ("intended", "uploaded", "created", "cancelling", "lost")
"""Shards whose answers have not been collected yet (a run carrying their ops looks at these)."""
UNSENT_STATES: Final = ("intended", "uploaded")
"""Shards whose batch id is not journaled: the batch may or may not exist remotely."""
ATTACHED_STATES: Final = ("created", "cancelling")
"""Shards with a remote batch whose output has not been downloaded."""
LOST_STATE: Final = "lost"
"""A shard whose output or error file expired before it was downloaded: those answers are gone."""

JOURNAL_DDL: Final = """
CREATE TABLE runs (
    id TEXT PRIMARY KEY,
    created_at REAL NOT NULL,
    metadata TEXT NOT NULL,
    cancel_requested_at REAL,
    host TEXT,
    pid INTEGER
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
    tokens INTEGER NOT NULL DEFAULT 0,
    parent_id INTEGER,
    owner TEXT,
    lease_expires_at REAL,
    UNIQUE (run_id, shard)
);
CREATE INDEX shards_state ON shards(state);
CREATE INDEX shards_owner ON shards(owner);
CREATE TABLE shard_lines (
    shard_id INTEGER NOT NULL REFERENCES shards(id),
    custom_id TEXT NOT NULL,
    PRIMARY KEY (shard_id, custom_id)
) WITHOUT ROWID;
CREATE TABLE claims (
    custom_id TEXT PRIMARY KEY,
    shard_id INTEGER NOT NULL REFERENCES shards(id)
);
CREATE INDEX claims_shard ON claims(shard_id);
CREATE TABLE anomalies (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    shard_id INTEGER NOT NULL REFERENCES shards(id),
    custom_id TEXT,
    detail TEXT NOT NULL,
    created_at REAL NOT NULL
);
"""
"""The journal's tables, as this version of inert creates them."""

_MAX_ROW_ID: Final = 2**63 - 1
"""The largest SQLite row id: a longer number names no shard."""

_MIGRATIONS: Final[Mapping[int, Sequence[str]]] = {
    # 1 → 2: the token estimate and parent of each shard; a run's cancellation request.
    2: (
        "ALTER TABLE shards ADD COLUMN tokens INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE shards ADD COLUMN parent_id INTEGER",
        "ALTER TABLE runs ADD COLUMN cancel_requested_at REAL",
    ),
    # 2 → 3: claims and leases (see :mod:`inert._claims`). A pending shard of an older
    # inert gets the claims of its lines and no owner: the next run takes it over.
    3: (
        "ALTER TABLE runs ADD COLUMN host TEXT",
        "ALTER TABLE runs ADD COLUMN pid INTEGER",
        "ALTER TABLE shards ADD COLUMN owner TEXT",
        "ALTER TABLE shards ADD COLUMN lease_expires_at REAL",
        "CREATE INDEX shards_owner ON shards(owner)",
        "CREATE TABLE claims (custom_id TEXT PRIMARY KEY, "
        "shard_id INTEGER NOT NULL REFERENCES shards(id))",
        "CREATE INDEX claims_shard ON claims(shard_id)",
        "INSERT INTO claims (custom_id, shard_id) SELECT custom_id, MAX(shard_id) "
        "FROM shard_lines WHERE shard_id IN (SELECT id FROM shards WHERE state IN "
        "('intended', 'uploaded', 'created', 'cancelling', 'lost')) GROUP BY custom_id",
        "DROP INDEX IF EXISTS shard_lines_custom_id",
    ),
}


def migrate_journal(conn: SqlConnection, version: int, target: int) -> None:
    """Bring the journal tables from ``version`` to ``target`` (inside the caller's transaction)."""
    for step in range(version + 1, target + 1):
        for statement in _MIGRATIONS.get(step, ()):
            conn.execute(statement)


@attrs.frozen
class ShardRecord:
    """One journaled Batch API job: which lines it carries and how far it got.

    ``tokens`` is the estimate of the prompt tokens it enqueues; ``parent_id`` the
    shard whose lines it resubmits (``None`` for a first submission). ``owner`` is
    the run that holds the shard's lease until ``lease_expires_at`` (seconds since
    the epoch); ``None``: nobody holds it (see :mod:`inert._claims`).
    """

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
    tokens: int = 0
    parent_id: int | None = None
    owner: str | None = None
    lease_expires_at: float | None = None

    def leased(self, now: float) -> bool:
        """Whether a run holds this shard's lease at ``now`` (so nobody else may move it)."""
        return (
            self.owner is not None
            and self.lease_expires_at is not None
            and self.lease_expires_at > now
        )


SHARD_COLUMNS: Final = ", ".join(f.name for f in attrs.fields(ShardRecord))


def _dumps(value: JSON) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


KEY_LIST: Final = "json_each(?) AS wanted"
"""SQL for a table of keys passed as ONE parameter, a JSON array (:func:`key_lists`):
its column ``wanted.value`` holds the keys, in the array's order. Set-based
statements over it (``INSERT ... SELECT``, a join) do in the database what would
otherwise take a bound row per key or an ``IN (...)`` list of 500 keys at a time.
:class:`~inert._store_pg.PostgresStore` has its own."""
KEYS_PER_LIST: Final = 2_000
"""Keys per JSON array (about 130 KB): the database copies a bound text, so an array
of a whole 50,000-line shard would leave megabytes to the allocator at once."""


def key_lists(keys: Sequence[str]) -> Iterator[str]:
    """The parameters of :data:`KEY_LIST` for ``keys``: JSON arrays of at most
    :data:`KEYS_PER_LIST` keys, in order."""
    dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
    for start in range(0, len(keys), KEYS_PER_LIST):
        yield dumps(keys[start : start + KEYS_PER_LIST])


def custom_ids_digest(custom_ids: Iterable[str]) -> str:
    """sha256 of the sorted custom ids: names a shard's content across processes."""
    return hashlib.sha256("\n".join(sorted(custom_ids)).encode("utf-8")).hexdigest()


class JournalTables:
    """The journal half of :class:`~inert.Store` (a mixin over its connection and lock)."""

    path: Path
    _conn: SqlConnection
    _lock: threading.RLock
    _key_list: ClassVar[str] = KEY_LIST

    def _transaction(self) -> contextlib.AbstractContextManager[SqlConnection]:
        raise NotImplementedError  # pragma: no cover - Store provides it

    def _insert_responses(
        self,
        conn: SqlConnection,
        rows: Iterable[tuple[str, str, str | None, JSON]],
        source: str,
    ) -> None:
        raise NotImplementedError  # pragma: no cover - Store provides it

    def clock(self) -> float:
        """Now, in seconds since the epoch, on the clock every lease of this store is kept by.

        A file's processes share this machine's clock (``time.time()``); a server's
        store keeps the server's, so that workers on machines whose clocks disagree
        still agree on when a lease runs out (:class:`~inert._store_pg.PostgresStore`).
        """
        return time.time()

    # --- runs -------------------------------------------------------------------------

    def begin_run(
        self,
        run_id: str,
        metadata: Mapping[str, str],
        *,
        host: str | None = None,
        pid: int | None = None,
    ) -> None:
        """Journal a run (one ``run_all`` of a batch runner), and the process that runs it."""
        with self._transaction() as conn:
            conn.execute(
                "INSERT INTO runs (id, created_at, metadata, host, pid) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (id) DO NOTHING",
                (run_id, time.time(), _dumps(dict(metadata)), host, pid),
            )

    def run_process(self, run_id: str) -> tuple[str | None, int | None] | None:
        """``(host, pid)`` of the process that journaled a run; ``None``: no such run."""
        with self._lock:
            row = self._conn.execute(
                "SELECT host, pid FROM runs WHERE id = ?", (run_id,)
            ).fetchone()
        return None if row is None else (row[0], None if row[1] is None else int(row[1]))

    def request_cancel(self, run_ids: Iterable[str] | None = None) -> None:
        """Record that these runs (every run, when ``None``) must submit nothing more.

        A live run reads this before each submission and while it polls, in whatever
        process it runs.
        """
        now = time.time()
        with self._transaction() as conn:
            if run_ids is None:
                conn.execute(
                    "UPDATE runs SET cancel_requested_at = ? WHERE cancel_requested_at IS NULL",
                    (now,),
                )
            else:
                conn.executemany(
                    "UPDATE runs SET cancel_requested_at = ? "
                    "WHERE id = ? AND cancel_requested_at IS NULL",
                    [(now, run_id) for run_id in run_ids],
                )

    def cancel_requested(self, run_id: str) -> bool:
        """Whether someone asked this run to stop (``inert batches cancel``, ``cancel()``)."""
        with self._lock:
            row = self._conn.execute(
                "SELECT cancel_requested_at FROM runs WHERE id = ?", (run_id,)
            ).fetchone()
        return row is not None and row[0] is not None

    # --- shards -----------------------------------------------------------------------

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
        tokens: int = 0,
        parent_id: int | None = None,
        owner: str | None = None,
        lease_expires_at: float | None = None,
    ) -> ShardRecord:
        """Journal the intent to submit these lines, before anything is uploaded.

        The shard claims its lines (see :mod:`inert._claims`), taking each claim from
        the shard that held it unless that one is held by another owner's live lease;
        ``owner`` holds the new shard until ``lease_expires_at`` (on :meth:`clock`).
        """
        now = self.clock()
        with paused_gc(), self._transaction() as conn:
            shard_id = self._insert_shard(
                conn,
                run_id=run_id,
                shard=shard,
                attempt=attempt,
                endpoint=endpoint,
                model=model,
                custom_ids=custom_ids,
                tokens=tokens,
                parent_id=parent_id,
                owner=owner,
                lease_expires_at=lease_expires_at,
                now=now,
            )
            # The shard's lines, just inserted in key order, claimed in one statement.
            conn.execute(
                "INSERT INTO claims (custom_id, shard_id) "
                "SELECT custom_id, shard_id FROM shard_lines WHERE shard_id = ? "
                "ON CONFLICT (custom_id) DO UPDATE SET shard_id = excluded.shard_id "
                "WHERE claims.shard_id NOT IN (SELECT id FROM shards WHERE owner IS NOT NULL "
                "AND owner != ? AND lease_expires_at > ?)",
                (shard_id, owner or "", now),
            )
        return self.shard(shard_id)

    def _insert_shard(
        self,
        conn: SqlConnection,
        *,
        run_id: str,
        shard: int,
        attempt: int,
        endpoint: str,
        model: str | None,
        custom_ids: Sequence[str],
        tokens: int,
        parent_id: int | None,
        owner: str | None,
        lease_expires_at: float | None,
        now: float,
    ) -> int:
        """Insert a shard row and its lines (inside the caller's transaction); its row id.

        The lines go in sorted (their B-tree grows at its end), from JSON arrays of
        keys (:data:`KEY_LIST`): one statement per 2,000 lines, not a bound row each.
        """
        ordered = sorted(custom_ids)  # sorted keys go into the B-trees in order: fast
        digest = hashlib.sha256("\n".join(ordered).encode("utf-8")).hexdigest()
        cursor = conn.execute(
            "INSERT INTO shards (run_id, shard, attempt, endpoint, model, digest, size, "
            "state, created_at, updated_at, tokens, parent_id, owner, lease_expires_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, 'intended', ?, ?, ?, ?, ?, ?) RETURNING id",
            (
                run_id,
                shard,
                attempt,
                endpoint,
                model,
                digest,
                len(ordered),
                now,
                now,
                tokens,
                parent_id,
                owner,
                lease_expires_at,
            ),
        )
        (shard_id,) = cursor.fetchone()
        for keys in key_lists(ordered):
            conn.execute(
                f"INSERT INTO shard_lines (shard_id, custom_id) SELECT ?, wanted.value "
                f"FROM {self._key_list}",
                (shard_id, keys),
            )
        return int(shard_id)

    def transition(
        self,
        shard_id: int,
        expect: Collection[str],
        state: str | None = None,
        *,
        held_by: str | None = None,
        **values: object,
    ) -> ShardRecord | None:
        """Set ``state`` (and columns) only if the shard is in one of ``expect``.

        With ``held_by``, only if that owner also holds the shard (a run whose shard
        was taken over after its lease expired moves it no more).

        Returns the updated record, or ``None`` when the shard was in another state
        or held by another owner (someone else moved or took it first; read it again
        with :meth:`shard`).
        """
        if state is not None:
            values["state"] = state
        values["updated_at"] = time.time()
        sets = ", ".join(f"{name} = ?" for name in values)
        marks = ",".join("?" * len(expect))
        owned = "" if held_by is None else " AND owner = ?"
        with self._transaction() as conn:
            cursor = conn.execute(
                f"UPDATE shards SET {sets} WHERE id = ? AND state IN ({marks}){owned}",
                [*values.values(), shard_id, *expect, *(() if held_by is None else (held_by,))],
            )
            changed = cursor.rowcount
        return self.shard(shard_id) if changed else None

    def mark_uploaded(
        self, shard_id: int, input_file_id: str, *, held_by: str | None = None
    ) -> ShardRecord | None:
        """Journal the uploaded input file of an ``intended`` shard (``None``: it moved)."""
        return self.transition(
            shard_id, ("intended",), "uploaded", held_by=held_by, input_file_id=input_file_id
        )

    def mark_created(
        self,
        shard_id: int,
        batch_id: str,
        remote_status: str,
        *,
        expect: Collection[str] = UNSENT_STATES,
        held_by: str | None = None,
    ) -> ShardRecord | None:
        """Journal the remote batch id of an unsent shard (``None``: it moved)."""
        return self.transition(
            shard_id,
            expect,
            "created",
            held_by=held_by,
            batch_id=batch_id,
            remote_status=remote_status,
        )

    def mark_remote(
        self, shard_id: int, remote_status: str, completed: int, failed: int
    ) -> ShardRecord:
        """Record the latest status and request counts seen for a shard's batch."""
        with self._transaction() as conn:
            conn.execute(
                "UPDATE shards SET remote_status = ?, completed = ?, failed = ?, updated_at = ? "
                "WHERE id = ?",
                (remote_status, completed, failed, time.time(), shard_id),
            )
        return self.shard(shard_id)

    def mark_state(
        self,
        shard_id: int,
        state: str,
        error: str | None = None,
        *,
        only_from: Collection[str] | None = None,
    ) -> ShardRecord:
        """Move a shard to ``state``; with ``only_from``, only from those states.

        Returns the record as it now is (moved or not).
        """
        expect = only_from if only_from is not None else (self.shard(shard_id).state,)
        if error is None:
            moved = self.transition(shard_id, expect, state)
        else:
            moved = self.transition(shard_id, expect, state, error=error)
        return moved if moved is not None else self.shard(shard_id)

    def note(self, shard_id: int, detail: str, custom_id: str | None = None) -> None:
        """Record something odd about a shard (an anomaly) for ``inert batches show``."""
        with self._transaction() as conn:
            conn.execute(
                "INSERT INTO anomalies (shard_id, custom_id, detail, created_at) "
                "VALUES (?, ?, ?, ?)",
                (shard_id, custom_id, detail, time.time()),
            )

    def store_answers(self, shard: ShardRecord, answers: Iterable[tuple[str, JSON]]) -> None:
        """Keep answers of a shard whose journal entry stays open (a partial download)."""
        with paused_gc(), self._transaction() as conn:
            self._insert_responses(
                conn, ((key, shard.endpoint, shard.model, raw) for key, raw in answers), "batch"
            )

    def finish_shard(
        self,
        shard: ShardRecord,
        *,
        state: str,
        remote_status: str,
        answers: Iterable[tuple[str, JSON]],
        completed: int,
        failed: int,
        output_file_id: str | None,
        error_file_id: str | None,
        anomalies: Sequence[tuple[str | None, str]] = (),
        error: str | None = None,
        expect: Collection[str] = ATTACHED_STATES,
        held_by: str | None = None,
    ) -> ShardRecord:
        """Store a shard's answers and close its journal entry in ONE transaction.

        The answers are kept whatever the shard's state (they were paid); the entry
        moves to ``state`` only from ``expect`` (and, with ``held_by``, only while that
        owner holds it). Either both happen or neither does, so a crash can never
        leave a shard marked downloaded without its answers.
        """
        now = time.time()
        marks = ",".join("?" * len(expect))
        owned = "" if held_by is None else " AND owner = ?"
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
                f"updated_at = ? WHERE id = ? AND state IN ({marks}){owned}",
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
                    *expect,
                    *(() if held_by is None else (held_by,)),
                ),
            )
        return self.shard(shard.id)

    # --- reading ----------------------------------------------------------------------

    def shard(self, shard_id: int) -> ShardRecord:
        """The journal entry with this row id."""
        with self._lock:
            row = self._conn.execute(
                f"SELECT {SHARD_COLUMNS} FROM shards WHERE id = ?", (shard_id,)
            ).fetchone()
        if row is None:
            raise KeyError(f"no shard {shard_id} in the journal of {self.path}")
        return ShardRecord(*row)

    def find_shard(self, ident: str) -> ShardRecord | None:
        """The entry for a batch id, or for a journal row id given as digits."""
        with self._lock:
            row = self._conn.execute(
                f"SELECT {SHARD_COLUMNS} FROM shards WHERE batch_id = ?", (ident,)
            ).fetchone()
        if row is not None:
            return ShardRecord(*row)
        if ident.isascii() and ident.isdigit() and int(ident) <= _MAX_ROW_ID:
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
                f"SELECT {SHARD_COLUMNS} FROM shards{clause} ORDER BY id", params
            ).fetchall()
        return [ShardRecord(*row) for row in rows]

    def pending_shards_for(self, custom_ids: Iterable[str]) -> list[ShardRecord]:
        """Pending shards (not yet collected) that claim any of ``custom_ids``, oldest first."""
        marks = ",".join("?" * len(PENDING_STATES))
        wanted = sorted(set(custom_ids))
        found: dict[int, ShardRecord] = {}
        with self._lock, paused_gc():
            conn = self._conn
            for start in range(0, len(wanted), 500):
                chunk = wanted[start : start + 500]
                rows = conn.execute(
                    f"SELECT {SHARD_COLUMNS} FROM shards WHERE state IN ({marks}) AND id IN "
                    "(SELECT shard_id FROM claims WHERE custom_id IN "
                    f"({','.join('?' * len(chunk))}))",
                    [*PENDING_STATES, *chunk],
                ).fetchall()
                for row in rows:
                    found[row[0]] = ShardRecord(*row)
        return [found[i] for i in sorted(found)]

    def shard_custom_ids(self, shard_id: int) -> list[str]:
        """The custom ids (op keys) of a shard's lines."""
        with self._lock, paused_gc():
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
