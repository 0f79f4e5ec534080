"""Claims and leases, call by call: the exact rows, counts and errors of each method.

Unit-level, on a fresh SQLite store per test with the time passed in (as the runner
passes it): which keys the planner sees, what a new shard is numbered, what a lost
shard's row says once given up, which leases each call renews, ends or releases and
how many it reports. ``tests/store/test_claims.py`` holds the laws over both
backends; these pin the figures that a change of a boundary or a count would move.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from inert import Store
from inert._claims import Claim, Planner, ShardIntent

LEASE = 60.0


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "claims.sqlite3"


@pytest.fixture
def store(path: Path) -> Iterator[Store]:
    with Store(path) as opened:
        for run in ("a", "b", "c"):
            opened.begin_run(run, {})
        yield opened


def one_shard(keys: Sequence[str]) -> list[ShardIntent]:
    return [ShardIntent("/v1/x", "m", list(keys))] if keys else []


def claim(
    store: Store, run: str, keys: Sequence[str], now: float, *, plan: Planner = one_shard
) -> Claim:
    return store.claim_shards(run_id=run, keys=keys, plan=plan, lease=LEASE, now=now)


def row(path: Path, shard_id: int) -> tuple[object, ...]:
    conn = sqlite3.connect(path)
    try:
        found = conn.execute(
            "SELECT state, error, owner, lease_expires_at, updated_at FROM shards WHERE id = ?",
            (shard_id,),
        ).fetchone()
    finally:
        conn.close()
    assert found is not None
    return tuple(found)


def test_the_planner_sees_each_free_key_once_in_the_order_asked(store: Store) -> None:
    seen: list[list[str]] = []

    def plan(keys: Sequence[str]) -> list[ShardIntent]:
        seen.append(list(keys))
        return []

    (held,) = claim(store, "a", ["h"], 100).records
    done = claim(store, "b", ["k3", "k1", "h", "k3", "k2", "k1"], 101, plan=plan)
    assert [["k3", "k1", "k2"]] == seen
    assert () == done.records
    assert [held.id] == [r.id for r in done.held]
    assert {"h": held.id} == dict(done.shard_of)


def test_new_shards_are_numbered_after_the_runs_last_and_kept_in_plan_order(store: Store) -> None:
    store.intend_shard(
        run_id="a", shard=6, attempt=1, endpoint="/v1/x", model=None, custom_ids=["old"]
    )

    def plan(keys: Sequence[str]) -> list[ShardIntent]:
        return [
            ShardIntent("/v1/y", "m2", ["k2"], tokens=7, attempt=3, parent_id=1),
            ShardIntent("/v1/x", None, ["k1", "k3"]),
        ]

    made = claim(store, "a", ["k1", "k2", "k3"], 100, plan=plan).records
    assert [
        (7, "/v1/y", "m2", 7, 3, 1, 1, "a", 160.0, 100.0),
        (8, "/v1/x", None, 0, 1, None, 2, "a", 160.0, 100.0),
    ] == [
        (
            r.shard,
            r.endpoint,
            r.model,
            r.tokens,
            r.attempt,
            r.parent_id,
            r.size,
            r.owner,
            r.lease_expires_at,
            r.created_at,
        )
        for r in made
    ]
    assert [["k2"], ["k1", "k3"]] == [store.claims_of(r.id) for r in made]
    first = claim(store, "b", ["n"], 100).records
    assert [0] == [r.shard for r in first]  # numbers are per run


def test_a_planner_that_uses_a_key_not_free_is_refused_with_a_count(store: Store) -> None:
    claim(store, "a", ["held"], 100)

    def greedy(keys: Sequence[str]) -> list[ShardIntent]:
        return [ShardIntent("/v1/x", None, [*keys, "held", "never-asked"])]

    with pytest.raises(ValueError, match="not free") as raised:
        claim(store, "b", ["held", "k1"], 101, plan=greedy)
    assert "the planner put 2 keys that are not free (or twice) into a shard, e.g. 'held'" == str(
        raised.value
    )
    assert 1 == len(store.shards())


def test_a_key_planned_twice_is_refused(store: Store) -> None:
    def twice(keys: Sequence[str]) -> list[ShardIntent]:
        return [ShardIntent("/v1/x", None, ["k1"]), ShardIntent("/v1/x", None, ["k1", "k2"])]

    with pytest.raises(ValueError, match="not free") as raised:
        claim(store, "a", ["k1", "k2"], 100, plan=twice)
    assert str(raised.value).startswith("the planner put 1 keys that are not free")
    assert str(raised.value).endswith("e.g. 'k1'")
    assert [] == store.shards()


def test_a_run_retakes_its_own_live_shard(store: Store, path: Path) -> None:
    (mine,) = claim(store, "a", ["k1"], 100).records
    again = claim(store, "a", ["k1"], 130)
    (taken,) = again.taken
    assert ((), ()) == (again.records, again.held)
    assert (mine.id, "a", 190.0) == (taken.id, taken.owner, taken.lease_expires_at)
    assert ("intended", None, "a", 190.0, 130.0) == row(path, mine.id)
    assert {"k1": mine.id} == dict(again.shard_of)


@pytest.mark.parametrize("state", ["uploaded", "created", "cancelling"])
def test_a_pending_shard_of_an_ended_run_is_taken_in_any_pending_state(
    store: Store, path: Path, state: str
) -> None:
    (record,) = claim(store, "a", ["k1"], 100).records
    store.transition(record.id, ("intended",), state)
    store.release_leases(owner="a")
    (taken,) = claim(store, "b", ["k1"], 101).taken
    assert (record.id, state, "b") == (taken.id, taken.state, taken.owner)
    assert (state, None, "b", 161.0, 101.0) == row(path, record.id)


def test_a_lost_shard_is_abandoned_with_the_reason_and_its_keys_go_to_a_new_shard(
    store: Store, path: Path
) -> None:
    (lost,) = claim(store, "a", ["k1", "k2"], 100).records
    store.transition(lost.id, ("intended",), "lost", error="its output file expired")
    store.release_leases(owner="a")
    again = claim(store, "b", ["k1"], 200)
    assert (
        "abandoned",
        "its output file expired; its unanswered lines were claimed again",
        None,
        None,
        200.0,
    ) == row(path, lost.id)
    assert [] == store.claims_of(lost.id)  # k2's claim went too: the shard is given up
    (fresh,) = again.records
    assert ["k1"] == store.claims_of(fresh.id)
    assert ((), (), {}) == (again.taken, again.held, dict(again.shard_of))


def test_a_stale_claim_of_a_finished_shard_is_dropped(store: Store, path: Path) -> None:
    (done,) = claim(store, "a", ["k1", "k2"], 100).records
    store.transition(done.id, ("intended",), "downloaded")
    store.release_leases(owner="a", shard_ids=[])  # nothing released: still held
    assert [done.id] == [r.id for r in claim(store, "b", ["k1"], 101).held]
    again = claim(store, "b", ["k1"], 160)  # a's lease ended, its claims were never released
    (fresh,) = again.records
    assert ["k1"] == store.claims_of(fresh.id)
    assert [] == store.claims_of(done.id)  # k2's stale claim went too
    assert ((), ()) == (again.taken, again.held)
    assert ("downloaded", None, "a", 160.0) == row(path, done.id)[:4]


def test_answered_keys_of_many_chunks_are_found(store: Store) -> None:
    (record,) = claim(store, "a", [f"k{i:04}" for i in range(1100)], 100).records
    store.store_answers(record, [(f"k{i:04}", {"n": i}) for i in (0, 600, 1099)])
    again = claim(store, "b", [f"k{i:04}" for i in (1099, 600, 0, 5)], 150)
    assert {"k1099": {"n": 1099}, "k0600": {"n": 600}, "k0000": {"n": 0}} == dict(again.answered)
    assert [record.id] == [r.id for r in again.held]
    assert {"k0005": record.id} == dict(again.shard_of)


def test_claims_of_many_chunks_are_found(store: Store) -> None:
    keys = [f"k{i:04}" for i in range(1100)]
    (record,) = claim(store, "a", keys, 100).records
    again = claim(store, "b", keys[::-1], 101)
    assert () == again.records
    assert dict.fromkeys(keys, record.id) == dict(again.shard_of)


def test_renewing_extends_only_the_owners_leases(store: Store, path: Path) -> None:
    (one,) = claim(store, "a", ["k1"], 100).records
    (two,) = claim(store, "a", ["k2"], 100).records
    (other,) = claim(store, "b", ["k3"], 100).records
    assert 2 == store.renew_leases(owner="a", lease=30, now=120)
    assert [150.0, 150.0, 160.0] == [row(path, r.id)[3] for r in (one, two, other)]
    assert 1 == store.renew_leases(owner="a", lease=30, now=140, shard_ids=[two.id, other.id])
    assert [150.0, 170.0, 160.0] == [row(path, r.id)[3] for r in (one, two, other)]
    assert 0 == store.renew_leases(owner="a", lease=30, now=140, shard_ids=[])
    assert 0 == store.renew_leases(owner="c", lease=30, now=140)


def test_renewing_and_releasing_more_than_one_chunk_of_shards_counts_them_all(
    store: Store, path: Path
) -> None:
    (one,) = claim(store, "a", ["k1"], 100).records
    (two,) = claim(store, "a", ["k2"], 100).records
    ids = [one.id, *range(10_000, 10_499), two.id]  # 501 ids: two chunks, one shard in each
    assert 2 == store.renew_leases(owner="a", lease=30, now=120, shard_ids=ids)
    assert [150.0, 150.0] == [row(path, r.id)[3] for r in (one, two)]
    assert 2 == store.release_leases(owner="a", shard_ids=ids)
    assert [(None, None), (None, None)] == [row(path, r.id)[2:4] for r in (one, two)]


def test_expiring_ends_only_live_leases_of_the_owner(store: Store, path: Path) -> None:
    (live,) = claim(store, "a", ["k1"], 100).records
    (ended,) = claim(store, "a", ["k2"], 0).records  # its lease ended at 60
    (other,) = claim(store, "b", ["k3"], 100).records
    assert 1 == store.expire_leases(owner="a", now=100)
    assert [100.0, 60.0, 160.0] == [row(path, r.id)[3] for r in (live, ended, other)]
    assert 0 == store.expire_leases(owner="a", now=100)
    assert 1 == store.expire_leases(owner="b", now=159.5)
    assert 0 == store.expire_leases(owner="b", now=159.5)


def test_releasing_some_leases_keeps_the_others(store: Store, path: Path) -> None:
    (pending,) = claim(store, "a", ["k1"], 100).records
    (done,) = claim(store, "a", ["k2"], 100).records
    (kept,) = claim(store, "a", ["k3"], 100).records
    store.transition(done.id, ("intended",), "failed")
    assert 2 == store.release_leases(owner="a", shard_ids=[pending.id, done.id])
    assert 0 == store.release_leases(owner="b", shard_ids=[kept.id])
    assert [(None, None), (None, None), ("a", 160.0)] == [
        row(path, r.id)[2:4] for r in (pending, done, kept)
    ]
    assert (["k1"], [], ["k3"]) == (
        store.claims_of(pending.id),
        store.claims_of(done.id),
        store.claims_of(kept.id),
    )
    assert 1 == store.release_leases(owner="a")
    assert 0 == store.release_leases(owner="a")


def test_releasing_every_lease_drops_the_claims_of_finished_shards_only(
    store: Store,
) -> None:
    (pending,) = claim(store, "a", ["k1"], 100).records
    (done,) = claim(store, "a", ["k2", "k3"], 100).records
    store.transition(done.id, ("intended",), "downloaded")
    assert 2 == store.release_leases(owner="a")
    assert (["k1"], []) == (store.claims_of(pending.id), store.claims_of(done.id))


def test_releasing_claims_counts_what_it_dropped(store: Store) -> None:
    (record,) = claim(store, "a", ["k3", "k1", "k2"], 100).records
    assert ["k1", "k2", "k3"] == store.claims_of(record.id)
    store.transition(record.id, ("intended",), "downloaded")
    assert 0 == store.release_claims(record.id, keep=["k1", "k2", "k3"])
    assert 1 == store.release_claims(record.id, keep=["k1", "k2", "other"])
    assert ["k1", "k2"] == store.claims_of(record.id)
    assert 2 == store.release_claims(record.id)
    assert 0 == store.release_claims(record.id)


@pytest.mark.parametrize("state", ["intended", "uploaded", "created", "cancelling", "lost"])
def test_a_pending_shard_keeps_its_claims(store: Store, state: str) -> None:
    (record,) = claim(store, "a", ["k1"], 100).records
    store.mark_state(record.id, state)
    assert 0 == store.release_claims(record.id)
    assert 0 == store.release_claims(record.id, keep=["x"])
    assert ["k1"] == store.claims_of(record.id)


def test_take_over_whenever_nobody_else_holds_the_lease(store: Store, path: Path) -> None:
    (record,) = claim(store, "a", ["k1"], 100).records
    assert store.take_over(record.id, owner="b", lease=10, now=159.9) is None
    own = store.take_over(record.id, owner="a", lease=10, now=120)  # its own live lease
    assert own is not None
    assert ("a", 130.0, 120.0) == (own.owner, own.lease_expires_at, own.updated_at)
    at_end = store.take_over(record.id, owner="b", lease=10, now=130)  # ends at this moment
    assert at_end is not None
    assert ("b", 140.0) == (at_end.owner, at_end.lease_expires_at)
    store.release_leases(owner="b")
    free = store.take_over(record.id, owner="c", lease=10, now=131)
    assert free is not None
    assert ("c", 141.0) == (free.owner, free.lease_expires_at)
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("UPDATE shards SET lease_expires_at = NULL WHERE id = ?", (record.id,))
    conn.close()
    no_lease = store.take_over(record.id, owner="a", lease=10, now=132)
    assert no_lease is not None
    assert ("a", 142.0) == (no_lease.owner, no_lease.lease_expires_at)


@pytest.mark.parametrize("state", ["intended", "uploaded", "created", "cancelling", "lost"])
def test_take_over_of_any_pending_state(store: Store, state: str) -> None:
    (record,) = claim(store, "a", ["k1"], 100).records
    store.mark_state(record.id, state)
    taken = store.take_over(record.id, owner="b", lease=10, now=500)
    assert taken is not None
    assert (state, "b") == (taken.state, taken.owner)


@pytest.mark.parametrize("state", ["downloaded", "abandoned", "failed"])
def test_no_take_over_of_a_finished_shard(store: Store, state: str) -> None:
    (record,) = claim(store, "a", ["k1"], 100).records
    store.mark_state(record.id, state)
    assert store.take_over(record.id, owner="b", lease=10, now=500) is None
    assert "a" == store.shard(record.id).owner
