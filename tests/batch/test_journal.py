"""The batch journal inside the store: a version-1 store still opens; changes are compare-and-set."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from inert import Store
from inert._store import SCHEMA_VERSION

V1_SCHEMA = """
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
"""The layout inert wrote as store schema version 1 (kept verbatim: old files look like this)."""


def write_v1_store(path: Path) -> None:
    """A store as inert's schema version 1 left it: one answer, one run, one created shard."""
    with sqlite3.connect(path) as conn:
        conn.executescript(V1_SCHEMA)
        conn.executemany(
            "INSERT INTO meta (key, value) VALUES (?, ?)",
            [("application", "inert"), ("schema_version", "1")],
        )
        conn.execute(
            "INSERT INTO responses VALUES ('k1', '/v1/chat/completions', 'm', '{\"a\":1}', 3, 4, 0, "
            "'batch')"
        )
        conn.execute("INSERT INTO runs VALUES ('run_old', 0, '{}')")
        conn.execute(
            "INSERT INTO shards (run_id, shard, attempt, endpoint, model, digest, size, state, "
            "batch_id, created_at, updated_at) VALUES ('run_old', 0, 1, '/v1/chat/completions', "
            "'m', 'd', 1, 'created', 'batch_old', 0, 0)"
        )
        conn.execute("INSERT INTO shard_lines VALUES (1, 'k1')")
    conn.close()
    path.chmod(0o600)


def test_a_version_1_store_opens_and_keeps_its_answers_and_journal(tmp_path: Path) -> None:
    """A store written by the previous layout is migrated in place: nothing lost, new columns set."""
    path = tmp_path / "old.sqlite3"
    write_v1_store(path)
    with Store(path) as store:
        assert {"k1": {"a": 1}} == dict(store.get_responses(["k1"]))
        (record,) = store.shards()
        assert ("created", "batch_old", 0, None) == (
            record.state,
            record.batch_id,
            record.tokens,
            record.parent_id,
        )
        assert ["k1"] == store.shard_custom_ids(record.id)
        assert not store.cancel_requested("run_old")
        store.request_cancel(["run_old"])
        assert store.cancel_requested("run_old")
    with sqlite3.connect(path) as conn:
        (version,) = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    conn.close()
    assert str(SCHEMA_VERSION) == version
    with Store(path) as again:
        assert 1 == len(again.shards())


def shard_in(store: Store) -> int:
    """A fresh intended shard of one line; its row id."""
    store.begin_run("run_t", {})
    return store.intend_shard(
        run_id="run_t", shard=0, attempt=1, endpoint="/v1/x", model=None, custom_ids=["a"]
    ).id


def test_a_transition_from_a_state_the_shard_left_changes_nothing(store: Store) -> None:
    """A compare-and-set on a stale state returns None and leaves the shard as it is."""
    shard_id = shard_in(store)
    moved = store.transition(shard_id, ("intended",), "uploaded", input_file_id="file-1")
    assert moved is not None
    assert ("uploaded", "file-1") == (moved.state, moved.input_file_id)
    assert store.transition(shard_id, ("intended",), "abandoned") is None
    assert store.mark_uploaded(shard_id, "file-2") is None
    assert ("uploaded", "file-1") == (
        store.shard(shard_id).state,
        store.shard(shard_id).input_file_id,
    )


def test_a_cancel_request_is_seen_through_another_connection(store_path: Path) -> None:
    """A run marked cancelled by one Store object is seen cancelled by another on the same file."""
    with Store(store_path) as one, Store(store_path) as other:
        one.begin_run("run_a", {})
        one.begin_run("run_b", {})
        other.request_cancel(["run_a"])
        assert (True, False) == (one.cancel_requested("run_a"), one.cancel_requested("run_b"))
        other.request_cancel()
        assert one.cancel_requested("run_b")
        assert not one.cancel_requested("run_never_begun")
