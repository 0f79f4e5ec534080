"""Claims and leases in the store: one key, one live shard, whoever asks and whenever."""

from __future__ import annotations

import sqlite3
import tempfile
from collections.abc import Sequence
from pathlib import Path

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from tests.batch.test_journal import write_v1_store

from inert import Store
from inert._claims import ShardIntent
from inert._store import PENDING_STATES, SCHEMA_VERSION

LEASE = 60.0


def one_shard(keys: Sequence[str]) -> list[ShardIntent]:
    """A planner that puts every free key into one shard (none when no key is free)."""
    return [ShardIntent("/v1/x", "m", list(keys))] if keys else []


def opened(location: str, *runs: str) -> Store:
    """A fresh store (of the parametrised backend) with these runs journaled."""
    store = Store(location)
    for run in runs:
        store.begin_run(run, {})
    return store


def test_free_keys_go_into_new_shards_that_the_run_holds(store_location: str) -> None:
    """A first claim journals one intended shard, owned by the run, claiming every key."""
    with opened(store_location, "a") as store:
        claim = store.claim_shards(
            run_id="a", keys=["k1", "k2"], plan=one_shard, lease=LEASE, now=100
        )
        (record,) = claim.records
        assert ("intended", "a", 160.0) == (record.state, record.owner, record.lease_expires_at)
        assert ((), (), {}) == (claim.taken, claim.held, dict(claim.answered))
        assert ["k1", "k2"] == store.claims_of(record.id)
        assert ["k1", "k2"] == sorted(store.shard_custom_ids(record.id))


def test_a_shard_under_a_live_lease_is_held_and_not_copied(store_location: str) -> None:
    """Another run asking the same keys while the lease is live gets the shard to wait for."""
    with opened(store_location, "a", "b") as store:
        (mine,) = store.claim_shards(
            run_id="a", keys=["k1", "k2"], plan=one_shard, lease=LEASE, now=100
        ).records
        other = store.claim_shards(
            run_id="b", keys=["k2", "k3"], plan=one_shard, lease=LEASE, now=159
        )
        assert [mine.id] == [r.id for r in other.held]
        assert {"k2": mine.id} == dict(other.shard_of)
        (fresh,) = other.records
        assert ["k3"] == store.claims_of(fresh.id)
        assert 2 == len(store.shards())


def test_a_shard_whose_lease_expired_is_taken_over_not_copied(store_location: str) -> None:
    """Once the owner's lease ran out, the next run holds the same shard; nothing new is made."""
    with opened(store_location, "a", "b") as store:
        (mine,) = store.claim_shards(
            run_id="a", keys=["k1"], plan=one_shard, lease=LEASE, now=100
        ).records
        later = store.claim_shards(run_id="b", keys=["k1"], plan=one_shard, lease=LEASE, now=160)
        (taken,) = later.taken
        assert (mine.id, "b", 220.0) == (taken.id, taken.owner, taken.lease_expires_at)
        assert ((), ()) == (later.records, later.held)
        assert ("b", 220.0) == (store.shard(mine.id).owner, store.shard(mine.id).lease_expires_at)
        assert 0 == store.renew_leases(owner="a", lease=LEASE, now=161)
        assert store.mark_uploaded(mine.id, "file-a", held_by="a") is None
        assert store.mark_uploaded(mine.id, "file-b", held_by="b") is not None


def test_answered_keys_are_answered_and_claim_nothing(store_location: str) -> None:
    """A key whose answer is stored comes back with its body; only the others are claimed."""
    with opened(store_location, "a", "b") as store:
        (first,) = store.claim_shards(
            run_id="a", keys=["k1"], plan=one_shard, lease=LEASE, now=100
        ).records
        store.store_answers(first, [("k1", {"ok": 1}), ("k9", {"error": {"message": "x"}})])
        claim = store.claim_shards(
            run_id="b", keys=["k1", "k9"], plan=one_shard, lease=LEASE, now=101
        )
        assert {"k1": {"ok": 1}} == dict(claim.answered)
        (record,) = claim.records
        assert ["k9"] == store.claims_of(record.id)


