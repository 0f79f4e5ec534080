"""The SQLite store's own methods, exactly: what each writes, returns and refuses.

Unit-level, on a fresh file per test and without an emulator: the figures of
``stats``, ``usage`` and ``answers``, the texts of the errors for files of another
schema, the settings the store opens its file with, and what a failed transaction
leaves behind. These are what ``inert store show``, ``inert store forget`` and the
cache look-ups of both runners read, so a wrong figure here is a wrong bill there.
"""

from __future__ import annotations

import math
import os
import re
import sqlite3
import stat
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from inert import Op, Store
from inert._json import JSON
from inert._store import SCHEMA_VERSION, AnswerGroup, StoredAnswer
from inert._store_file import APPLICATION_ID
from inert.errors import (
    DamagedStoreError,
    NewerStoreError,
    NotAStoreError,
    StoreError,
    StoreNotFoundError,
)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "units.sqlite3"


@pytest.fixture
def store(path: Path) -> Iterator[Store]:
    with Store(path) as opened:
        yield opened


class Clock:
    """A ``time.time`` that says what the test sets."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """The store's clock (``created_at`` of each answer), set by the test."""
    fixed = Clock(1000.0)
    monkeypatch.setattr("inert._store.time.time", fixed)
    return fixed


def op(name: str, endpoint: str = "/v1/chat/completions", model: str | None = "m") -> Op[JSON]:
    body: dict[str, JSON] = {"n": name}
    if model is not None:
        body["model"] = model
    return Op(endpoint=endpoint, body=body, decode=lambda raw: raw)


def answer(prompt: int, completion: int, **more: JSON) -> JSON:
    return {"usage": {"prompt_tokens": prompt, "completion_tokens": completion}, **more}


ERROR: JSON = {"error": {"message": "refused", "code": 400}}


def mode(file: Path) -> int:
    return stat.S_IMODE(os.stat(file).st_mode)


# --- settings ---------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [-1, -0.5, True, "1", None, math.nan])
def test_busy_timeout_must_be_seconds_at_least_zero(path: Path, bad: Any) -> None:
    with pytest.raises(ValueError, match="busy_timeout") as raised:
        Store(path, busy_timeout=bad)
    assert f"busy_timeout must be a number of seconds >= 0, not {bad!r}" == str(raised.value)
    assert not path.exists()  # refused before the file is touched


def test_busy_timeout_is_kept_as_float_seconds(path: Path) -> None:
    with Store(path, busy_timeout=0) as zero:
        assert 0.0 == zero.busy_timeout
    with Store(path, busy_timeout=2) as two:
        assert isinstance(two.busy_timeout, float)
        assert 2.0 == two.busy_timeout
    with Store(path) as default:
        assert 30.0 == default.busy_timeout


def test_the_default_store_is_made_in_a_private_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with Store() as store:
        assert tmp_path / ".inert" / "store.sqlite3" == store.path
        assert str(store.path) == store.location
        assert f"Store({str(store.path)!r})" == repr(store)
    assert 0o700 == mode(tmp_path / ".inert")
    assert 0o600 == mode(tmp_path / ".inert" / "store.sqlite3")


def test_the_default_store_opens_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with Store() as first:
        first.put_responses([(op("a"), answer(1, 1))])
    with Store() as again, Store(create=False) as reader:
        assert (1, 1) == again.usage() == reader.usage()


