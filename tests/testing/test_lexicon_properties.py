"""The toolkit on the lexicon pipeline: any schema-valid answers give an entry in three rounds."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from returns.result import Failure

from inert import RequestError
from inert.testing import FakeRunner, expect_calls, expect_rounds

pytest.importorskip("lexicon.pipeline")

from lexicon.connector import Lexicon
from lexicon.pipeline import synthesize_entry
from lexicon.sample import sample_words

(WORD,) = sample_words(1)


@settings(max_examples=12, deadline=None)
@given(st.data())
def test_any_valid_answers_give_an_entry_in_three_rounds(data: st.DataObject) -> None:
    """For any schema-valid answers the entry is built in three rounds, each op asked once."""
    fake = FakeRunner.from_data(data)
    entry = fake.run_sync(synthesize_entry(Lexicon(), WORD.word, WORD.definitions))
    expect_rounds(fake, 3)
    expect_calls(fake, each_once=True)
    assert WORD.word == entry.word


@settings(max_examples=12, deadline=None)
@given(st.data())
def test_injected_failures_end_as_request_errors(data: st.DataObject) -> None:
    """With refusals, truncations, invalid output and API errors, the run fails cleanly or succeeds."""
    fake = FakeRunner.from_data(data, failure_rate=0.2)
    (result,) = fake.run_all_settled_sync(
        [synthesize_entry(Lexicon(), WORD.word, WORD.definitions)]
    )
    if isinstance(result, Failure):
        assert isinstance(result.failure(), RequestError)
