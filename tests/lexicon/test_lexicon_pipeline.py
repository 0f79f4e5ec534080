"""The synthesis pipeline: three rounds, dedup of shared calls, the WORKLOAD call count."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from tests.lexicon._lexicon_support import SchemaResponder, cluster, prompt_of, schema_name, word_of

from inert import Op
from inert.testing import FakeRunner
from lexicon import (
    Entry,
    Lexicon,
    ProviderDefinition,
    entry_requests,
    sample_words,
    synthesize_entries,
    synthesize_entry,
)

LEXICON = Lexicon()
DEFINITIONS = (
    ProviderDefinition(part_of_speech="noun", text="a sloping land beside water"),
    ProviderDefinition(
        part_of_speech="noun",
        text="a financial institution",
        examples=("he cashed a check at the bank",),
    ),
    ProviderDefinition(
        part_of_speech="verb", text="tip laterally", examples=("the pilot banked the plane",)
    ),
)


def calls_by_method(calls: list[Op[Any]]) -> Counter[str]:
    """How many distinct calls each response model was asked for."""
    return Counter(schema_name(op) for op in calls)


def expected_calls(entries: list[Entry]) -> int:
    """Distinct calls for these entries: 3 per word, then per definition one define and
    five enhancements, plus word forms once per distinct part of speech of a word."""
    total = 0
    for entry in entries:
        clusters = len(entry.definitions)
        parts_of_speech = len({d.part_of_speech for d in entry.definitions})
        total += 3 + clusters + 5 * clusters + parts_of_speech
    return total


async def test_one_word_takes_three_rounds() -> None:
    """A single word's entry needs exactly three dependent rounds of calls."""
    fake = FakeRunner(SchemaResponder())

    entry = await fake.run(synthesize_entry(LEXICON, "bank", DEFINITIONS))

    assert fake.report.rounds == 3
    assert entry.word == "bank"
    assert len(entry.definitions) >= 1


async def test_twenty_words_take_three_rounds() -> None:
    """Twenty entries run together still take three rounds: rounds follow data, not words."""
    fake = FakeRunner(SchemaResponder())

    entries = await fake.run_all(entry_requests(LEXICON, sample_words(20)))

    assert fake.report.rounds == 3
    assert [w.word for w in sample_words(20)] == [e.word for e in entries]


async def test_rounds_hold_the_expected_methods() -> None:
    """Round 1 asks clusters, pronunciation and facts; round 2 defines; round 3 enhances."""
    fake = FakeRunner(SchemaResponder())

    await fake.run_all(entry_requests(LEXICON, sample_words(3)))

    first, second, third = (set(calls_by_method(ops)) for ops in fake.rounds_log)
    assert {"MeaningClusters", "Pronunciation", "WordFacts"} == first
    assert {"SynthesizedDefinition"} == second
    enhancements = {"Synonyms", "Antonyms", "Examples", "UsageNotes", "RegisterDomain", "WordForms"}
    assert enhancements == third


async def test_word_forms_are_asked_once_per_part_of_speech() -> None:
    """Two noun senses and one verb sense of a word ask for word forms twice, not three times."""
    pinned = [cluster("slope", "noun", 0), cluster("money", "noun", 1), cluster("tilt", "verb", 2)]
    fake = FakeRunner(SchemaResponder(clusters=lambda word: pinned))

    entry = await fake.run(synthesize_entry(LEXICON, "bank", DEFINITIONS))

    counts = calls_by_method(fake.calls)
    assert counts["WordForms"] == 2
    assert counts["Synonyms"] == 3
    assert len(entry.definitions) == 3
    assert fake.report.ops_deduplicated == 1
    noun_forms = [d.word_forms for d in entry.definitions if d.part_of_speech == "noun"]
    assert noun_forms[0] == noun_forms[1]


async def test_register_domain_is_shared_across_words_with_the_same_definition() -> None:
    """Register and domain depend only on the definition text, so equal texts are one call."""
    requests = [
        LEXICON.register_domain("a large body of water"),
        LEXICON.register_domain("a large body of water"),
    ]
    other = LEXICON.register_domain("a small body of water")
    fake = FakeRunner(SchemaResponder())

    first, second, third = await fake.run_all([*requests, other])

    assert first == second
    assert len(fake.calls) == 2
    assert third is not None


