"""The batch journal's state machine, row by row: what each step writes and refuses.

Unit-level, on a fresh SQLite store per test and a clock the test sets: the exact
columns of a run and a shard after each step, which states a compare-and-set
accepts, which shard a key's claim names, and what a pending look-up returns.
These rows are what a resumed run reads to decide what is already paid for, so a
step that writes the wrong state or forgets a claim is a batch paid twice.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from inert import Store
from inert._journal import (
    ATTACHED_STATES,
    LOST_STATE,
    PENDING_STATES,
    UNSENT_STATES,
    ShardRecord,
    migrate_journal,
)

START = 1_000.0


class Clock:
    """A ``time.time`` the test moves."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fixed = Clock()
    monkeypatch.setattr("inert._journal.time.time", fixed)
    return fixed


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "journal.sqlite3"


@pytest.fixture
def store(path: Path, clock: Clock) -> Iterator[Store]:
    with Store(path) as opened:
        yield opened


def intend(
    store: Store,
    ids: list[str],
    *,
    run: str = "run_a",
    index: int = 0,
    owner: str | None = None,
    lease: float | None = None,
    attempt: int = 1,
    tokens: int = 0,
    parent_id: int | None = None,
) -> ShardRecord:
    store.begin_run(run, {})
    return store.intend_shard(
        run_id=run,
        shard=index,
        attempt=attempt,
        endpoint="/v1/chat/completions",
        model="gpt-4o-mini",
        custom_ids=ids,
        tokens=tokens,
        parent_id=parent_id,
        owner=owner,
        lease_expires_at=lease,
    )


def claims(path: Path) -> dict[str, int]:
    conn = sqlite3.connect(path)
    try:
        return dict(conn.execute("SELECT custom_id, shard_id FROM claims").fetchall())
    finally:
        conn.close()


def run_row(path: Path, run_id: str) -> tuple[object, ...]:
    conn = sqlite3.connect(path)
    try:
        row = conn.execute(
            "SELECT created_at, metadata, cancel_requested_at, host, pid FROM runs WHERE id = ?",
            (run_id,),
        ).fetchone()
    finally:
        conn.close()
    assert row is not None
    return tuple(row)


# --- runs -------------------------------------------------------------------------------


def test_a_run_is_journaled_once_with_its_metadata_and_process(
    store: Store, path: Path, clock: Clock
) -> None:
    store.begin_run("run_a", {"b": "é", "a": "1"}, host="box", pid=42)
    clock.now = START + 5
    store.begin_run("run_a", {"other": "x"}, host="elsewhere", pid=7)  # a second begin: kept
    assert (START, '{"b":"é","a":"1"}', None, "box", 42) == run_row(path, "run_a")
    assert ("box", 42) == store.run_process("run_a")
    store.begin_run("run_b", {})
    assert (None, None) == store.run_process("run_b")
    assert store.run_process("run_missing") is None


def test_a_cancel_request_keeps_its_first_moment(store: Store, path: Path, clock: Clock) -> None:
    for run in ("run_a", "run_b", "run_c"):
        store.begin_run(run, {})
    clock.now = START + 1
    store.request_cancel(["run_a"])
    assert [True, False, False] == [store.cancel_requested(r) for r in ("run_a", "run_b", "run_c")]
    clock.now = START + 2
    store.request_cancel(["run_a", "run_b"])
    clock.now = START + 3
    store.request_cancel()
    assert [START + 1, START + 2, START + 3] == [
        run_row(path, r)[2] for r in ("run_a", "run_b", "run_c")
    ]
    assert [True, True, True] == [store.cancel_requested(r) for r in ("run_a", "run_b", "run_c")]
    assert not store.cancel_requested("run_missing")


def test_a_cancel_request_of_no_runs_cancels_nothing(store: Store) -> None:
    store.begin_run("run_a", {})
    store.request_cancel([])
    assert not store.cancel_requested("run_a")


# --- shards -----------------------------------------------------------------------------


