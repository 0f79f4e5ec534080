"""What only the PostgreSQL store has: a server to reach, credentials to keep secret, a shared schema.

The server is the throwaway cluster of tests/_postgres.py; its ``worker`` role logs in
over TCP with a password, which no error text, log record, repr or server log may show.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
import traceback
from collections.abc import Sequence
from pathlib import Path

import psycopg
import pytest
from tests._postgres import PASSWORD, Cluster, fresh_database, fresh_schema, server_required

from inert import Op, Store
from inert._claims import ShardIntent
from inert._cli import main
from inert._json import JSON
from inert._sql import redact, to_pyformat
from inert._store import SCHEMA_VERSION
from inert._store_pg import PostgresStore
from inert.errors import (
    NewerStoreError,
    NotAStoreError,
    StoreConnectionError,
    StoreError,
    StoreNotFoundError,
)


def op(i: int) -> Op[JSON]:
    """The ``i``-th small op."""
    return Op(endpoint="/v1/chat/completions", body={"i": i}, decode=lambda raw: raw)


def _text_of(exc: BaseException) -> str:
    """Everything a traceback of ``exc`` would print, causes and contexts included."""
    return "".join(traceback.format_exception(exc))


def test_ci_requires_the_server_so_its_tests_never_skip_quietly() -> None:
    """INERT_REQUIRE_POSTGRES says whether a missing server fails (1) or skips (0) the tests;
    unset, CI requires it and a developer's machine does not; any other value is refused."""
    assert server_required({"INERT_REQUIRE_POSTGRES": "1"})
    assert server_required({"CI": "true"})
    assert not server_required({"CI": "true", "INERT_REQUIRE_POSTGRES": "0"})
    assert not server_required({})
    assert not server_required({"CI": ""})
    with pytest.raises(ValueError, match="must be 0 or 1"):
        server_required({"INERT_REQUIRE_POSTGRES": "yes"})


def test_redact_drops_the_password_wherever_the_url_carries_it() -> None:
    """The authority's password and a ``password=`` parameter are left out; the rest stays."""
    assert (
        redact("postgresql://u:p%40ss@db.example:5433/app") == "postgresql://u@db.example:5433/app"
    )
    assert redact("postgres://u@h/app?password=x&sslmode=require") == (
        "postgres://u@h/app?sslmode=require"
    )
    assert redact("postgresql://:only@h/app") == "postgresql://h/app"
    assert redact("postgresql:///app?host=/tmp/sock") == "postgresql:///app?host=/tmp/sock"


def test_placeholders_translate_outside_quotes_only() -> None:
    """``?`` becomes ``%s``; a literal ``%`` is escaped; quoted text is left as it is."""
    assert to_pyformat("SELECT ? WHERE a LIKE 'x?%' AND b = ?") == (
        "SELECT %s WHERE a LIKE 'x?%%' AND b = %s"
    )
    assert to_pyformat('SELECT "we?ird" FROM t WHERE 5 % 2 = ?') == (
        'SELECT "we?ird" FROM t WHERE 5 %% 2 = %s'
    )


def test_a_password_never_reaches_an_error_a_log_or_a_repr(
    postgres_cluster: Cluster, caplog: pytest.LogCaptureFixture
) -> None:
    """Right and wrong passwords stay out of every message the store makes, and out of logs."""
    caplog.set_level(logging.DEBUG)
    database = "secrets_db"
    fresh_database(postgres_cluster, database)
    url = postgres_cluster.password_url(database)
    wrong = "wr0ng-Pa55-also-secret"
    shown: list[str] = []
    with Store(url) as store:
        store.put_responses([(op(1), {"ok": True})])
        shown += [repr(store), store.location, str(store.stats()), str(store.path)]
    with pytest.raises(StoreConnectionError) as refused:
        Store(postgres_cluster.password_url(database, wrong))
    shown.append(_text_of(refused.value))
    assert "password authentication failed" in str(refused.value)
    with psycopg.connect(postgres_cluster.url(database), autocommit=True) as conn:
        conn.execute("UPDATE meta SET value = '999' WHERE key = 'schema_version'")
    with pytest.raises(NewerStoreError) as newer:
        Store(url)
    shown.append(_text_of(newer.value))
    shown += [record.getMessage() for record in caplog.records]
    shown.append(postgres_cluster.log.read_text(errors="replace"))
    for text in shown:
        assert PASSWORD not in text
        assert wrong not in text
    assert "postgresql://worker@127.0.0.1" in shown[0]


