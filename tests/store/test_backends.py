"""The store's behaviour, the same on both backends: a SQLite file and a PostgreSQL database.

Every test here takes ``store_location`` (tests/conftest.py), once a SQLite path and
once the URL of a fresh schema on the throwaway PostgreSQL server, and asserts the
same outcome on each.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from inert import Op, Store
from inert._json import JSON
from inert._sql import is_url
from inert._store import SCHEMA_VERSION
from inert.errors import StoreNotFoundError


def op(i: int, endpoint: str = "/v1/chat/completions", model: str | None = "m") -> Op[JSON]:
    """The ``i``-th small op."""
    body: dict[str, JSON] = {"i": i}
    if model is not None:
        body["model"] = model
    return Op(endpoint=endpoint, body=body, decode=lambda raw: raw)


def answer(i: int, prompt: int = 3, completion: int = 5) -> JSON:
    """An answer body with usage, as the chat endpoint returns it."""
    return {
        "id": f"chatcmpl-{i}",
        "choices": [{"message": {"content": f"answer {i} — ünïcödé ✓"}}],
        "usage": {"prompt_tokens": prompt, "completion_tokens": completion},
    }


def test_the_location_picks_the_backend(store_location: str) -> None:
    """A postgresql:// URL opens the PostgreSQL store, a path the SQLite one; both are Stores."""
    with Store(store_location) as store:
        assert isinstance(store, Store)
        assert type(store).__name__ == ("PostgresStore" if is_url(store_location) else "Store")
        assert store.stats().schema_version == SCHEMA_VERSION


def test_answers_round_trip_and_the_first_answer_of_a_key_stays(store_location: str) -> None:
    """Stored bodies come back as they were; a second answer of a key does not replace it."""
    with Store(store_location) as store:
        store.put_responses([(op(i), answer(i)) for i in range(10)])
        store.put_responses([(op(3), answer(333))])
        got = store.get_responses([op(i).key for i in range(12)])
    assert {op(i).key: answer(i) for i in range(10)} == dict(got)


def test_an_answer_replaces_a_stored_error_object(store_location: str) -> None:
    """An error object an older inert kept gives way to a real answer (and counts as failed)."""
    with Store(store_location) as store:
        store.put_responses([(op(1), {"error": {"message": "no"}}), (op(2), answer(2))])
        assert [a.key for a in store.answers(failed=True)] == [op(1).key]
        assert store.stats().not_answers == 1
        store.put_responses([(op(1), answer(1))])
        assert store.get_responses([op(1).key]) == {op(1).key: answer(1)}
        assert store.answers(failed=True) == []


def test_answers_persist_across_opens(store_location: str) -> None:
    """What one store object wrote, another opened later reads (the data is on disk or server)."""
    with Store(store_location) as store:
        store.put_responses([(op(i), answer(i)) for i in range(5)], source="batch")
    with Store(store_location, create=False) as again:
        assert again.response_count() == 5
        assert {a.source for a in again.answers()} == {"batch"}


def test_usage_and_stats_count_every_answer(store_location: str) -> None:
    """Token sums and the by-endpoint/model/source groups agree with what was stored."""
    with Store(store_location) as store:
        store.put_responses([(op(i), answer(i, 2, 7)) for i in range(4)])
        store.put_responses(
            [(op(i, "/v1/embeddings", "e"), answer(i, 10, 0)) for i in range(3)], source="batch"
        )
        assert store.usage() == (4 * 2 + 3 * 10, 4 * 7)
        stats = store.stats()
    assert stats.answers == 7
    assert (stats.prompt_tokens, stats.completion_tokens) == (38, 28)
    assert [(g.endpoint, g.model, g.source, g.answers) for g in stats.groups] == [
        ("/v1/chat/completions", "m", "immediate", 4),
        ("/v1/embeddings", "e", "batch", 3),
    ]
    assert stats.size_bytes > 0
    assert (stats.runs, dict(stats.shards), stats.anomalies) == (0, {}, 0)


def test_answers_lists_by_prefix_endpoint_model_and_limit(store_location: str) -> None:
    """The listing filters the same way on both backends (key prefixes compare bytewise)."""
    ops = [op(i, model=("a" if i % 2 else "b")) for i in range(20)]
    with Store(store_location) as store:
        store.put_responses([(o, answer(i)) for i, o in enumerate(ops)])
        prefix = ops[7].key[:2]
        listed = store.answers(prefix=prefix)
        by_model = store.answers(model="a")
        limited = store.answers(limit=3)
        none = store.answers(endpoint="/v1/other")
        sizes = {a.key: a.size for a in store.answers()}
    assert {a.key for a in listed} == {o.key for o in ops if o.key.startswith(prefix)}
    assert {a.key for a in by_model} == {o.key for i, o in enumerate(ops) if i % 2}
    assert len(limited) == 3
    assert none == []
    assert all(size > 20 for size in sizes.values())