def test_shard_numbers_go_on_from_the_highest_of_the_run(store: Store) -> None:
    assert 0 == store.next_shard_index("run_a")
    intend(store, ["a"], index=0)
    assert 1 == store.next_shard_index("run_a")
    intend(store, ["b"], index=4)
    assert 5 == store.next_shard_index("run_a")
    intend(store, ["c"], run="run_b", index=9)
    assert 5 == store.next_shard_index("run_a")
    assert 10 == store.next_shard_index("run_b")
    assert 0 == store.next_shard_index("run_c")


def test_an_intended_shard_records_every_column(store: Store, path: Path) -> None:
    parent = intend(store, ["z"], index=0)
    record = intend(
        store,
        ["c", "a", "b"],
        index=1,
        attempt=2,
        tokens=123,
        parent_id=parent.id,
        owner="run_a",
        lease=START + 60,
    )
    assert (
        ShardRecord(
            id=parent.id + 1,
            run_id="run_a",
            shard=1,
            attempt=2,
            endpoint="/v1/chat/completions",
            model="gpt-4o-mini",
            digest=hashlib.sha256(b"a\nb\nc").hexdigest(),
            size=3,
            state="intended",
            input_file_id=None,
            batch_id=None,
            remote_status=None,
            output_file_id=None,
            error_file_id=None,
            completed=0,
            failed=0,
            error=None,
            created_at=START,
            updated_at=START,
            tokens=123,
            parent_id=parent.id,
            owner="run_a",
            lease_expires_at=START + 60,
        )
        == record
    )
    assert ["a", "b", "c"] == sorted(store.shard_custom_ids(record.id))
    assert ["z"] == store.shard_custom_ids(parent.id)
    assert [] == store.shard_custom_ids(record.id + 100)
    assert {"z": parent.id, "a": record.id, "b": record.id, "c": record.id} == claims(path)


def test_a_shard_carries_no_token_estimate_unless_told(store: Store) -> None:
    store.begin_run("run_a", {})
    record = store.intend_shard(
        run_id="run_a", shard=0, attempt=1, endpoint="/v1/x", model=None, custom_ids=["a"]
    )
    assert (0, None, None, None) == (
        record.tokens,
        record.parent_id,
        record.owner,
        record.lease_expires_at,
    )


def test_a_new_shard_takes_the_claims_of_its_lines(store: Store, path: Path) -> None:
    first = intend(store, ["a", "b"], index=0)
    second = intend(store, ["b", "c"], index=1)
    assert {"a": first.id, "b": second.id, "c": second.id} == claims(path)
    assert [second] == store.pending_shards_for(["b"])  # found through the claim only
    assert [first] == store.pending_shards_for(["a"])


def test_a_live_lease_of_another_owner_keeps_its_claims(
    store: Store, path: Path, clock: Clock
) -> None:
    held = intend(store, ["a", "b"], owner="run_a", lease=START + 10)
    mine = intend(store, ["b", "c"], run="run_b", index=0, owner="run_b", lease=START + 10)
    assert {"a": held.id, "b": held.id, "c": mine.id} == claims(path)
    again = intend(store, ["a"], index=1, owner="run_a", lease=START + 10)  # its own lease
    assert again.id == claims(path)["a"]
    clock.now = START + 10  # the lease ends at this moment: no longer live
    late = intend(store, ["b"], run="run_c", index=0, owner="run_c", lease=START + 20)
    assert late.id == claims(path)["b"]


def test_a_shard_of_nobody_gives_its_claims_to_anyone(store: Store, path: Path) -> None:
    free = intend(store, ["a"], owner=None)
    taken = intend(store, ["a"], run="run_b", owner="run_b", lease=START + 10)
    assert taken.id == claims(path)["a"]
    unowned = intend(store, ["a"], run="run_c")  # no owner: still not past run_b's lease
    assert taken.id == claims(path)["a"]
    assert free.id < taken.id < unowned.id


def test_a_shard_number_is_unique_in_its_run(store: Store) -> None:
    intend(store, ["a"], index=0)
    with pytest.raises(Exception, match="UNIQUE"):
        intend(store, ["b"], index=0)
    assert 1 == len(store.shards())


# --- moves ------------------------------------------------------------------------------


