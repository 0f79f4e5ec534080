"""The journal's small row operations, exactly: anomalies, notes, state moves, look-ups.

Unit-level, on a fresh SQLite store: each operation's exact rows and return values,
so a change in what ``inert batches show`` lists, or in which shard a batch id finds,
fails here.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from inert import Store
from inert._journal import custom_ids_digest


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store(tmp_path / "journal.db") as opened:
        yield opened


def shard(store: Store, run: str = "run_t", index: int = 0, ids: tuple[str, ...] = ("a",)) -> int:
    store.begin_run(run, {})
    return store.intend_shard(
        run_id=run, shard=index, attempt=1, endpoint="/v1/x", model=None, custom_ids=list(ids)
    ).id


def test_the_digest_is_the_sha256_of_the_sorted_ids_one_per_line() -> None:
    assert hashlib.sha256(b"a\nb\nc").hexdigest() == custom_ids_digest(["c", "a", "b"])
    assert hashlib.sha256("é".encode()).hexdigest() == custom_ids_digest(["é"])
    assert hashlib.sha256(b"").hexdigest() == custom_ids_digest([])


def test_notes_are_listed_per_shard_in_order(store: Store) -> None:
    one, two = shard(store, index=0), shard(store, index=1, ids=("b",))
    store.note(one, "first", "k1")
    store.note(two, "other shard")
    store.note(one, "second")
    assert [
        (one, "k1", "first"),
        (two, None, "other shard"),
        (one, None, "second"),
    ] == store.anomalies()
    assert [(one, "k1", "first"), (one, None, "second")] == store.anomalies(one)
    assert [(two, None, "other shard")] == store.anomalies(two)
    assert [] == store.anomalies(two + 100)


def test_mark_state_moves_from_the_current_state_and_keeps_an_error(store: Store) -> None:
    shard_id = shard(store)
    moved = store.mark_state(shard_id, "abandoned", "it failed")
    assert ("abandoned", "it failed") == (moved.state, moved.error)
    assert ("abandoned", "it failed") == (store.shard(shard_id).state, store.shard(shard_id).error)
    again = store.mark_state(shard_id, "collected")
    assert ("collected", "it failed") == (again.state, again.error)


def test_mark_state_only_from_other_states_changes_nothing(store: Store) -> None:
    shard_id = shard(store)
    kept = store.mark_state(shard_id, "abandoned", "no", only_from=("created",))
    assert ("intended", None) == (kept.state, kept.error)
    moved = store.mark_state(shard_id, "abandoned", only_from=("created", "intended"))
    assert ("abandoned", None) == (moved.state, moved.error)


def test_find_shard_by_batch_id_or_row_id(store: Store) -> None:
    shard_id = shard(store)
    other = shard(store, index=1, ids=("b",))
    store.transition(other, ("intended",), "created", batch_id="batch_42")
    found = store.find_shard("batch_42")
    assert found is not None
    assert other == found.id
    by_row = store.find_shard(str(shard_id))
    assert by_row is not None
    assert shard_id == by_row.id
    assert store.find_shard("batch_missing") is None
    assert store.find_shard("999") is None
    assert store.find_shard(str(2**63)) is None  # past SQLite's largest row id
    assert store.find_shard("١") is None  # a digit, but not an ASCII one
    assert store.find_shard("") is None