def test_forget_deletes_exactly_the_given_keys(store_location: str) -> None:
    """forget returns how many it deleted; the rest stay."""
    with Store(store_location) as store:
        store.put_responses([(op(i), answer(i)) for i in range(6)])
        assert store.forget([op(1).key, op(4).key, "0" * 64]) == 2
        assert set(store.get_responses([op(i).key for i in range(6)])) == {
            op(i).key for i in (0, 2, 3, 5)
        }


def test_a_store_that_is_not_there_is_not_created_when_asked_not_to(store_location: str) -> None:
    """create=False raises StoreNotFoundError and leaves nothing behind."""
    with pytest.raises(StoreNotFoundError):
        Store(store_location, create=False)
    with Store(store_location) as store:  # and it is still a fresh place for a store
        assert store.response_count() == 0


def test_many_lookups_in_one_call(store_location: str) -> None:
    """More keys than one statement takes (chunks of 500) are all looked up."""
    with Store(store_location) as store:
        store.put_responses([(op(i), {"i": i}) for i in range(1_234)])
        got = store.get_responses([op(i).key for i in range(2_000)])
    assert len(got) == 1_234
    assert got[op(1_233).key] == {"i": 1_233}


def test_two_stores_writing_the_same_keys_at_once_keep_one_answer_each(
    store_location: str,
) -> None:
    """Writers in parallel (two store objects, threads) on overlapping keys: each key once."""
    stores = [Store(store_location), Store(store_location)]
    errors: list[BaseException] = []

    def write(store: Store, salt: int) -> None:
        try:
            for start in range(0, 300, 50):
                store.put_responses(
                    [(op(i), {"i": i, "by": salt}) for i in range(start, start + 60)]
                )
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(s, n)) for n, s in enumerate(stores)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    try:
        assert errors == []
        got = stores[0].get_responses([op(i).key for i in range(400)])
        assert len(got) == 310
        assert stores[1].response_count() == 310
    finally:
        for store in stores:
            store.close()


@st.composite
def _writes(draw: st.DrawFn) -> list[list[tuple[int, int]]]:
    batches = st.lists(st.tuples(st.integers(0, 15), st.integers(0, 3)), max_size=6)
    return draw(st.lists(batches, min_size=1, max_size=4))


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(writes=_writes())
def test_law_the_stored_answer_of_a_key_is_its_first_answer(
    store_location: str, writes: list[list[tuple[int, int]]]
) -> None:
    """Over any sequence of writes, each key holds the first body written for it."""
    salt = time.monotonic_ns()
    first: dict[str, JSON] = {}
    with Store(store_location) as store:
        for batch in writes:
            entries: list[tuple[Op[Any], JSON]] = []
            seen: set[str] = set()
            for i, version in batch:
                o = op(salt * 100 + i)
                if o.key in seen:
                    continue  # one write of a key per transaction
                seen.add(o.key)
                entries.append((o, {"v": version}))
                first.setdefault(o.key, {"v": version})
            store.put_responses(entries)
        got = store.get_responses(list(first))
    assert first == dict(got)


def test_every_store_command_takes_either_backend(
    store_location: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """``inert store stats|list|show|forget|check`` and ``inert batches list`` on a path or URL."""
    from inert._cli import main

    with Store(store_location) as store:
        store.put_responses([(op(i), answer(i)) for i in range(3)])
        shown = store.location
    key = op(1).key
    assert main(["store", "stats", "--store", store_location]) == 0
    assert main(["store", "list", "--store", store_location]) == 0
    assert main(["store", "show", key[:12], "--store", store_location]) == 0
    assert main(["store", "check", "--store", store_location]) == 0
    assert main(["store", "forget", key, "--store", store_location]) == 0
    assert main(["batches", "list", "--store", store_location]) == 0
    out = capsys.readouterr().out
    assert f"store            {shown}" in out
    assert "answers          3" in out
    assert f"{shown}: no damage found" in out
    assert f"no batches in the journal of {shown}" in out
    with Store(store_location) as store:
        assert store.response_count() == 2