def test_the_happy_path_of_a_shard(store: Store, clock: Clock) -> None:
    record = intend(store, ["a", "b"])
    clock.now = START + 1
    uploaded = store.mark_uploaded(record.id, "file-in")
    assert uploaded is not None
    assert ("uploaded", "file-in", START + 1, START) == (
        uploaded.state,
        uploaded.input_file_id,
        uploaded.updated_at,
        uploaded.created_at,
    )
    clock.now = START + 2
    created = store.mark_created(record.id, "batch_1", "validating")
    assert created is not None
    assert ("created", "batch_1", "validating", START + 2) == (
        created.state,
        created.batch_id,
        created.remote_status,
        created.updated_at,
    )
    clock.now = START + 3
    seen = store.mark_remote(record.id, "in_progress", 1, 0)
    assert ("created", "in_progress", 1, 0, START + 3) == (
        seen.state,
        seen.remote_status,
        seen.completed,
        seen.failed,
        seen.updated_at,
    )
    clock.now = START + 4
    done = store.finish_shard(
        created,
        state="downloaded",
        remote_status="completed",
        answers=[("a", {"usage": {"prompt_tokens": 1, "completion_tokens": 2}})],
        completed=1,
        failed=1,
        output_file_id="file-out",
        error_file_id="file-err",
        anomalies=[("x", "a line for no op"), (None, "a line without a custom_id")],
    )
    assert (
        "downloaded",
        "completed",
        1,
        1,
        "file-out",
        "file-err",
        None,
        START + 4,
    ) == (
        done.state,
        done.remote_status,
        done.completed,
        done.failed,
        done.output_file_id,
        done.error_file_id,
        done.error,
        done.updated_at,
    )
    assert {"a": {"usage": {"prompt_tokens": 1, "completion_tokens": 2}}} == dict(
        store.get_responses(["a", "b"])
    )
    (stored,) = store.answers()
    assert ("batch", "/v1/chat/completions", "gpt-4o-mini", 1, 2) == (
        stored.source,
        stored.endpoint,
        stored.model,
        stored.prompt_tokens,
        stored.completion_tokens,
    )
    assert [
        (record.id, "x", "a line for no op"),
        (record.id, None, "a line without a custom_id"),
    ] == (store.anomalies(record.id))
    assert [] == store.pending_shards_for(["a", "b"])


def test_a_batch_id_is_journaled_only_for_an_unsent_shard(store: Store) -> None:
    record = intend(store, ["a"])
    assert set(UNSENT_STATES) == {"intended", "uploaded"}
    created = store.mark_created(record.id, "batch_1", "validating")  # straight from intended
    assert created is not None
    assert "created" == created.state
    assert store.mark_created(record.id, "batch_2", "validating") is None
    assert "batch_1" == store.shard(record.id).batch_id
    again = store.mark_created(record.id, "batch_3", "in_progress", expect=("created",))
    assert again is not None
    assert ("batch_3", "in_progress") == (again.batch_id, again.remote_status)


def test_a_move_while_held_by_another_owner_changes_nothing(store: Store, clock: Clock) -> None:
    record = intend(store, ["a"], owner="run_a", lease=START + 10)
    clock.now = START + 1
    assert store.mark_uploaded(record.id, "file-x", held_by="run_b") is None
    assert store.transition(record.id, ("intended",), "abandoned", held_by="run_b") is None
    kept = store.shard(record.id)
    assert ("intended", None, START) == (kept.state, kept.input_file_id, kept.updated_at)
    moved = store.mark_uploaded(record.id, "file-1", held_by="run_a")
    assert moved is not None
    assert ("uploaded", "file-1") == (moved.state, moved.input_file_id)
    assert store.mark_created(record.id, "batch_x", "validating", held_by="run_b") is None
    assert (None, "uploaded") == (store.shard(record.id).batch_id, store.shard(record.id).state)
    created = store.mark_created(record.id, "batch_1", "validating", held_by="run_a")
    assert created is not None
    not_mine = store.finish_shard(
        created,
        state="downloaded",
        remote_status="completed",
        answers=[("a", {"n": 1})],
        completed=1,
        failed=0,
        output_file_id="file-out",
        error_file_id=None,
        held_by="run_b",
    )
    assert ("created", None) == (not_mine.state, not_mine.output_file_id)
    assert {"a": {"n": 1}} == dict(store.get_responses(["a"]))  # paid: kept anyway