def test_a_password_from_the_environment_is_used_and_never_shown(
    postgres_cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A URL without a password connects with PGPASSWORD (libpq's environment)."""
    fresh_database(postgres_cluster, "env_db")
    url = postgres_cluster.password_url("env_db").replace(f":{PASSWORD}@", "@")
    assert PASSWORD not in url
    monkeypatch.setenv("PGPASSWORD", PASSWORD)
    with Store(url) as store:
        assert store.response_count() == 0
    monkeypatch.setenv("PGPASSWORD", "not-it-either")
    with pytest.raises(StoreConnectionError) as refused:
        Store(url)
    assert "not-it-either" not in _text_of(refused.value)


def test_an_unreachable_server_is_a_clear_error(postgres_cluster: Cluster) -> None:
    """Nothing listening: the error names the server (host and port) and what to check."""
    url = "postgresql://someone:hunter2@127.0.0.1:1/app"
    with pytest.raises(StoreConnectionError) as failed:
        PostgresStore(url, connect_timeout=2)
    message = str(failed.value)
    assert "postgresql://someone@127.0.0.1:1/app" in message
    assert "is running and reachable" in message
    assert "hunter2" not in _text_of(failed.value)


def test_a_missing_database_is_a_clear_error(postgres_cluster: Cluster) -> None:
    """The server says which database it does not have; the store says so."""
    with pytest.raises(StoreConnectionError, match='database "no_such_db" does not exist'):
        Store(postgres_cluster.url("no_such_db"))


def test_tables_of_another_application_are_never_taken_over(postgres_url: str) -> None:
    """A schema with a ``responses`` table that is not inert's is refused, untouched."""
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE responses (id int)")
    with pytest.raises(NotAStoreError, match="no inert store"):
        Store(postgres_url)
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        tables = conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
        ).fetchall()
    assert tables == [("responses",)]


def test_a_schema_without_a_store_is_not_found_when_only_reading(postgres_url: str) -> None:
    """create=False on an empty schema raises and creates no table."""
    with pytest.raises(StoreNotFoundError, match="no inert store"):
        Store(postgres_url, create=False)
    with psycopg.connect(postgres_url) as conn:
        (count,) = conn.execute(
            "SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()"
        ).fetchone() or (None,)
    assert count == 0


def test_workers_opening_a_new_store_at_once_create_it_once(postgres_cluster: Cluster) -> None:
    """Eight openers racing on an empty schema: one creates the tables, all can use them."""
    url = fresh_schema(postgres_cluster)
    stores: list[Store] = []
    errors: list[BaseException] = []
    gate = threading.Barrier(8)

    def open_one(i: int) -> None:
        try:
            gate.wait(10)
            store = Store(url)
            store.put_responses([(op(i), {"i": i})])
            stores.append(store)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_one, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    try:
        assert errors == []
        assert stores[0].response_count() == 8
        assert stores[0].stats().schema_version == SCHEMA_VERSION
    finally:
        for store in stores:
            store.close()


def test_without_the_driver_the_error_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """No psycopg installed: opening a URL names the extra to install."""
    monkeypatch.setitem(sys.modules, "psycopg", None)
    with pytest.raises(StoreError, match=r"pip install 'inert\[postgres\]'"):
        Store("postgresql://u:secret@127.0.0.1:1/app")


def test_no_command_shows_the_password_of_a_store_url(
    postgres_cluster: Cluster, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every ``inert`` command given ``--store URL`` (a password in it) names the server
    without the password, whatever it prints: figures, answers, journal lines or errors."""
    fresh_database(postgres_cluster, "cli_db")
    url = postgres_cluster.password_url("cli_db")
    key = op(1).key
    with Store(url) as store:
        store.put_responses([(op(1), {"ok": True})])
    shown = "postgresql://worker@127.0.0.1"
    wrong = postgres_cluster.password_url("cli_db", "wr0ng-Pa55-cli")
    commands = {
        ("store", "stats", "--store", url): (0, shown),
        ("store", "list", "--store", url): (0, key[:12]),
        ("store", "show", key[:12], "--store", url): (0, '"ok"'),
        ("store", "show", "f" * 40, "--store", url): (1, shown),
        ("store", "forget", "--dry-run", key[:12], "--store", url): (0, key[:12]),
        ("store", "check", "--store", url): (0, shown),
        ("batches", "--store", url, "list"): (0, shown),
        ("batches", "--store", url, "list", "--pending"): (0, shown),
        ("batches", "--store", url, "abandon", "999"): (2, "999"),
        ("store", "stats", "--store", wrong): (2, "password authentication failed"),
    }
    for argv, (status, expected) in commands.items():
        assert status == main(list(argv)), argv
        out, err = capsys.readouterr()
        assert expected in out + err, (argv, out, err)
        assert PASSWORD not in out + err, argv
        assert "wr0ng-Pa55-cli" not in out + err, argv


class AheadStore(PostgresStore):
    """The store as a worker sees it whose machine's clock runs an hour ahead of the server's."""

    def _wall_clock(self) -> float:
        return time.time() + 3600.0


def one_shard(keys: Sequence[str]) -> list[ShardIntent]:
    """A planner that puts every free key into one shard (none when no key is free)."""
    return [ShardIntent("/v1/chat/completions", "m", list(keys))] if keys else []


def test_leases_are_kept_by_the_servers_clock_whatever_a_workers_clock_says(
    postgres_url: str,
) -> None:
    """A worker whose clock runs an hour ahead reads the same time as the others (the server's),
    so it sees another worker's 60 s lease as live and waits for that shard, never takes it."""
    keys = [op(i).key for i in range(3)]
    with Store(postgres_url) as here, AheadStore(postgres_url) as ahead:
        assert abs(ahead.clock() - here.clock()) < 5.0  # (not 3600: both read the server)
        for store, run in ((here, "owner"), (ahead, "other")):
            store.begin_run(run, {})
        (mine,) = here.claim_shards(
            run_id="owner", keys=keys, plan=one_shard, lease=60.0, now=here.clock()
        ).records
        seen = ahead.claim_shards(
            run_id="other", keys=keys, plan=one_shard, lease=60.0, now=ahead.clock()
        )
        assert [mine.id] == [r.id for r in seen.held]
        assert ((), ()) == (seen.taken, seen.records)
        assert "owner" == here.shard(mine.id).owner