async def test_number_of_calls_matches_the_workload_formula() -> None:
    """Distinct calls are 3 + 6C + P per word (C clusters, P parts of speech among them)."""
    fake = FakeRunner(SchemaResponder())

    entries = await fake.run_all(entry_requests(LEXICON, sample_words(20)))

    assert expected_calls(entries) == len(fake.calls)
    assert expected_calls(entries) == fake.report.ops_sent
    requested = sum(3 + 7 * len(e.definitions) for e in entries)
    assert requested == fake.report.ops_requested
    assert requested - len(fake.calls) == fake.report.ops_deduplicated


async def test_each_entry_has_one_definition_per_cluster_in_order() -> None:
    """Definitions follow the clusters' order and carry their cluster."""
    pinned = [cluster("tilt", "verb", 2), cluster("slope", "noun", 0, 7, 0)]
    fake = FakeRunner(SchemaResponder(clusters=lambda word: pinned))

    entry = await fake.run(synthesize_entry(LEXICON, "bank", DEFINITIONS))

    assert pinned == [d.cluster for d in entry.definitions]
    define_prompts = [
        prompt_of(op) for op in fake.calls if schema_name(op) == "SynthesizedDefinition"
    ]
    slope = next(p for p in define_prompts if "slope" in p)
    assert slope.count("a sloping land beside water") == 1
    assert "financial" not in slope


async def test_bodies_do_not_depend_on_the_runner() -> None:
    """The batch-style and the pipelined schedule send the very same bodies."""
    words = sample_words(4)
    batch_like = FakeRunner(SchemaResponder())
    immediate_like = FakeRunner(SchemaResponder(), pipelined=True, seed=3)

    batch_entries = await batch_like.run_all(entry_requests(LEXICON, words))
    immediate_entries = await immediate_like.run_all(entry_requests(LEXICON, words))

    assert batch_entries == immediate_entries
    assert sorted(op.canonical_body() for op in batch_like.calls) == sorted(
        op.canonical_body() for op in immediate_like.calls
    )


def test_building_a_request_twice_gives_identical_bodies() -> None:
    """A method's body is a function of its inputs and the connector's settings only."""
    first = LEXICON.clusters("bank", DEFINITIONS)
    second = Lexicon().clusters("bank", DEFINITIONS)
    fake = FakeRunner(SchemaResponder())

    fake.run_all_sync([first])
    first_key = fake.calls[0].key
    fake.run_all_sync([second])

    assert first_key == fake.calls[0].key


def test_a_body_is_one_user_message_with_a_strict_schema() -> None:
    """Prompts are a single user message; the response format is the SDK's strict schema."""
    fake = FakeRunner(SchemaResponder())

    fake.run_sync(Lexicon(model="gpt-4.1-mini", temperature=0.0).word_forms("bank", "verb"))

    (op,) = fake.calls
    fmt = op.body["response_format"]
    assert isinstance(fmt, dict)
    spec = fmt["json_schema"]
    assert isinstance(spec, dict)
    assert op.endpoint == "/v1/chat/completions"
    assert op.body["model"] == "gpt-4.1-mini"
    assert op.body["temperature"] == 0.0
    assert [{"role": "user", "content": prompt_of(op)}] == op.body["messages"]
    assert (fmt["type"], spec["name"], spec["strict"]) == ("json_schema", "WordForms", True)
    assert word_of(op) == "bank"
    assert "verb" in prompt_of(op)


def test_synthesize_entries_is_one_request_of_all_entries() -> None:
    """The list form runs every word and keeps their order, in the same three rounds."""
    fake = FakeRunner(SchemaResponder())
    words = sample_words(5, offset=100)

    entries = fake.run_sync(synthesize_entries(LEXICON, words))

    assert [w.word for w in words] == [e.word for e in entries]
    assert fake.report.rounds == 3


def test_sample_words_rejects_more_words_than_are_shipped() -> None:
    """Asking for more words than the data set holds is a clear error."""
    with pytest.raises(ValueError, match="count must be between 0 and 300"):
        sample_words(301)
