"""lexicon: a dictionary synthesis example built on inert.

A connector (:class:`Lexicon`) whose methods build ``Request[Model]`` values, a
pipeline (:func:`synthesize_entry`) that composes them in three dependent rounds,
and a sample data set of 300 English words with WordNet 3.0 senses
(:func:`load_sample`; WordNet 3.0 Copyright 2006 by Princeton University, licence
in ``lexicon/data/WORDNET-LICENSE``). ``inert demo`` runs it both ways, on GPT,
on Claude or on both (``Lexicon.for_provider``).
"""

from lexicon.connector import MIXED_ON_CLAUDE, TEMPLATE_NAMES, Lexicon, ProviderChoice
from lexicon.models import (
    Antonyms,
    Definition,
    Entry,
    Examples,
    MeaningCluster,
    MeaningClusters,
    PartOfSpeech,
    Pronunciation,
    ProviderDefinition,
    Register,
    RegisterDomain,
    SampleWord,
    Synonym,
    Synonyms,
    SynthesizedDefinition,
    UsageNotes,
    WordFacts,
    WordForm,
    WordForms,
)
from lexicon.pipeline import entry_requests, synthesize_entries, synthesize_entry
from lexicon.sample import load_sample, sample_words

__all__ = [  # noqa: RUF022 - plain sorted order, pinned by a test
    "Antonyms",
    "Definition",
    "Entry",
    "Examples",
    "Lexicon",
    "MIXED_ON_CLAUDE",
    "MeaningCluster",
    "MeaningClusters",
    "PartOfSpeech",
    "Pronunciation",
    "ProviderChoice",
    "ProviderDefinition",
    "Register",
    "RegisterDomain",
    "SampleWord",
    "Synonym",
    "Synonyms",
    "SynthesizedDefinition",
    "TEMPLATE_NAMES",
    "UsageNotes",
    "WordFacts",
    "WordForm",
    "WordForms",
    "entry_requests",
    "load_sample",
    "sample_words",
    "synthesize_entries",
    "synthesize_entry",
]