def test_a_released_shard_is_taken_at_once_and_a_collected_one_frees_its_keys(
    store_location: str,
) -> None:
    """Released: taken over without waiting; collected and its claims released: keys free."""
    with opened(store_location, "a", "b", "c") as store:
        (pending,) = store.claim_shards(
            run_id="a", keys=["k1"], plan=one_shard, lease=LEASE, now=100
        ).records
        (done,) = store.claim_shards(
            run_id="a", keys=["k2"], plan=one_shard, lease=LEASE, now=100
        ).records
        store.transition(done.id, ("intended",), "failed", held_by="a")
        held = store.claim_shards(run_id="b", keys=["k2"], plan=one_shard, lease=LEASE, now=101)
        assert [done.id] == [r.id for r in held.held]  # its owner has not decided yet
        assert 1 == store.release_claims(done.id)
        assert 0 == store.release_claims(pending.id)  # a pending shard keeps its claims
        assert 2 == store.release_leases(owner="a")
        claim = store.claim_shards(
            run_id="c", keys=["k1", "k2"], plan=one_shard, lease=LEASE, now=102
        )
        assert [pending.id] == [r.id for r in claim.taken]
        (fresh,) = claim.records
        assert ["k2"] == store.claims_of(fresh.id)


def test_a_lost_shard_nobody_holds_is_given_up_and_its_keys_claimed_anew(
    store_location: str,
) -> None:
    """A shard whose output expired is abandoned by the next claim; its keys go in a new shard."""
    with opened(store_location, "a", "b") as store:
        (lost,) = store.claim_shards(
            run_id="a", keys=["k1"], plan=one_shard, lease=LEASE, now=100
        ).records
        store.transition(lost.id, ("intended",), "lost", error="expired")
        claim = store.claim_shards(run_id="b", keys=["k1"], plan=one_shard, lease=LEASE, now=200)
        assert "abandoned" == store.shard(lost.id).state
        (fresh,) = claim.records
        assert ["k1"] == store.claims_of(fresh.id)


def test_take_over_is_a_compare_and_set_on_the_lease(store_location: str) -> None:
    """take_over succeeds only once the lease expired, and never for a collected shard."""
    with opened(store_location, "a") as store:
        (record,) = store.claim_shards(
            run_id="a", keys=["k1"], plan=one_shard, lease=LEASE, now=100
        ).records
        assert store.take_over(record.id, owner="b", lease=LEASE, now=159) is None
        taken = store.take_over(record.id, owner="b", lease=LEASE, now=160)
        assert taken is not None
        assert ("b", 220.0) == (taken.owner, taken.lease_expires_at)
        assert taken.leased(219.9)
        assert not taken.leased(220)
        store.transition(record.id, ("intended",), "abandoned")
        assert store.take_over(record.id, owner="c", lease=LEASE, now=500) is None


def test_a_resubmission_moves_the_claims_of_its_lines(store_location: str) -> None:
    """A child shard of the owner takes its lines' claims from the parent it resubmits."""
    with opened(store_location, "a") as store:
        (parent,) = store.claim_shards(
            run_id="a", keys=["k1", "k2"], plan=one_shard, lease=LEASE, now=100
        ).records
        store.transition(parent.id, ("intended",), "downloaded")
        child = store.intend_shard(
            run_id="a",
            shard=1,
            attempt=2,
            endpoint="/v1/x",
            model="m",
            custom_ids=["k2"],
            parent_id=parent.id,
            owner="a",
            lease_expires_at=1e12,
        )
        assert ["k1"] == store.claims_of(parent.id)
        assert ["k2"] == store.claims_of(child.id)


