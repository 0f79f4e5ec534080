"""The lexicon's data: provider input, the model's structured answers, and the ``Entry``.

Every answer model is small (lists of strings, enums, bounded scores) and fits
OpenAI's strict JSON schema: every field is required (no defaults), objects are
closed, and the only constraints are those strict mode accepts (``minItems``,
``maxItems``, ``minimum``, ``maximum``, enums). ``tests/lexicon`` checks each one
with the SDK's own conversion.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

PartOfSpeech = Literal["noun", "verb", "adjective", "adverb"]
"""The parts of speech WordNet distinguishes (satellite adjectives are adjectives)."""

Register = Literal["formal", "neutral", "informal", "slang", "technical", "literary", "archaic"]
"""How formal a sense is; the model picks one."""


class _Model(BaseModel):
    """Base of the lexicon's models: immutable values, unknown fields rejected."""

    model_config = ConfigDict(frozen=True, extra="forbid")


# --- input ---------------------------------------------------------------------------


class ProviderDefinition(_Model):
    """One definition from a dictionary provider (here a WordNet sense)."""

    part_of_speech: PartOfSpeech
    text: str
    examples: tuple[str, ...] = ()


class SampleWord(_Model):
    """A word of the shipped sample data set with its provider definitions."""

    word: str
    definitions: tuple[ProviderDefinition, ...]


# --- answers (response formats) ------------------------------------------------------


class MeaningCluster(_Model):
    """One meaning of the word: provider definitions that say the same thing."""

    id: str = Field(description="A short slug for this meaning, unique within the word.")
    part_of_speech: PartOfSpeech
    gloss: str = Field(description="A few words naming the meaning.")
    source_definition_indexes: list[int] = Field(
        description="0-based indexes of the provider definitions in this cluster."
    )


class MeaningClusters(_Model):
    """The provider definitions of a word grouped into distinct meanings."""

    clusters: list[MeaningCluster] = Field(min_length=1, max_length=8)


class SynthesizedDefinition(_Model):
    """One dictionary definition written for a meaning cluster."""

    text: str = Field(description="The definition, one sentence, not using the word itself.")


class Synonym(_Model):
    """A synonym with how closely it matches the sense."""

    word: str
    closeness: float = Field(ge=0.0, le=1.0, description="1 means interchangeable.")


class Synonyms(_Model):
    """Synonyms of one sense."""

    synonyms: list[Synonym] = Field(max_length=8)


class Antonyms(_Model):
    """Antonyms of one sense (often none)."""

    antonyms: list[str] = Field(max_length=6)


class Examples(_Model):
    """Example sentences that use the word in one sense."""

    sentences: list[str] = Field(min_length=1, max_length=4)


class UsageNotes(_Model):
    """Notes on how one sense is used (grammar, collocations, pitfalls)."""

    notes: list[str] = Field(max_length=4)


class RegisterDomain(_Model):
    """The register and subject domain of a definition."""

    usage_register: Register
    domain: str = Field(description='The subject field, such as "law" or "music"; "general".')


class WordForm(_Model):
    """One inflected or derived form of a word."""

    form: str
    label: str = Field(description='What the form is, such as "plural" or "past participle".')


class WordForms(_Model):
    """The inflected forms of a word in one part of speech."""

    forms: list[WordForm] = Field(max_length=8)


class WordFacts(_Model):
    """Word-level facts: origin, frequency and a few notes of interest."""

    etymology: str
    frequency_band: int = Field(ge=1, le=5, description="1 = among the most common words.")
    facts: list[str] = Field(max_length=4)


class Pronunciation(_Model):
    """How the word is said."""

    ipa: str = Field(description="The IPA transcription, General American.")
    respelling: str = Field(description='A plain respelling such as "BANK".')
    syllables: int = Field(ge=1, le=12)


# --- output ---------------------------------------------------------------------------


class Definition(_Model):
    """A synthesized definition of one meaning with every enhancement of it."""

    cluster: MeaningCluster
    text: str
    synonyms: tuple[Synonym, ...]
    antonyms: tuple[str, ...]
    examples: tuple[str, ...]
    usage_notes: tuple[str, ...]
    usage_register: Register
    domain: str
    word_forms: tuple[WordForm, ...]

    @property
    def part_of_speech(self) -> PartOfSpeech:
        """The part of speech of the meaning."""
        return self.cluster.part_of_speech


class Entry(_Model):
    """A dictionary entry: the word, its pronunciation and facts, one definition per meaning."""

    word: str
    pronunciation: Pronunciation
    facts: WordFacts
    definitions: tuple[Definition, ...]


RESPONSE_MODELS: tuple[type[BaseModel], ...] = (
    MeaningClusters,
    SynthesizedDefinition,
    Synonyms,
    Antonyms,
    Examples,
    UsageNotes,
    RegisterDomain,
    WordForms,
    WordFacts,
    Pronunciation,
)
"""Every response format the connector asks for."""