def test_a_transition_sets_only_the_columns_it_names(store: Store, clock: Clock) -> None:
    record = intend(store, ["a"])
    clock.now = START + 7
    moved = store.transition(record.id, ("intended", "uploaded"), error="noted")
    assert moved is not None
    assert ("intended", "noted", START + 7) == (moved.state, moved.error, moved.updated_at)
    assert store.transition(record.id, ("created",), "abandoned") is None
    assert store.transition(record.id + 1, ("intended",), "abandoned") is None


def test_finishing_moves_only_from_the_expected_states(store: Store) -> None:
    record = intend(store, ["a", "b"])
    assert set(ATTACHED_STATES) == {"created", "cancelling"}
    unsent = store.finish_shard(
        record,
        state="downloaded",
        remote_status="completed",
        answers=[("a", {"n": 1})],
        completed=1,
        failed=0,
        output_file_id="file-out",
        error_file_id=None,
        error="too early",
    )
    assert ("intended", None, None) == (unsent.state, unsent.output_file_id, unsent.error)
    assert {"a": {"n": 1}} == dict(store.get_responses(["a"]))
    cancelling = store.transition(record.id, ("intended",), "cancelling")
    assert cancelling is not None
    store.mark_state(record.id, "cancelling", "cancelled by hand")
    lost = store.finish_shard(
        cancelling,
        state=LOST_STATE,
        remote_status="cancelled",
        answers=[],
        completed=1,
        failed=0,
        output_file_id=None,
        error_file_id=None,
    )
    assert ("lost", "cancelled", "cancelled by hand") == (
        lost.state,
        lost.remote_status,
        lost.error,
    )
    failed = store.finish_shard(
        lost,
        state="failed",
        remote_status="failed",
        answers=[],
        completed=0,
        failed=2,
        output_file_id=None,
        error_file_id=None,
        error="refused",
        expect=(LOST_STATE,),
    )
    assert ("failed", "refused", 2) == (failed.state, failed.error, failed.failed)


def test_answers_of_an_open_shard_are_stored_as_batch_answers(store: Store) -> None:
    record = intend(store, ["a", "b"])
    store.store_answers(record, [("a", {"n": 1}), ("b", {"n": 2})])
    assert {"a": {"n": 1}, "b": {"n": 2}} == dict(store.get_responses(["a", "b"]))
    assert {("a", "batch", "/v1/chat/completions", "gpt-4o-mini")} | {
        ("b", "batch", "/v1/chat/completions", "gpt-4o-mini")
    } == {(a.key, a.source, a.endpoint, a.model) for a in store.answers()}
    assert "intended" == store.shard(record.id).state


# --- reading ----------------------------------------------------------------------------


def test_a_missing_shard_is_a_key_error_naming_the_store(store: Store, path: Path) -> None:
    with pytest.raises(KeyError) as raised:
        store.shard(5)
    assert f"no shard 5 in the journal of {path}" == raised.value.args[0]


def test_the_largest_row_id_is_still_a_row_id(store: Store, path: Path) -> None:
    record = intend(store, ["a"])
    top = 2**63 - 1
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("UPDATE shards SET id = ? WHERE id = ?", (top, record.id))
    conn.close()
    found = store.find_shard(str(top))
    assert found is not None
    assert top == found.id


def test_shards_are_listed_oldest_first_by_run_and_state(store: Store) -> None:
    a0 = intend(store, ["a"], index=0)
    b0 = intend(store, ["b"], run="run_b", index=0)
    a1 = intend(store, ["c"], index=1)
    store.mark_state(a1.id, "abandoned")
    assert [a0.id, b0.id, a1.id] == [s.id for s in store.shards()]
    assert [a0.id, a1.id] == [s.id for s in store.shards(run_id="run_a")]
    assert [a0.id, b0.id] == [s.id for s in store.shards(states=("intended",))]
    assert [a1.id] == [s.id for s in store.shards(run_id="run_a", states=("abandoned", "x"))]
    assert [] == store.shards(run_id="run_b", states=("abandoned",))
    assert [] == store.shards(states=())


