"""The synthesis pipeline: one dictionary entry per word in three dependent rounds.

``synthesize_entry`` is written once, as a ``@program``; the runner chooses
immediate calls or the Batch API. The rounds follow the data:

1. the meaning clusters of the provider definitions, the pronunciation and the
   word facts (they need provider data only);
2. one synthesized definition per cluster (they need the clusters);
3. per definition, every enhancement: synonyms, antonyms, examples, usage notes,
   register and domain, word forms (they need the definition text).

Many entries run together (``runner.run_all([synthesize_entry(...), ...])``) still
take exactly three rounds: the engine collects every entry's calls of a round into
one set, and identical calls (word forms of the same word and part of speech,
register and domain of the same definition text) are made once.
"""

from __future__ import annotations

from collections.abc import Sequence

from inert import Request, Steps, gather, gather_all, program, traverse
from lexicon.connector import Lexicon
from lexicon.models import (
    Antonyms,
    Definition,
    Entry,
    Examples,
    MeaningCluster,
    ProviderDefinition,
    RegisterDomain,
    SampleWord,
    Synonyms,
    SynthesizedDefinition,
    UsageNotes,
    WordForms,
)


def sources_of(
    cluster: MeaningCluster, provider_definitions: Sequence[ProviderDefinition]
) -> tuple[ProviderDefinition, ...]:
    """The provider definitions a cluster cites, in order; invalid or repeated indexes skipped.

    The indexes come from the model, so they are checked here rather than trusted.
    """
    seen: set[int] = set()
    chosen: list[ProviderDefinition] = []
    for index in cluster.source_definition_indexes:
        if 0 <= index < len(provider_definitions) and index not in seen:
            seen.add(index)
            chosen.append(provider_definitions[index])
    return tuple(chosen)


def enhance(
    lexicon: Lexicon, word: str, cluster: MeaningCluster, definition: SynthesizedDefinition
) -> Request[Definition]:
    """Every enhancement of one synthesized definition, gathered into one round."""
    pos = cluster.part_of_speech
    text = definition.text
    parts = gather(
        lexicon.synonyms(word, pos, text),
        lexicon.antonyms(word, pos, text),
        lexicon.examples(word, pos, text),
        lexicon.usage_notes(word, pos, text),
        lexicon.register_domain(text),
        lexicon.word_forms(word, pos),
    )

    def assemble(
        answers: tuple[Synonyms, Antonyms, Examples, UsageNotes, RegisterDomain, WordForms],
    ) -> Definition:
        synonyms, antonyms, examples, notes, register, forms = answers
        return Definition(
            cluster=cluster,
            text=text,
            synonyms=tuple(synonyms.synonyms),
            antonyms=tuple(antonyms.antonyms),
            examples=tuple(examples.sentences),
            usage_notes=tuple(notes.notes),
            usage_register=register.usage_register,
            domain=register.domain,
            word_forms=tuple(forms.forms),
        )

    return parts.map(assemble)


@program
def synthesize_entry(
    lexicon: Lexicon, word: str, provider_definitions: Sequence[ProviderDefinition]
) -> Steps[Entry]:
    """The dictionary entry of ``word``, synthesized from its provider definitions.

    Args:
        lexicon: the connector that builds each call.
        word: the headword.
        provider_definitions: the provider's definitions, in the provider's order
            (the clusters cite them by index).

    Returns:
        A request for the ``Entry``: one ``Definition`` per meaning cluster, in the
        clusters' order. Running it takes three rounds of calls.
    """
    found, pronunciation, facts = yield from gather(
        lexicon.clusters(word, provider_definitions),
        lexicon.pronunciation(word),
        lexicon.facts(word),
    )
    clusters = found.clusters
    synthesized = yield from gather_all(
        lexicon.define(word, cluster, sources_of(cluster, provider_definitions))
        for cluster in clusters
    )
    definitions = yield from gather_all(
        enhance(lexicon, word, cluster, definition)
        for cluster, definition in zip(clusters, synthesized, strict=True)
    )
    return Entry(
        word=word,
        pronunciation=pronunciation,
        facts=facts,
        definitions=tuple(definitions),
    )


def entry_requests(lexicon: Lexicon, words: Sequence[SampleWord]) -> list[Request[Entry]]:
    """One entry request per word, for ``runner.run_all`` or ``run_all_settled``."""
    return [synthesize_entry(lexicon, sample.word, sample.definitions) for sample in words]


def synthesize_entries(lexicon: Lexicon, words: Sequence[SampleWord]) -> Request[list[Entry]]:
    """Every word's entry as one request (it fails if any word fails; see ``entry_requests``)."""
    return traverse(
        words, lambda sample: synthesize_entry(lexicon, sample.word, sample.definitions)
    )