def test_a_planner_that_reuses_a_key_is_refused_and_nothing_is_written(store_location: str) -> None:
    """Claiming is one transaction: a bad plan leaves no shard and no claim behind."""
    with opened(store_location, "a") as store:
        with pytest.raises(ValueError, match="not free"):
            store.claim_shards(
                run_id="a",
                keys=["k1"],
                plan=lambda keys: [ShardIntent("/v1/x", None, ["k1"])] * 2,
                lease=LEASE,
                now=1,
            )
        assert [] == store.shards()
        assert [] == store.pending_shards_for(["k1"])


def test_an_older_store_gets_claims_for_its_pending_shards(tmp_path: Path) -> None:
    """Migrating to schema 3 claims the lines of pending shards for them, with no owner."""
    path = tmp_path / "old.sqlite3"
    write_v1_store(path)
    with Store(path) as store:
        (record,) = store.shards()
        assert (None, None) == (record.owner, record.lease_expires_at)
        assert ["k1"] == store.claims_of(record.id)
        store.begin_run("new", {})
        claim = store.claim_shards(run_id="new", keys=["k1"], plan=one_shard, lease=1, now=5)
        # k1 has an answer in that store already
        assert {"k1": {"a": 1}} == dict(claim.answered)
    with sqlite3.connect(path) as conn:
        indexes = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    conn.close()
    assert {"shards_owner", "claims_shard"} <= indexes
    assert "shard_lines_custom_id" not in indexes
    assert 3 == SCHEMA_VERSION


KEYS = [f"k{i}" for i in range(5)]
OWNERS = ["a", "b", "c"]


class Claims(RuleBasedStateMachine):
    """Several owners claim, renew, release, collect and take over, with time moving on."""

    def __init__(self) -> None:
        super().__init__()
        self.folder = tempfile.TemporaryDirectory()
        self.store = Store(Path(self.folder.name) / "s.sqlite3")
        for owner in OWNERS:
            self.store.begin_run(owner, {})
        self.now = 1000.0

    def teardown(self) -> None:
        self.store.close()
        self.folder.cleanup()

    def _live_pending(self) -> list[tuple[str, str]]:
        """``(key, owner)`` of every line of a pending shard an owner holds by a live lease."""
        out = []
        for record in self.store.shards(states=PENDING_STATES):
            if record.state != "lost" and record.leased(self.now):
                assert record.owner is not None
                out += [(key, record.owner) for key in self.store.shard_custom_ids(record.id)]
        return out

    @rule(owner=st.sampled_from(OWNERS), keys=st.lists(st.sampled_from(KEYS), min_size=1))
    def claim(self, owner: str, keys: list[str]) -> None:
        before = {r.id: r for r in self.store.shards()}
        claim = self.store.claim_shards(
            run_id=owner, keys=keys, plan=one_shard, lease=LEASE, now=self.now
        )
        for record in claim.held:
            assert record.owner != owner
            assert record.leased(self.now)
        for record in claim.taken:
            old = before[record.id]
            # An expired (or released, or own) lease is always taken over, never held.
            assert old.owner == owner or not old.leased(self.now)
            assert old.state in PENDING_STATES
        for record in (*claim.taken, *claim.records):
            assert (owner, self.now + LEASE) == (
                self.store.shard(record.id).owner,
                self.store.shard(record.id).lease_expires_at,
            )
        sorted_out = {*claim.answered, *claim.shard_of}
        for record in claim.records:
            sorted_out |= set(self.store.claims_of(record.id))
        assert set(keys) == sorted_out
        # A shard that was pending and expired under another owner is never held.
        for record in before.values():
            claimed = set(self.store.claims_of(record.id)) & set(keys)
            expired = not record.leased(self.now) or record.owner == owner
            if claimed and record.state in PENDING_STATES and record.state != "lost" and expired:
                assert record.id in {r.id for r in claim.taken}

    @rule(seconds=st.sampled_from([1.0, 20.0, 59.0, 61.0]))
    def wait(self, seconds: float) -> None:
        self.now += seconds

    @rule(owner=st.sampled_from(OWNERS))
    def renew(self, owner: str) -> None:
        self.store.renew_leases(owner=owner, lease=LEASE, now=self.now)

    @rule(owner=st.sampled_from(OWNERS))
    def release(self, owner: str) -> None:
        self.store.release_leases(owner=owner)

    @precondition(lambda self: bool(self.store.shards(states=PENDING_STATES)))
    @rule(data=st.data(), answer=st.booleans(), lost=st.booleans())
    def collect(self, data: st.DataObject, answer: bool, lost: bool) -> None:
        """The owner of a pending shard it holds collects it (answering its lines or not)."""
        pending = self.store.shards(states=PENDING_STATES)
        record = data.draw(st.sampled_from(pending))
        if record.owner is None or not record.leased(self.now):
            return
        if lost:
            self.store.transition(record.id, PENDING_STATES, "lost", held_by=record.owner)
            return
        keys = self.store.shard_custom_ids(record.id)
        self.store.finish_shard(
            record,
            state="downloaded",
            remote_status="completed",
            answers=[(k, {"k": k}) for k in keys] if answer else [],
            completed=len(keys),
            failed=0,
            output_file_id=None,
            error_file_id=None,
            expect=PENDING_STATES,
            held_by=record.owner,
        )
        self.store.release_claims(record.id)

    @precondition(lambda self: bool(self.store.shards(states=PENDING_STATES)))
    @rule(data=st.data(), owner=st.sampled_from(OWNERS))
    def take_over(self, data: st.DataObject, owner: str) -> None:
        record = data.draw(st.sampled_from(self.store.shards(states=PENDING_STATES)))
        taken = self.store.take_over(record.id, owner=owner, lease=LEASE, now=self.now)
        live_other = record.owner not in (None, owner) and record.leased(self.now)
        assert (taken is None) == live_other

    @invariant()
    def no_key_is_carried_by_two_live_shards(self) -> None:
        keys = [key for key, _ in self._live_pending()]
        assert len(keys) == len(set(keys))

    @invariant()
    def every_pending_line_is_claimed_by_its_shard(self) -> None:
        for record in self.store.shards(states=PENDING_STATES):
            if record.state == "lost":
                continue
            assert sorted(self.store.shard_custom_ids(record.id)) == self.store.claims_of(record.id)