def test_no_default_store_is_made_when_create_is_false(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(StoreNotFoundError):
        Store(create=False)
    assert [] == list(tmp_path.iterdir())


def test_a_new_store_is_opened_with_its_settings(store: Store, path: Path) -> None:
    conn = sqlite3.connect(path)
    try:
        assert "wal" == conn.execute("PRAGMA journal_mode").fetchone()[0]
        assert APPLICATION_ID == conn.execute("PRAGMA application_id").fetchone()[0]
        assert {"application": "inert", "schema_version": str(SCHEMA_VERSION)} == dict(
            conn.execute("SELECT key, value FROM meta").fetchall()
        )
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    finally:
        conn.close()
    assert {"meta", "responses", "runs", "shards", "shard_lines", "claims", "anomalies"} <= tables
    # The store's own connection: synchronous NORMAL (1), foreign keys enforced.
    assert 1 == store._conn.execute("PRAGMA synchronous").fetchone()[0]
    assert 1 == store._conn.execute("PRAGMA foreign_keys").fetchone()[0]
    assert 0o600 == mode(path)


def test_opening_again_keeps_what_is_stored(path: Path) -> None:
    with Store(path) as first:
        first.put_responses([(op("a"), answer(1, 2))])
    with Store(path) as again:
        assert {op("a").key: answer(1, 2)} == dict(again.get_responses([op("a").key]))
        assert SCHEMA_VERSION == again.stats().schema_version


# --- files of another kind or version ---------------------------------------------------


def database(path: Path, *statements: str) -> bytes:
    conn = sqlite3.connect(path)
    with conn:
        for statement in statements:
            conn.execute(statement)
    conn.close()
    return path.read_bytes()


def not_a_store(path: Path) -> str:
    return (
        f"{path} is a SQLite database but not an inert store; inert wrote nothing to it: "
        "pass the path of an inert store or of a new file"
    )


@pytest.mark.parametrize(
    "rows",
    [
        [],
        [("application", "other"), ("schema_version", "3")],
        [("application", "inert")],
        [("schema_version", "3")],
    ],
    ids=["empty-meta", "other-application", "no-version", "no-application"],
)
def test_a_database_with_another_meta_is_not_a_store(
    path: Path, rows: list[tuple[str, str]]
) -> None:
    inserts = [f"INSERT INTO meta VALUES ('{k}', '{v}')" for k, v in rows]
    before = database(path, "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)", *inserts)
    with pytest.raises(NotAStoreError) as raised:
        Store(path)
    assert not_a_store(path) == str(raised.value)
    assert path == raised.value.path
    assert before == path.read_bytes()


def test_a_database_without_meta_is_not_a_store(path: Path) -> None:
    before = database(path, "CREATE TABLE notes (text TEXT)")
    with pytest.raises(NotAStoreError) as raised:
        Store(path)
    assert not_a_store(path) == str(raised.value)
    assert before == path.read_bytes()


def scramble_schema(path: Path) -> bytes:
    """Overwrite the schema on the first page, keeping SQLite's 100-byte header."""
    data = bytearray(path.read_bytes())
    data[100:4096] = b"\xa5" * (4096 - 100)
    path.write_bytes(bytes(data))
    return bytes(data)


def test_a_foreign_sqlite_file_sqlite_cannot_read_is_not_a_store(path: Path) -> None:
    database(path, "CREATE TABLE notes (text TEXT)", "INSERT INTO notes VALUES ('mine')")
    before = scramble_schema(path)
    with pytest.raises(NotAStoreError) as raised:
        Store(path)
    message = str(raised.value)
    assert re.fullmatch(
        re.escape(f"{path} is not an inert store (SQLite cannot read it: ")
        + r"[^)]+"
        + re.escape(
            "); inert wrote nothing to it: pass the path of an inert store or of a new file"
        ),
        message,
    ), message
    assert path == raised.value.path
    assert before == path.read_bytes()


def test_an_inert_store_sqlite_cannot_read_is_damaged(path: Path) -> None:
    """Its header names inert (``application_id``) though no meta row can be read: damaged."""
    with Store(path) as store:
        store.put_responses([(op("a"), answer(1, 1))])
    data = bytearray(path.read_bytes())
    data[100:] = b"\xa5" * (len(data) - 100)
    path.write_bytes(bytes(data))
    assert not Path(f"{path}-wal").exists()
    with pytest.raises(DamagedStoreError) as raised:
        Store(path)
    assert f"inert store recover {path} NEW_PATH" in str(raised.value)
    assert "not an inert store" not in str(raised.value)


def test_a_file_sqlite_cannot_open_is_the_stores_error(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: object, **kwargs: object) -> sqlite3.Connection:
        raise sqlite3.OperationalError("unable to open database file")

    monkeypatch.setattr("inert._store.sqlite3.connect", refuse)
    with pytest.raises(StoreError) as raised:
        Store(path)
    assert f"the store {path} could not be used: unable to open database file" == str(raised.value)


def test_the_busy_timeout_is_sqlites_own(path: Path) -> None:
    with Store(path, busy_timeout=2.5) as store:
        assert 2500 == store._sqlite.execute("PRAGMA busy_timeout").fetchone()[0]


def set_version(path: Path, version: str) -> None:
    Store(path).close()
    database(path, f"UPDATE meta SET value = '{version}' WHERE key = 'schema_version'")


def test_an_unreadable_schema_version_is_a_damaged_store(path: Path) -> None:
    set_version(path, "three")
    with pytest.raises(DamagedStoreError) as raised:
        Store(path)
    message = str(raised.value)
    assert message.startswith(
        f"the store {path} is damaged (its schema version 'three' is unreadable); "
    )
    assert f"inert store recover {path} NEW_PATH" in message
    assert path == raised.value.path


def test_a_newer_store_is_refused_with_both_versions(path: Path) -> None:
    set_version(path, str(SCHEMA_VERSION + 1))
    before = path.read_bytes()
    with pytest.raises(NewerStoreError) as raised:
        Store(path)
    assert (
        f"{path} was written by a newer inert (store schema version {SCHEMA_VERSION + 1}; "
        f"this inert reads up to version {SCHEMA_VERSION}); upgrade inert "
        "(pip install -U inert) or pass another path to Store(...)"
    ) == str(raised.value)
    assert path == raised.value.path
    assert before == path.read_bytes()


def test_a_store_of_this_version_opens_unchanged(path: Path) -> None:
    set_version(path, str(SCHEMA_VERSION))
    with Store(path) as store:
        assert SCHEMA_VERSION == store.stats().schema_version


# --- transactions, cursors, closing -----------------------------------------------------


def test_a_failed_transaction_leaves_nothing_and_the_store_usable(store: Store) -> None:
    def write_then_fail() -> None:
        with store._transaction() as conn:
            store._insert_responses(conn, [("k", "/v1/x", None, answer(1, 1))], "immediate")
            raise RuntimeError("midway")

    with pytest.raises(RuntimeError, match="midway"):
        write_then_fail()
    assert {} == dict(store.get_responses(["k"]))
    assert not store._sqlite.in_transaction
    store.put_responses([(op("after"), answer(2, 3))])
    assert (2, 3) == store.usage()


def test_database_errors_are_the_stores_errors(store: Store, path: Path) -> None:
    def fail_at_two(n: int) -> int:
        if n == 2:
            raise ValueError("two")
        return n

    store._sqlite.create_function("fail_at_two", 1, fail_at_two)
    query = "SELECT fail_at_two(value) FROM (SELECT 1 AS value UNION ALL SELECT 2)"
    message = f"the store {path} could not be used: user-defined function raised exception"
    with pytest.raises(StoreError) as at_execute:
        store._conn.execute("SELECT no_such_column FROM responses")
    assert f"the store {path} could not be used: no such column: no_such_column" == str(
        at_execute.value
    )
    with pytest.raises(StoreError) as at_fetchall:
        store._conn.execute(query).fetchall()
    assert message == str(at_fetchall.value)
    cursor = store._conn.execute(query)  # steps to the first row
    with pytest.raises(StoreError) as at_fetchone:
        cursor.fetchone()
    assert message == str(at_fetchone.value)
    with pytest.raises(StoreError) as at_next:
        list(store._conn.execute(query))
    assert message == str(at_next.value)
    with pytest.raises(StoreError) as at_executemany:
        store._conn.executemany("INSERT INTO nowhere VALUES (?)", [(1,)])
    assert f"the store {path} could not be used: no such table: nowhere" == str(
        at_executemany.value
    )


def test_a_closed_store_cannot_be_used(path: Path) -> None:
    with Store(path) as store:
        assert store is store.__enter__()
    with pytest.raises(sqlite3.ProgrammingError):
        store.usage()
    store2 = Store(path)
    store2.close()
    with pytest.raises(sqlite3.ProgrammingError):
        store2.response_count()


# --- responses --------------------------------------------------------------------------


def test_more_than_one_chunk_of_keys_is_looked_up_and_forgotten(store: Store) -> None:
    ops = [op(f"{i:05}") for i in range(1201)]
    store.put_responses([(o, answer(i, 1)) for i, o in enumerate(ops)])
    keys = [o.key for o in ops]
    assert {o.key: answer(i, 1) for i, o in enumerate(ops)} == dict(
        store.get_responses([*keys, "missing"])
    )
    assert 1201 == store.response_count()
    assert 1200 == store.forget([*keys[1:], keys[1], "missing"])
    assert {keys[0]: answer(0, 1)} == dict(store.get_responses(keys))
    assert 1 == store.response_count()
    assert 0 == store.forget(["missing"])
    assert 1 == store.forget(keys[:1])
    assert 0 == store.response_count()


def test_a_look_up_of_many_keys_takes_one_statement_per_500(store: Store) -> None:
    statements: list[str] = []
    store._sqlite.set_trace_callback(statements.append)
    store.get_responses([f"k{i}" for i in range(1201)])
    assert 3 == sum(s.startswith("SELECT key, response FROM responses") for s in statements)
    statements.clear()
    assert 0 == store.forget([f"k{i}" for i in range(1201)])
    assert 3 == sum(s.startswith("DELETE FROM responses") for s in statements)
    store._sqlite.set_trace_callback(None)


def test_a_store_is_used_from_any_thread(store: Store) -> None:
    """Runners call the store from worker threads (``asyncio.to_thread``) as well."""
    worker = threading.Thread(target=store.put_responses, args=([(op("t"), answer(1, 2))],))
    worker.start()
    worker.join()
    assert (1, 2) == store.usage()
    failures: list[BaseException] = []

    def read() -> None:
        try:
            assert {op("t").key: answer(1, 2)} == dict(store.get_responses([op("t").key]))
        except BaseException as error:  # reported by the main thread
            failures.append(error)

    reader = threading.Thread(target=read)
    reader.start()
    reader.join()
    assert [] == failures


def test_the_first_answer_of_a_key_stays_even_within_one_call(store: Store) -> None:
    store.put_responses([(op("a"), answer(1, 1, n=1)), (op("a"), answer(2, 2, n=2))])
    store.put_responses([(op("a"), answer(3, 3, n=3))])
    assert {op("a").key: answer(1, 1, n=1)} == dict(store.get_responses([op("a").key]))
    assert (1, 1) == store.usage()


def test_an_error_object_gives_way_to_an_answer_never_the_reverse(
    store: Store, clock: Clock
) -> None:
    store.put_responses([(op("e"), ERROR)], source="batch")
    clock.now = 2000.0
    store.put_responses([(op("e"), answer(4, 5))])
    clock.now = 3000.0
    store.put_responses([(op("e"), ERROR)], source="batch")
    assert {op("e").key: answer(4, 5)} == dict(store.get_responses([op("e").key]))
    (kept,) = store.answers()
    size = len('{"usage":{"prompt_tokens":4,"completion_tokens":5}}')
    assert (
        StoredAnswer(op("e").key, "/v1/chat/completions", "m", "immediate", 4, 5, 2000.0, size)
        == kept
    )


def test_bodies_are_stored_as_compact_unicode_json(store: Store) -> None:
    store.put_responses([(op("u"), {"text": "é ü", "list": [1, 2]})])
    (stored,) = store.answers()
    assert len('{"text":"é ü","list":[1,2]}') == stored.size
    assert (0, 0) == (stored.prompt_tokens, stored.completion_tokens)


def test_a_body_that_is_not_json_is_refused_and_nothing_is_stored(store: Store) -> None:
    with pytest.raises(ValueError, match="Out of range float values are not JSON compliant"):
        store.put_responses([(op("ok"), answer(1, 1)), (op("nan"), {"x": math.nan})])
    assert 0 == store.response_count()


def test_answers_of_the_batch_api_carry_their_source(store: Store) -> None:
    store.put_responses([(op("b"), answer(1, 2))], source="batch")
    store.put_responses([(op("i"), answer(3, 4))])
    assert {op("b").key: "batch", op("i").key: "immediate"} == {
        a.key: a.source for a in store.answers()
    }


# --- listing ----------------------------------------------------------------------------


@pytest.fixture
def filled(store: Store, clock: Clock) -> Store:
    """Five stored bodies: three chat answers (two models), one embedding, one error."""
    entries: list[tuple[Op[JSON], JSON, str]] = [
        (op("c1", model="m1"), answer(10, 1), "immediate"),
        (op("c2", model="m2"), answer(20, 2), "batch"),
        (op("c3", model="m1"), answer(30, 3), "immediate"),
        (op("e1", endpoint="/v1/embeddings", model=None), answer(40, 0), "batch"),
        (op("x1", model="m1"), ERROR, "immediate"),
    ]
    for i, (o, raw, source) in enumerate(entries):
        clock.now = 100.0 + i
        store.put_responses([(o, raw)], source=source)
    return store


def test_answers_are_newest_first_with_their_fields(filled: Store) -> None:
    listed = filled.answers()
    assert [
        op("x1", model="m1").key,
        op("e1", endpoint="/v1/embeddings", model=None).key,
        op("c3", model="m1").key,
        op("c2", model="m2").key,
        op("c1", model="m1").key,
    ] == [a.key for a in listed]
    assert [104.0, 103.0, 102.0, 101.0, 100.0] == [a.created_at for a in listed]
    assert ("/v1/embeddings", None, "batch", 40, 0) == (
        listed[1].endpoint,
        listed[1].model,
        listed[1].source,
        listed[1].prompt_tokens,
        listed[1].completion_tokens,
    )
    assert [5, 3] == [len(filled.answers()), len(filled.answers(limit=3))]
    assert [104.0, 103.0] == [a.created_at for a in filled.answers(limit=2)]


def test_answers_at_the_same_moment_are_in_key_order(store: Store, clock: Clock) -> None:
    ops = [op(str(i)) for i in range(6)]
    store.put_responses([(o, answer(1, 1)) for o in ops])
    assert sorted(o.key for o in ops) == [a.key for a in store.answers()]


def test_answers_filter_by_failure_endpoint_and_model(filled: Store) -> None:
    def keys(**filters: Any) -> set[str]:
        return {a.key for a in filled.answers(**filters)}

    assert {op("x1", model="m1").key} == keys(failed=True)
    assert 5 == len(keys(failed=False))
    assert {op("e1", endpoint="/v1/embeddings", model=None).key} == keys(endpoint="/v1/embeddings")
    assert 4 == len(keys(endpoint="/v1/chat/completions"))
    assert {op("c2", model="m2").key} == keys(model="m2")
    assert of_model_m1(filled) == keys(model="m1", endpoint="/v1/chat/completions")
    assert {op("x1", model="m1").key} == keys(model="m1", failed=True)
    assert set() == keys(model="m2", endpoint="/v1/embeddings")


def of_model_m1(store: Store) -> set[str]:
    return {a.key for a in store.answers() if a.model == "m1"}


def test_answers_filter_by_key_prefix(store: Store) -> None:
    for key in ("ab", "ab1", "ab\uffee", "abc", "ac", "a", "b"):
        with store._transaction() as conn:
            store._insert_responses(conn, [(key, "/v1/x", None, answer(1, 1))], "immediate")
    assert {"ab", "ab1", "ab\uffee", "abc"} == {a.key for a in store.answers(prefix="ab")}
    assert {"ab1"} == {a.key for a in store.answers(prefix="ab1")}
    assert 7 == len(store.answers(prefix=""))
    assert [] == store.answers(prefix="z")


def test_stats_count_everything_the_store_holds(filled: Store, path: Path) -> None:
    filled.begin_run("run_1", {})
    filled.begin_run("run_2", {})
    one = filled.intend_shard(
        run_id="run_1", shard=0, attempt=1, endpoint="/v1/x", model=None, custom_ids=["a"]
    )
    filled.intend_shard(
        run_id="run_1", shard=1, attempt=1, endpoint="/v1/x", model=None, custom_ids=["b"]
    )
    filled.intend_shard(
        run_id="run_2", shard=0, attempt=1, endpoint="/v1/x", model=None, custom_ids=["c"]
    )
    filled.mark_state(one.id, "abandoned")
    filled.note(one.id, "odd", "a")
    filled.note(one.id, "odder")
    filled.note(one.id, "oddest")
    stats = filled.stats()
    assert path == stats.path
    assert SCHEMA_VERSION == stats.schema_version
    assert (5, 1) == (stats.answers, stats.not_answers)
    assert (100, 6) == (stats.prompt_tokens, stats.completion_tokens)
    assert (
        AnswerGroup("/v1/chat/completions", "m1", "immediate", 3, 40, 4),
        AnswerGroup("/v1/chat/completions", "m2", "batch", 1, 20, 2),
        AnswerGroup("/v1/embeddings", None, "batch", 1, 40, 0),
    ) == stats.groups
    assert 2 == stats.runs
    assert {"abandoned": 1, "intended": 2} == dict(stats.shards)
    assert ["abandoned", "intended"] == list(stats.shards)
    assert 3 == stats.anomalies
    files = [path, Path(f"{path}-wal"), Path(f"{path}-shm")]
    assert all(f.exists() for f in files)
    assert sum(f.stat().st_size for f in files) == stats.size_bytes


def test_stats_of_an_empty_store(store: Store, path: Path) -> None:
    stats = store.stats()
    assert (0, 0, 0, 0, (), 0, {}, 0) == (
        stats.answers,
        stats.not_answers,
        stats.prompt_tokens,
        stats.completion_tokens,
        stats.groups,
        stats.runs,
        dict(stats.shards),
        stats.anomalies,
    )
    assert path.stat().st_size <= stats.size_bytes
    assert (0, 0) == store.usage()
    assert 0 == store.response_count()


def test_stats_count_a_vanished_side_file_as_nothing(store: Store, path: Path) -> None:
    store.put_responses([(op("a"), answer(1, 1))])
    with_side_files = store.stats().size_bytes
    Path(f"{path}-shm").rename(path.parent / "elsewhere")
    try:
        assert (
            with_side_files - (path.parent / "elsewhere").stat().st_size == store.stats().size_bytes
        )
    finally:
        (path.parent / "elsewhere").rename(f"{path}-shm")


def test_usage_sums_the_tokens_of_every_body(filled: Store) -> None:
    assert (100, 6) == filled.usage()
    assert 5 == filled.response_count()


def test_check_of_a_sound_store_finds_nothing(filled: Store) -> None:
    assert [] == filled.check()


def test_check_lists_what_sqlite_finds_wrong(store: Store, path: Path) -> None:
    store.put_responses([(op(str(i), model=f"m{i}"), answer(i, i)) for i in range(50)])
    problems = check_with_a_broken_index(store)
    assert problems
    assert "ok" not in problems
    assert any(re.search(r"index|row|missing|wrong", p) for p in problems)


def check_with_a_broken_index(store: Store) -> list[str]:
    """``check()`` of a store whose model index was redefined behind SQLite's back."""
    conn = store._conn
    conn.execute("CREATE INDEX responses_model ON responses(model)")
    conn.execute("PRAGMA writable_schema = ON")
    (root,) = conn.execute(
        "SELECT rootpage FROM sqlite_master WHERE name = 'responses_model'"
    ).fetchone()
    conn.execute(
        "UPDATE sqlite_master SET sql = 'CREATE INDEX responses_model ON responses(endpoint)' "
        "WHERE name = 'responses_model'"
    )
    conn.execute("PRAGMA writable_schema = OFF")
    assert root
    store.close()
    with Store(store.path) as again:
        return again.check()
