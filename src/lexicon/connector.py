"""``Lexicon``: the dictionary connector whose methods build requests and perform no I/O.

Each method renders its prompt template (``lexicon/prompts/<method>.txt``) into a
single user message and returns ``Request[Model]`` from
:func:`inert.openai.structured`. There is no batch twin of any method and no mode
switch: the runner that executes the request decides immediate or batch, so both
modes send the very same body by construction.

Methods take exactly the inputs their answer depends on, because the op key (the
digest of the body) is the dedup and cache key: ``register_domain`` sees only the
definition text, so two words sharing a definition share one call; ``word_forms``
sees only the word and its part of speech, so every definition of the same part
of speech shares one call.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cache
from importlib.resources import files
from string import Template
from typing import Final, TypeVar

from openai.types.chat import ChatCompletionUserMessageParam
from pydantic import BaseModel

from inert import Request
from inert.openai import structured
from lexicon.models import (
    Antonyms,
    Examples,
    MeaningCluster,
    MeaningClusters,
    PartOfSpeech,
    Pronunciation,
    ProviderDefinition,
    RegisterDomain,
    Synonyms,
    SynthesizedDefinition,
    UsageNotes,
    WordFacts,
    WordForms,
)

M = TypeVar("M", bound=BaseModel)

TEMPLATE_NAMES: Final = (
    "antonyms",
    "clusters",
    "define",
    "examples",
    "facts",
    "pronunciation",
    "register_domain",
    "synonyms",
    "usage_notes",
    "word_forms",
)
"""One prompt template per connector method, named after it."""


@cache
def load_templates() -> Mapping[str, Template]:
    """Every prompt template, read once from the package data (``lexicon/prompts``)."""
    folder = files("lexicon").joinpath("prompts")
    return {
        name: Template(folder.joinpath(f"{name}.txt").read_text(encoding="utf-8").strip())
        for name in TEMPLATE_NAMES
    }


def render(template: Template, **values: str) -> str:
    """The prompt text; a placeholder without a value is a bug, so it raises KeyError."""
    return template.substitute(values)


def format_definitions(definitions: Sequence[ProviderDefinition], *, numbered: bool) -> str:
    """Provider definitions as prompt lines: ``0. (noun) text. Examples: "..."; "..."``."""
    lines = []
    for index, definition in enumerate(definitions):
        line = f"({definition.part_of_speech}) {definition.text}"
        if definition.examples:
            line += ". Examples: " + "; ".join(f'"{example}"' for example in definition.examples)
        lines.append(f"{index}. {line}" if numbered else f"- {line}")
    return "\n".join(lines) if lines else "- (none)"


class Lexicon:
    """Builds the requests of dictionary synthesis; every method is pure.

    Args:
        model: the chat model every request names.
        temperature: sampling temperature, sent only when given (the API default
            otherwise), so the same settings always give the same bodies.
        max_completion_tokens: a cap on each answer's length, sent only when given.
    """

    def __init__(
        self,
        *,
        model: str = "gpt-4o-mini",
        temperature: float | None = None,
        max_completion_tokens: int | None = None,
    ) -> None:
        self.model = model
        self.temperature = temperature
        self.max_completion_tokens = max_completion_tokens
        self._templates = load_templates()

    def __repr__(self) -> str:
        return f"Lexicon(model={self.model!r}, temperature={self.temperature!r})"

    def _ask(self, name: str, response_format: type[M], **values: str) -> Request[M]:
        message: ChatCompletionUserMessageParam = {
            "role": "user",
            "content": render(self._templates[name], **values),
        }
        params: dict[str, object] = {}
        if self.temperature is not None:
            params["temperature"] = self.temperature
        if self.max_completion_tokens is not None:
            params["max_completion_tokens"] = self.max_completion_tokens
        return structured(
            model=self.model,
            messages=[message],
            response_format=response_format,
            dedup=True,  # equal prompts are one call: the dedup and cache key is the body
            **params,
        )

    # round 1: provider data only

    def clusters(
        self, word: str, provider_definitions: Sequence[ProviderDefinition]
    ) -> Request[MeaningClusters]:
        """Group the provider's definitions of ``word`` into distinct meanings."""
        return self._ask(
            "clusters",
            MeaningClusters,
            word=word,
            definitions=format_definitions(provider_definitions, numbered=True),
        )

    def pronunciation(self, word: str) -> Request[Pronunciation]:
        """The IPA, a respelling and the syllable count of ``word``."""
        return self._ask("pronunciation", Pronunciation, word=word)

    def facts(self, word: str) -> Request[WordFacts]:
        """Etymology, frequency band and facts of interest about ``word``."""
        return self._ask("facts", WordFacts, word=word)

    # round 2: needs the clusters

    def define(
        self,
        word: str,
        cluster: MeaningCluster,
        sources: Sequence[ProviderDefinition] = (),
    ) -> Request[SynthesizedDefinition]:
        """One definition of ``word`` for ``cluster``, from the provider definitions in it."""
        return self._ask(
            "define",
            SynthesizedDefinition,
            word=word,
            part_of_speech=cluster.part_of_speech,
            gloss=cluster.gloss,
            sources=format_definitions(sources, numbered=False),
        )

    # round 3: needs the synthesized definition

    def synonyms(
        self, word: str, part_of_speech: PartOfSpeech, definition: str
    ) -> Request[Synonyms]:
        """Synonyms of ``word`` in the sense ``definition``."""
        return self._sense("synonyms", Synonyms, word, part_of_speech, definition)

    def antonyms(
        self, word: str, part_of_speech: PartOfSpeech, definition: str
    ) -> Request[Antonyms]:
        """Antonyms of ``word`` in the sense ``definition``."""
        return self._sense("antonyms", Antonyms, word, part_of_speech, definition)

    def examples(
        self, word: str, part_of_speech: PartOfSpeech, definition: str
    ) -> Request[Examples]:
        """Example sentences using ``word`` in the sense ``definition``."""
        return self._sense("examples", Examples, word, part_of_speech, definition)

    def usage_notes(
        self, word: str, part_of_speech: PartOfSpeech, definition: str
    ) -> Request[UsageNotes]:
        """Grammar, collocation and pitfall notes for ``word`` in the sense ``definition``."""
        return self._sense("usage_notes", UsageNotes, word, part_of_speech, definition)

    def register_domain(self, definition: str) -> Request[RegisterDomain]:
        """Register and domain of a definition; the word is not asked, so equal texts share."""
        return self._ask("register_domain", RegisterDomain, definition=definition)

    def word_forms(self, word: str, part_of_speech: PartOfSpeech) -> Request[WordForms]:
        """Inflected forms of ``word`` as a ``part_of_speech``; shared by all its senses."""
        return self._ask("word_forms", WordForms, word=word, part_of_speech=part_of_speech)

    def _sense(
        self,
        name: str,
        response_format: type[M],
        word: str,
        part_of_speech: PartOfSpeech,
        definition: str,
    ) -> Request[M]:
        return self._ask(
            name, response_format, word=word, part_of_speech=part_of_speech, definition=definition
        )
