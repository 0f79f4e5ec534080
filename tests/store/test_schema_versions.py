"""Schema versions on both backends: an older store is migrated in place, a newer one refused.

A store written by inert's schema version 2 (frozen below, as that version created
it) holds an answer, a run and a batch still running at the server; opening it with
this inert brings it to :data:`~inert._store.SCHEMA_VERSION` and keeps all of it, so
the running batch can still be collected.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Final

import psycopg
import pytest

from inert import Op, Store
from inert._sql import is_url, postgres_ddl
from inert._store import SCHEMA_VERSION
from inert.errors import NewerStoreError

SCHEMA_V2: Final = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
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
    metadata TEXT NOT NULL,
    cancel_requested_at REAL
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
)
"""
"""The tables as inert's store schema version 2 created them (SQLite's dialect)."""

ANSWERED: Final = Op(endpoint="/v1/chat/completions", body={"i": 1}, decode=lambda raw: raw)
LINES: Final = ("a" * 64, "b" * 64)


def _rows(version: int) -> list[tuple[str, tuple[object, ...]]]:
    now = time.time()
    return [
        ("INSERT INTO meta VALUES (?, ?)", ("application", "inert")),
        ("INSERT INTO meta VALUES (?, ?)", ("schema_version", str(version))),
        (
            "INSERT INTO responses VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (ANSWERED.key, ANSWERED.endpoint, None, '{"ok": true}', 2, 3, now, "immediate"),
        ),
        ("INSERT INTO runs VALUES (?, ?, ?, ?)", ("run-1", now, "{}", None)),
        (
            "INSERT INTO shards (id, run_id, shard, attempt, endpoint, model, digest, size, "
            "state, input_file_id, batch_id, remote_status, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                1,
                "run-1",
                0,
                1,
                ANSWERED.endpoint,
                "m",
                "d" * 64,
                2,
                "created",
                "file-1",
                "batch_1",
                "in_progress",
                now,
                now,
            ),
        ),
        *(("INSERT INTO shard_lines VALUES (?, ?)", (1, cid)) for cid in LINES),
    ]


def write_old_store(location: str, version: int = 2) -> None:
    """A store as schema version 2 of inert left it, at ``location`` (a path or a URL)."""
    if is_url(location):
        with psycopg.connect(location) as server:
            for statement in postgres_ddl(SCHEMA_V2):
                server.execute(statement.encode())
            for sql, params in _rows(version):
                server.execute(sql.replace("?", "%s").encode(), params)
        return
    Path(location).touch(mode=0o600)  # private, as inert makes its files
    with sqlite3.connect(location) as conn:
        conn.executescript(SCHEMA_V2)
        for sql, params in _rows(version):
            conn.execute(sql, params)
    conn.close()


def test_a_version_2_store_is_migrated_and_keeps_everything(store_location: str) -> None:
    """The answer, the run and the running batch (with its lines) survive the migration."""
    write_old_store(store_location)
    with Store(store_location) as store:
        assert store.stats().schema_version == SCHEMA_VERSION
        assert store.get_responses([ANSWERED.key]) == {ANSWERED.key: {"ok": True}}
        shard = store.shard(1)
        assert (shard.state, shard.batch_id, shard.run_id) == ("created", "batch_1", "run-1")
        assert sorted(store.shard_custom_ids(1)) == list(LINES)
        assert [s.id for s in store.pending_shards_for([LINES[0]])] == [1]
    with Store(store_location) as again:  # migrating once is enough
        assert again.stats().schema_version == SCHEMA_VERSION


def test_a_store_from_a_newer_inert_is_refused_untouched(store_location: str) -> None:
    """A schema version above this inert's raises NewerStoreError and writes nothing."""
    write_old_store(store_location, version=SCHEMA_VERSION + 1)
    with pytest.raises(NewerStoreError, match="newer inert"):
        Store(store_location)
    with pytest.raises(NewerStoreError):
        Store(store_location, create=False)
