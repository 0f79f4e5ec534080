"""FakeRunner built from tables and Hypothesis data; failures reach exactly their targets."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from returns.result import Failure, Success

from inert import Request, RequestError, gather_all
from inert._json import JSON
from inert.errors import ApiError, RefusalError, UnansweredError
from inert.testing import (
    Answer,
    FakeRunner,
    OpRef,
    chat_completion,
    expect_rounds,
    failure_responses_for,
    key_of,
    op_of,
)

from .pipeline import Gloss, Senses, gloss_of, glossary, senses_of

WORDS = ["bank", "bark", "bat", "bolt", "bow", "club", "crane", "date"]


def test_table_answers_by_request_op_or_key() -> None:
    """A table keyed by request, op or key answers each; model instances become completions."""
    table: dict[OpRef, Answer] = {
        senses_of("bank"): Senses(senses=["river side", "money house"]),
        op_of(gloss_of("bank", "river side")): chat_completion(Gloss(text="the land by a river")),
        key_of(gloss_of("bank", "money house")): Gloss(text="a place that keeps money"),
    }
    fake = FakeRunner.from_table(table)
    expected = {"river side": "the land by a river", "money house": "a place that keeps money"}
    assert expected == fake.run_sync(glossary("bank"))
    expect_rounds(fake, 2, sizes=[1, 2])


def test_table_without_an_entry_fails_that_op_naming_it() -> None:
    """An op missing from the table fails alone, with an UnansweredError naming its prompt."""
    fake = FakeRunner.from_table({senses_of("bank"): Senses(senses=["river side"])})
    with pytest.raises(UnansweredError) as caught:
        fake.run_sync(glossary("bank"))
    message = caught.value.message
    assert "Define 'bank' in the sense 'river side'." in message
    assert op_of(gloss_of("bank", "river side")).key[:12] in message


def test_table_errors_are_raised_for_their_op() -> None:
    """A RequestError in the table is that op's failure."""
    fake = FakeRunner.from_table({senses_of("bank"): ApiError("bad request", status=400)})
    with pytest.raises(ApiError, match="bad request"):
        fake.run_sync(senses_of("bank"))


@settings(max_examples=30, deadline=None)
@given(st.data())
def test_failures_reach_exactly_the_targeted_ops(data: st.DataObject) -> None:
    """Only the targeted ops fail (with their injected error); every other op succeeds."""
    targeted = data.draw(st.sets(st.sampled_from(WORDS)), label="targeted")
    by_predicate = data.draw(st.sampled_from(WORDS), label="by predicate")
    requests = [senses_of(word) for word in WORDS]
    refusal = data.draw(failure_responses_for(requests[0], kinds=["refusal"]))
    errors: dict[Request[Senses], RequestError | dict[str, JSON]] = {}
    for word in targeted:
        errors[senses_of(word)] = ApiError(f"no {word}", status=500) if len(word) % 2 else refusal
    fake = FakeRunner.from_data(data).fail_ops(
        errors,
        where=lambda op: by_predicate in str(op.body["messages"]),
    )
    results = fake.run_all_settled_sync(requests)
    failed = {
        word for word, result in zip(WORDS, results, strict=True) if isinstance(result, Failure)
    }
    assert targeted | {by_predicate} == failed
    for word, result in zip(WORDS, results, strict=True):
        if word in targeted and len(word) % 2:
            assert ApiError(f"no {word}", status=500) == result.failure()
        elif word in targeted:
            assert RefusalError is type(result.failure())
        elif word == by_predicate:
            assert "injected failure" in result.failure().message
        else:
            assert isinstance(result, Success)
    assert len(WORDS) == len(fake.calls)


@settings(max_examples=30, deadline=None)
@given(st.data(), st.sampled_from(WORDS))
def test_pipeline_from_drawn_answers_takes_two_rounds(data: st.DataObject, word: str) -> None:
    """For any schema-valid answers the pipeline succeeds in two rounds, one call per sense."""
    fake = FakeRunner.from_data(data)
    result = fake.run_sync(glossary(word))
    expect_rounds(fake, 2)
    assert len(result) + 1 == len(fake.calls)


@settings(max_examples=30, deadline=None)
@given(st.data())
def test_drawn_failures_are_typed_request_errors(data: st.DataObject) -> None:
    """With a failure rate, every op still ends in a value or a RequestError, never a crash."""
    fake = FakeRunner.from_data(data, failure_rate=0.5)
    results = fake.run_all_settled_sync([glossary(word) for word in WORDS[:3]])
    for result in results:
        if isinstance(result, Failure):
            assert isinstance(result.failure(), RequestError)


@settings(max_examples=10, deadline=None)
@given(st.data())
def test_drawn_answers_are_stable_across_runs(data: st.DataObject) -> None:
    """A fake drawn from data answers an op the same way every time it is asked."""
    fake = FakeRunner.from_data(data)
    assert fake.run_sync(glossary("bank")) == fake.run_sync(glossary("bank"))


def test_calls_are_recorded_per_run_in_history() -> None:
    """``history`` keeps the rounds of every run; ``calls`` only the last run's."""
    fake = FakeRunner.from_table(
        {senses_of("bat"): Senses(senses=["animal"])},
        default=lambda op: chat_completion(Gloss(text="x")),
    )
    fake.run_sync(glossary("bat"))
    fake.run_sync(gather_all([senses_of("bat")]))
    assert [[len(ops) for ops in run] for run in fake.history] == [[1, 1], [1]]
    assert [op.key for op in fake.calls] == [key_of(senses_of("bat"))]
