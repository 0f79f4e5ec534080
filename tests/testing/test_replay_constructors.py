"""``ReplayRunner.from_table`` and ``from_data`` build replays that fall back on a table
or on Hypothesis for what the recording lacks, and write nothing."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from inert._store import Store
from inert.testing import FakeRunner, ReplayRunner, key_of, op_of

from .pipeline import Gloss, Senses, gloss_of, glossary, senses_of


def test_from_table_replays_the_recording_first_then_answers_from_the_table(
    inert_store: Store,
) -> None:
    """Recorded ops keep their recorded answer; the table answers only the others."""
    FakeRunner.from_table(
        {senses_of("bat"): Senses(senses=["animal"])}, store=inert_store
    ).run_sync(senses_of("bat"))
    before = inert_store.response_count()
    table = {
        senses_of("bat"): Senses(senses=["club"]),  # shadowed by the recording
        gloss_of("bat", "animal"): Gloss(text="a flying mammal"),
    }
    replay = ReplayRunner.from_table(table, store=inert_store)
    assert isinstance(replay, ReplayRunner)
    assert {"animal": "a flying mammal"} == replay.run_sync(glossary("bat"))
    assert [key_of(gloss_of("bat", "animal"))] == [op.key for op in replay.unanswered]
    assert before == inert_store.response_count()


def test_from_table_without_a_store_replays_an_empty_recording() -> None:
    """Every op is unanswered by the (empty) recording and answered by the table."""
    table = {
        senses_of("bat"): Senses(senses=["club"]),
        gloss_of("bat", "club"): Gloss(text="a stick"),
    }
    replay = ReplayRunner.from_table(table)
    assert {"club": "a stick"} == replay.run_sync(glossary("bat"))
    assert {key_of(r) for r in table} == {op.key for op in replay.unanswered}


@settings(max_examples=10, deadline=None)
@given(st.data())
def test_from_data_draws_what_the_recording_lacks(data: st.DataObject) -> None:
    """A replay from Hypothesis data answers with schema-valid drawn values."""
    replay = ReplayRunner.from_data(data)
    senses = replay.run_sync(senses_of("bat"))
    assert isinstance(replay, ReplayRunner)
    assert 1 <= len(senses.senses) <= 3
    assert [op_of(senses_of("bat")).key] == [op.key for op in replay.unanswered]
