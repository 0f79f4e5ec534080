"""Claims and leases: many runs on one store, and nobody pays twice.

Every line a run submits belongs to exactly one *claim*: the ``claims`` table maps an
op key (the batch ``custom_id``) to the one shard that carries it. A shard is held by
its *owner* (a run id) until ``lease_expires_at``; a live run renews its leases (its
heartbeat) and releases them when it ends. :meth:`ClaimTables.claim_shards` sorts a
run's keys in one write transaction:

- a key whose answer is stored is *answered*;
- a key claimed by a shard whose lease another owner holds is *held*: the run waits
  for that shard (it claims again later and finds the answer, or the key free);
- a key claimed by a pending shard nobody holds (its owner ended, or died and its
  lease expired) is *taken*: the shard becomes the run's, which resumes it (its
  remote batch is looked up or polled, never submitted blindly); a shard whose
  output expired (``lost``) is given up and its keys are free;
- a key claimed by a shard that is no longer pending and not held is free (its
  claim is stale and deleted); every free key goes into a new shard of the run.

So no key is ever carried by two pending shards that two runs act on, in one
process or many, whatever the interleaving: the transaction is the only arbiter,
nothing relies on memory of the process. The SQL is portable (``?`` placeholders,
``ON CONFLICT``, ``RETURNING``, the time passed as a parameter) so a server database
can run the same claims.

A claim stays on its shard after the shard is collected, while the owner decides
what to do with its lines: resubmitted lines move to the new shard
(:meth:`~inert._journal.JournalTables.intend_shard`), the rest are released with
:meth:`ClaimTables.release_claims` (or, at the latest, :meth:`ClaimTables.release_leases`
when the run ends). A waiter therefore never sees a line free that its owner is about
to submit again.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from typing import Final

import attrs

from inert._answers import error_object
from inert._gc import paused_gc
from inert._journal import (
    PENDING_STATES,
    SHARD_COLUMNS,
    JournalTables,
    ShardRecord,
    key_lists,
)
from inert._json import JSON
from inert._sql import SqlConnection

_CHUNK: Final = 500
"""Keys per ``IN (...)`` list (SQLite allows 32,766 parameters; PostgreSQL 65,535)."""


@attrs.frozen
class ShardIntent:
    """A new shard a run wants: the lines it carries and how they are sent."""

    endpoint: str
    model: str | None
    custom_ids: Sequence[str]
    tokens: int = 0
    attempt: int = 1
    parent_id: int | None = None


@attrs.frozen
class Claim:
    """How :meth:`ClaimTables.claim_shards` sorted a run's keys.

    Attributes:
        records: the new shards of the run (state ``intended``), one per intent the
            planner returned, in its order.
        taken: pending shards the run now holds (taken over from an owner that ended
            or whose lease expired, or already its own): the run resumes them.
        held: shards another owner's live lease holds: the run waits for them.
        answered: the stored answers of keys answered meanwhile.
        shard_of: the shard id of every taken or held key.
    """

    records: tuple[ShardRecord, ...] = ()
    taken: tuple[ShardRecord, ...] = ()
    held: tuple[ShardRecord, ...] = ()
    answered: Mapping[str, JSON] = attrs.field(factory=dict)
    shard_of: Mapping[str, int] = attrs.field(factory=dict)


Planner = Callable[[Sequence[str]], Sequence[ShardIntent]]
"""Cuts the free keys into new shards (each key at most once; keys left out stay free)."""


def _chunks(items: Sequence[str], size: int = _CHUNK) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _marks(count: int) -> str:
    return ",".join("?" * count)


class ClaimTables(JournalTables):
    """The claims half of :class:`~inert.Store` (a mixin over the journal)."""

    def claim_shards(
        self,
        *,
        run_id: str,
        keys: Sequence[str],
        plan: Planner,
        lease: float,
        now: float,
    ) -> Claim:
        """Sort ``keys`` into answered, held, taken and new shards, in ONE write transaction.

        Args:
            run_id: the claiming run (the owner of the shards it gets; its run row
                must exist, :meth:`begin_run`).
            keys: the op keys the run needs answered.
            plan: called (inside the transaction) with the free keys, in the order
                given; returns the new shards to journal for them.
            lease: seconds the run holds its new and taken shards (renew them with
                :meth:`renew_leases`).
            now: the current time (seconds since the epoch).

        Raises:
            ValueError: the planner put a key into a shard that was not free, or
                twice.
        """
        wanted = list(dict.fromkeys(keys))
        until = now + lease
        with paused_gc(), self._transaction() as conn:
            arrays = list(key_lists(wanted))
            answered = self._answered(conn, arrays)
            # Nothing answered (a round's usual case): the same keys, encoded once.
            rest = [key for key in wanted if key not in answered] if answered else wanted
            claimed: dict[str, int] = {}
            records: dict[int, ShardRecord] = {}
            for keys in key_lists(rest) if answered else arrays:
                # Set-based (see inert._journal.KEY_LIST); CROSS JOIN keeps SQLite reading
                # the keys first and looking each up in the claims' index.
                rows = conn.execute(
                    f"SELECT claims.custom_id, {_prefixed('shards')} FROM {self._key_list} "
                    "CROSS JOIN claims JOIN shards ON shards.id = claims.shard_id "
                    "WHERE claims.custom_id = wanted.value",
                    (keys,),
                ).fetchall()
                for row in rows:
                    record = records.get(row[1])
                    if record is None:
                        record = records[row[1]] = ShardRecord(*row[1:])
                    claimed[row[0]] = record.id
            held: list[ShardRecord] = []
            taken: list[ShardRecord] = []
            freed: set[int] = set()
            for record in records.values():
                if record.owner != run_id and record.leased(now):
                    held.append(record)
                elif record.state in PENDING_STATES and record.state != "lost":
                    conn.execute(
                        "UPDATE shards SET owner = ?, lease_expires_at = ?, updated_at = ? "
                        "WHERE id = ?",
                        (run_id, until, now, record.id),
                    )
                    taken.append(attrs.evolve(record, owner=run_id, lease_expires_at=until))
                else:
                    if record.state == "lost":
                        conn.execute(
                            "UPDATE shards SET state = 'abandoned', error = ?, owner = NULL, "
                            "lease_expires_at = NULL, updated_at = ? WHERE id = ?",
                            (
                                f"{record.error}; its unanswered lines were claimed again",
                                now,
                                record.id,
                            ),
                        )
                    conn.execute("DELETE FROM claims WHERE shard_id = ?", (record.id,))
                    freed.add(record.id)
            free = (
                [key for key in rest if key not in claimed or claimed[key] in freed]
                if claimed
                else rest
            )
            new = self._insert_intents(conn, run_id, plan(free), set(free), until, now)
        kept = {r.id for r in (*held, *taken)}
        return Claim(
            records=tuple(new),
            taken=tuple(taken),
            held=tuple(held),
            answered=answered,
            shard_of={key: sid for key, sid in claimed.items() if sid in kept},
        )

    def _answered(self, conn: SqlConnection, arrays: Iterable[str]) -> dict[str, JSON]:
        """The stored answers of the keys in ``arrays`` (JSON arrays, :func:`key_lists`)."""
        found: dict[str, JSON] = {}
        for wanted in arrays:
            rows = conn.execute(
                f"SELECT responses.key, responses.response FROM {self._key_list} "
                "CROSS JOIN responses WHERE responses.key = wanted.value",
                (wanted,),
            )
            for key, text in rows:
                body: JSON = json.loads(text)
                if error_object(body) is None:  # an error object an older inert kept is none
                    found[key] = body
        return found

    def _insert_intents(
        self,
        conn: SqlConnection,
        run_id: str,
        intents: Sequence[ShardIntent],
        free: set[str],
        until: float,
        now: float,
    ) -> list[ShardRecord]:
        if not intents:
            return []
        (top,) = conn.execute(
            "SELECT MAX(shard) FROM shards WHERE run_id = ?", (run_id,)
        ).fetchone()
        index = 0 if top is None else int(top) + 1
        ids: list[int] = []
        for intent in intents:
            if not free.issuperset(intent.custom_ids):
                unfree = [cid for cid in intent.custom_ids if cid not in free]
                raise ValueError(
                    f"the planner put {len(unfree)} keys that are not free (or twice) into "
                    f"a shard, e.g. {unfree[0]!r}"
                )
            free.difference_update(intent.custom_ids)
            shard_id = self._insert_shard(
                conn,
                run_id=run_id,
                shard=index,
                attempt=intent.attempt,
                endpoint=intent.endpoint,
                model=intent.model,
                custom_ids=intent.custom_ids,
                tokens=intent.tokens,
                parent_id=intent.parent_id,
                owner=run_id,
                lease_expires_at=until,
                now=now,
            )
            # The shard's lines, just inserted in key order, claimed in one statement.
            conn.execute(
                "INSERT INTO claims (custom_id, shard_id) "
                "SELECT custom_id, shard_id FROM shard_lines WHERE shard_id = ?",
                (shard_id,),
            )
            ids.append(shard_id)
            index += 1
        rows = conn.execute(
            f"SELECT {SHARD_COLUMNS} FROM shards WHERE id IN ({_marks(len(ids))})", ids
        ).fetchall()
        by_id = {row[0]: ShardRecord(*row) for row in rows}
        return [by_id[i] for i in ids]

    def renew_leases(
        self, *, owner: str, lease: float, now: float, shard_ids: Sequence[int] | None = None
    ) -> int:
        """Extend every lease ``owner`` still holds (or those of ``shard_ids``) to ``now + lease``.

        A lease another run took over is not renewed. Returns how many were renewed.
        """
        with self._transaction() as conn:
            if shard_ids is None:
                cursor = conn.execute(
                    "UPDATE shards SET lease_expires_at = ? WHERE owner = ?", (now + lease, owner)
                )
                return cursor.rowcount
            renewed = 0
            for chunk in _chunks([str(i) for i in shard_ids]):
                cursor = conn.execute(
                    "UPDATE shards SET lease_expires_at = ? WHERE owner = ? "
                    f"AND id IN ({_marks(len(chunk))})",
                    [now + lease, owner, *map(int, chunk)],
                )
                renewed += cursor.rowcount
            return renewed

    def release_claims(self, shard_id: int, *, keep: Collection[str] = ()) -> int:
        """Drop the claims of a shard that is no longer pending, but those of ``keep``; how many.

        Its owner calls this once it has decided about the shard's lines (answered or
        failed for good: released; to be submitted again: kept until the new shard
        takes them): the released keys are free for any run. The claims of a pending
        shard are never dropped here.
        """
        kept = set(keep)
        with self._transaction() as conn:
            (state,) = conn.execute("SELECT state FROM shards WHERE id = ?", (shard_id,)).fetchone()
            if state in PENDING_STATES:
                return 0
            if not kept:
                return conn.execute("DELETE FROM claims WHERE shard_id = ?", (shard_id,)).rowcount
            keys = [
                str(key)
                for (key,) in conn.execute(
                    "SELECT custom_id FROM claims WHERE shard_id = ?", (shard_id,)
                ).fetchall()
                if key not in kept
            ]
            conn.executemany(
                "DELETE FROM claims WHERE custom_id = ? AND shard_id = ?",
                [(key, shard_id) for key in keys],
            )
            return len(keys)

    def expire_leases(self, *, owner: str, now: float) -> int:
        """End ``owner``'s live leases at ``now`` (its process is known to be gone); how many.

        The next claim of their keys takes the shards over at once.
        """
        with self._transaction() as conn:
            return conn.execute(
                "UPDATE shards SET lease_expires_at = ? WHERE owner = ? AND lease_expires_at > ?",
                (now, owner, now),
            ).rowcount

    def release_leases(self, *, owner: str, shard_ids: Sequence[int] | None = None) -> int:
        """Give up ``owner``'s leases (all, or those of ``shard_ids``); how many.

        A released pending shard keeps its claims: the next run that needs its keys
        takes it over at once (no lease to wait out). Claims of released shards that
        are no longer pending are dropped.
        """
        with self._transaction() as conn:
            if shard_ids is None:
                rows = conn.execute(
                    "UPDATE shards SET owner = NULL, lease_expires_at = NULL WHERE owner = ? "
                    "RETURNING id, state",
                    (owner,),
                ).fetchall()
            else:
                rows = []
                for chunk in _chunks([str(i) for i in shard_ids]):
                    rows += conn.execute(
                        "UPDATE shards SET owner = NULL, lease_expires_at = NULL WHERE owner = ? "
                        f"AND id IN ({_marks(len(chunk))}) RETURNING id, state",
                        [owner, *map(int, chunk)],
                    ).fetchall()
            done = [(int(sid),) for sid, state in rows if state not in PENDING_STATES]
            conn.executemany("DELETE FROM claims WHERE shard_id = ?", done)
            return len(rows)

    def take_over(
        self, shard_id: int, *, owner: str, lease: float, now: float
    ) -> ShardRecord | None:
        """Hold a pending shard whose lease expired (or that nobody holds, or ``owner`` does).

        Returns the shard as ``owner`` now holds it, or ``None`` when another owner's
        lease is live or the shard is no longer pending.
        """
        with self._transaction() as conn:
            row = conn.execute(
                "UPDATE shards SET owner = ?, lease_expires_at = ?, updated_at = ? "
                "WHERE id = ? AND (owner IS NULL OR owner = ? OR lease_expires_at IS NULL "
                f"OR lease_expires_at <= ?) AND state IN ({_marks(len(PENDING_STATES))}) "
                f"RETURNING {SHARD_COLUMNS}",
                (owner, now + lease, now, shard_id, owner, now, *PENDING_STATES),
            ).fetchone()
        return None if row is None else ShardRecord(*row)

    def claims_of(self, shard_id: int) -> list[str]:
        """The keys a shard claims now, sorted."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT custom_id FROM claims WHERE shard_id = ? ORDER BY custom_id", (shard_id,)
            ).fetchall()
        return [str(row[0]) for row in rows]


def _prefixed(table: str) -> str:
    return ", ".join(f"{table}.{name.strip()}" for name in SHARD_COLUMNS.split(","))
