"""Property tests: any schema-valid answers give valid entries in three rounds."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.lexicon._lexicon_support import schema_name, word_of

from inert import Op
from inert._json import JSON
from inert.testing import FakeRunner, responses_for
from lexicon import Lexicon, MeaningClusters, entry_requests, sample_words

LEXICON = Lexicon()


class DrawnAnswers:
    """``respond(op)``: each distinct op's answer is drawn once by Hypothesis and kept."""

    def __init__(self, data: st.DataObject) -> None:
        self._data = data
        self.answers: dict[str, JSON] = {}
        self.clusters: dict[str, MeaningClusters] = {}

    def __call__(self, op: Op[Any]) -> JSON:
        if op.key not in self.answers:
            answer = self._data.draw(responses_for(op), label=schema_name(op))
            self.answers[op.key] = answer
            if schema_name(op) == "MeaningClusters":
                self.clusters[word_of(op)] = op.decode(answer)
        return self.answers[op.key]


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data(), count=st.integers(1, 2), offset=st.integers(0, 299))
def test_any_valid_answers_give_one_definition_per_cluster(
    data: st.DataObject, count: int, offset: int
) -> None:
    """Whatever valid answers arrive, every entry has one definition per cluster, in 3 rounds."""
    words = sample_words(count, offset=offset)
    answers = DrawnAnswers(data)
    batch_like = FakeRunner(answers)

    entries = batch_like.run_all_sync(entry_requests(LEXICON, words))

    assert batch_like.report.rounds == 3
    for word, entry in zip(words, entries, strict=True):
        assert word.word == entry.word
        assert answers.clusters[word.word].clusters == [d.cluster for d in entry.definitions]
        forms = {d.part_of_speech: d.word_forms for d in entry.definitions}
        assert all(forms[d.part_of_speech] == d.word_forms for d in entry.definitions)
    bound = sum(
        3 + 6 * len(e.definitions) + len({d.part_of_speech for d in e.definitions}) for e in entries
    )
    assert batch_like.report.ops_sent <= bound

    immediate_like = FakeRunner(answers, pipelined=True, seed=offset)
    assert entries == immediate_like.run_all_sync(entry_requests(LEXICON, words))