Claims.TestCase.settings = settings(max_examples=40, stateful_step_count=25, deadline=None)
test_claims_never_give_a_key_to_two_live_shards = Claims.TestCase


def test_expired_leases_of_a_gone_owner_are_taken_at_once(store_location: str) -> None:
    """expire_leases ends an owner's live leases: the next claim takes its shard over."""
    with opened(store_location, "a", "b") as store:
        (record,) = store.claim_shards(
            run_id="a", keys=["k1"], plan=one_shard, lease=LEASE, now=100
        ).records
        assert 1 == store.expire_leases(owner="a", now=101)
        assert 0 == store.expire_leases(owner="a", now=101)
        claim = store.claim_shards(run_id="b", keys=["k1"], plan=one_shard, lease=LEASE, now=101)
        assert [record.id] == [r.id for r in claim.taken]


def test_released_claims_keep_the_lines_to_submit_again(store_location: str) -> None:
    """release_claims(keep=...) frees a collected shard's other lines and keeps those."""
    with opened(store_location, "a") as store:
        (record,) = store.claim_shards(
            run_id="a", keys=["k1", "k2", "k3"], plan=one_shard, lease=LEASE, now=100
        ).records
        assert 0 == store.release_claims(record.id, keep=["k2"])  # still pending
        store.transition(record.id, ("intended",), "downloaded", held_by="a")
        assert 2 == store.release_claims(record.id, keep=["k2"])
        assert ["k2"] == store.claims_of(record.id)


def test_a_run_remembers_its_process(store_location: str) -> None:
    """begin_run keeps the host and pid of the run's process; run_process reads them back."""
    with opened(store_location) as store:
        store.begin_run("r", {}, host="box", pid=42)
        assert ("box", 42) == store.run_process("r")
        assert store.run_process("nobody") is None