@pytest.mark.parametrize("state", PENDING_STATES)
def test_a_pending_shard_is_found_by_any_of_its_keys(store: Store, state: str) -> None:
    record = intend(store, ["a", "b"])
    store.mark_state(record.id, state)
    assert [record.id] == [s.id for s in store.pending_shards_for(["b", "zz"])]
    assert state == store.pending_shards_for(["a"])[0].state


@pytest.mark.parametrize("state", ["downloaded", "abandoned", "failed", "collected"])
def test_a_finished_shard_is_not_pending(store: Store, state: str) -> None:
    record = intend(store, ["a"])
    store.mark_state(record.id, state)
    assert [] == store.pending_shards_for(["a"])


def test_pending_shards_of_many_keys_are_found_in_every_chunk(store: Store) -> None:
    keys = [f"k{i:04}" for i in range(1203)]
    first = intend(store, keys[:1], index=0)
    middle = intend(store, keys[500:501], index=1)  # the first key of the second chunk
    last = intend(store, keys[-1:], index=2)
    other = intend(store, ["unasked"], index=3)
    statements: list[str] = []
    store._sqlite.set_trace_callback(statements.append)
    found = store.pending_shards_for(reversed(keys))
    store._sqlite.set_trace_callback(None)
    assert [first.id, middle.id, last.id] == [s.id for s in found]
    assert 3 == sum("FROM claims WHERE custom_id IN" in s for s in statements)
    assert other.id not in {s.id for s in found}
    assert [] == store.pending_shards_for([])


def test_a_pending_shard_is_found_only_through_its_claims(store: Store) -> None:
    older = intend(store, ["a", "b"], index=0)
    newer = intend(store, ["a"], index=1)  # takes a's claim
    assert [older.id, newer.id] == [s.id for s in store.pending_shards_for(["a", "b"])]
    assert [newer.id] == [s.id for s in store.pending_shards_for(["a"])]
    assert [older.id] == [s.id for s in store.pending_shards_for(["b"])]


# --- migrations -------------------------------------------------------------------------


def columns(conn: sqlite3.Connection, table: str) -> list[str]:
    return [row[1] for row in conn.execute(f"PRAGMA table_info({table})")]


def old_journal() -> sqlite3.Connection:
    """The journal's tables reduced to the columns the migrations read."""
    conn = sqlite3.connect(":memory:")
    conn.executescript(
        "CREATE TABLE runs (id TEXT);"
        "CREATE TABLE shards (id INTEGER, state TEXT);"
        "CREATE TABLE shard_lines (shard_id INTEGER, custom_id TEXT);"
        "INSERT INTO shards VALUES (1, 'created'), (2, 'lost'), (3, 'downloaded');"
        "INSERT INTO shard_lines VALUES (1, 'a'), (1, 'b'), (2, 'b'), (3, 'c');"
    )
    return conn


def test_a_migration_runs_each_step_after_the_version_up_to_the_target() -> None:
    conn = old_journal()
    migrate_journal(conn, 1, 2)
    assert ["id", "cancel_requested_at"] == columns(conn, "runs")
    assert ["id", "state", "tokens", "parent_id"] == columns(conn, "shards")
    migrate_journal(conn, 2, 2)  # nothing to do
    assert ["id", "state", "tokens", "parent_id"] == columns(conn, "shards")
    migrate_journal(conn, 2, 3)
    assert ["id", "cancel_requested_at", "host", "pid"] == columns(conn, "runs")
    assert ["id", "state", "tokens", "parent_id", "owner", "lease_expires_at"] == columns(
        conn, "shards"
    )
    # Each line of a pending shard is claimed by its newest pending shard.
    assert {"a": 1, "b": 2} == dict(conn.execute("SELECT custom_id, shard_id FROM claims"))
    conn.close()


def test_a_migration_from_version_1_to_3_runs_both_steps() -> None:
    conn = old_journal()
    migrate_journal(conn, 1, 3)
    assert ["id", "cancel_requested_at", "host", "pid"] == columns(conn, "runs")
    assert ["id", "state", "tokens", "parent_id", "owner", "lease_expires_at"] == columns(
        conn, "shards"
    )
    conn.close()
    assert LOST_STATE in PENDING_STATES
