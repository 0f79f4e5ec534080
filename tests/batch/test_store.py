"""The Store: file safety, refusing foreign or newer files, decode-on-read, no secrets."""

from __future__ import annotations

import os
import sqlite3
import stat
from pathlib import Path

import openai
import pytest
from tests.billing import settled_ledger

from inert import BatchRunner, Op, Store, call
from inert._json import JSON
from inert._store import SCHEMA_VERSION
from inert.emulator import Emulator
from inert.errors import StoreError
from inert.openai import CHAT_COMPLETIONS

from ._support import ask


def mode(path: Path) -> int:
    """The permission bits of a file."""
    return stat.S_IMODE(os.stat(path).st_mode)


def test_files_are_private(store_path: Path) -> None:
    """The store and its WAL side files are readable by their owner only."""
    with Store(store_path) as store:
        store.begin_run("run_x", {})
        files = [store_path, *(Path(f"{store_path}{s}") for s in ("-wal", "-shm"))]
        assert [0o600] * 3 == [mode(p) for p in files]


def test_default_location_is_project_local(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Store() keeps its file in .inert/store.sqlite3 under the current directory."""
    monkeypatch.chdir(tmp_path)
    with Store() as store:
        assert tmp_path / ".inert" / "store.sqlite3" == store.path
    assert (tmp_path / ".inert" / "store.sqlite3").exists()


def test_newer_schema_is_refused(store_path: Path) -> None:
    """A store written by a newer inert is refused with its version and the fix."""
    Store(store_path).close()
    with sqlite3.connect(store_path) as conn:
        conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(99),))
    conn.close()
    with pytest.raises(StoreError, match=r"newer inert \(store schema version 99; .* up to "):
        Store(store_path)
    assert SCHEMA_VERSION < 99


def test_a_file_that_is_not_sqlite_is_refused_untouched(store_path: Path) -> None:
    """A file that is not a database is refused and left byte for byte as it was."""
    content = b"these are my notes, not a database\n" * 10
    store_path.write_bytes(content)
    with pytest.raises(StoreError, match="not an inert store"):
        Store(store_path)
    assert content == store_path.read_bytes()


def test_a_foreign_sqlite_database_is_refused_untouched(store_path: Path) -> None:
    """Another program's SQLite database is refused and not written to."""
    with sqlite3.connect(store_path) as conn:
        conn.execute("CREATE TABLE notes (text TEXT)")
    conn.close()
    before = store_path.read_bytes()
    with pytest.raises(StoreError, match="SQLite database but not an inert store"):
        Store(store_path)
    assert before == store_path.read_bytes()


def test_responses_round_trip(store: Store) -> None:
    """A stored raw response comes back equal; the first answer of a key is kept."""
    op: Op[JSON] = Op(endpoint="/v1/x", body={"a": 1}, decode=lambda raw: raw)
    store.put_responses([(op, {"usage": {"prompt_tokens": 3, "completion_tokens": 4}})])
    store.put_responses([(op, {"other": True})])
    assert {op.key: {"usage": {"prompt_tokens": 3, "completion_tokens": 4}}} == dict(
        store.get_responses([op.key, "missing"])
    )
    assert (3, 4) == store.usage()


async def test_a_changed_decoder_reuses_the_paid_answer(
    client: openai.AsyncOpenAI, store: Store, emu: Emulator
) -> None:
    """Decoding happens on read: a new decoder for the same call costs no new call."""
    request = ask("decode me")
    first = await BatchRunner(client, store=store, poll_interval=0.01, progress=False).run(request)
    body = request.op.body  # type: ignore[attr-defined]  # pyright: ignore[reportAttributeAccessIssue]  # a call node's op

    def finish_reason(raw: JSON) -> str:
        assert isinstance(raw, dict)
        choices = raw["choices"]
        assert isinstance(choices, list)
        choice = choices[0]
        assert isinstance(choice, dict)
        return str(choice["finish_reason"])

    again = BatchRunner(client, store=store, poll_interval=0.01, progress=False)
    reason = await again.run(call(Op(endpoint=CHAT_COMPLETIONS, body=body, decode=finish_reason)))
    assert "stop" == reason
    assert 1 == again.report.cache_hits
    assert 0 == again.report.batches_created
    assert 1 == settled_ledger(emu).total_billed()
    assert first.words


async def test_the_api_key_is_never_stored(
    client: openai.AsyncOpenAI, store: Store, store_path: Path
) -> None:
    """No byte sequence of the API key appears in the store or its side files."""
    await BatchRunner(client, store=store, poll_interval=0.01, progress=False).run(ask("k"))
    store.close()
    for path in store_path.parent.iterdir():
        assert b"SECRET" not in path.read_bytes()
        assert client.api_key.encode() not in path.read_bytes()
