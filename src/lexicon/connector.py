"""``Lexicon``: the dictionary connector whose methods build requests and perform no I/O.

Each method renders its prompt template (``lexicon/prompts/<method>.txt``) into a
single user message and returns ``Request[Model]`` from
:func:`inert.openai.structured`, or, for the stages given to Claude
(``Lexicon(on_claude=...)``, ``Lexicon.for_provider("mixed")``), from
:func:`inert.anthropic.message` with the same prompt and model class. There is no
batch twin of any method and no mode switch: the runner that executes the request
decides immediate or batch, so both modes send the very same body by construction,
and each provider's calls go through its own API (and its own batch API).

Methods take exactly the inputs their answer depends on, because the op key (the
digest of the body) is the dedup and cache key: ``register_domain`` sees only the
definition text, so two words sharing a definition share one call; ``word_forms``
sees only the word and its part of speech, so every definition of the same part
of speech shares one call.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from functools import cache
from importlib.resources import files
from string import Template
from typing import Final, Literal, TypeVar

from anthropic.types import MessageParam
from openai.types.chat import ChatCompletionUserMessageParam
from pydantic import BaseModel

from inert import Request
from inert.anthropic import message
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
"""One prompt template per connector method, named after it: the pipeline's stages."""

ProviderChoice = Literal["openai", "anthropic", "mixed"]
"""Where the stages go: all to GPT, all to Claude, or some to each (``MIXED_ON_CLAUDE``)."""

MIXED_ON_CLAUDE: Final = frozenset({"facts", "define", "examples", "usage_notes"})
"""The stages a mixed run asks Claude: the word facts, the synthesized definitions,
the example sentences and the usage notes (the prose); the rest stays on GPT. The
first and third rounds then ask both providers, the second Claude alone."""

DEFAULT_CLAUDE_MODEL: Final = "claude-haiku-4-5"
CLAUDE_MAX_TOKENS: Final = 1024
"""The answer length cap sent to Claude when none is given (Anthropic requires one)."""


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
        model: the OpenAI chat model the GPT stages name.
        claude_model: the Anthropic model the stages in ``on_claude`` name.
        on_claude: the stages (``TEMPLATE_NAMES``) asked of Claude through Anthropic's
            Messages API instead of GPT; the prompt and the answer's model class are
            the same.
        temperature: sampling temperature, sent only when given (the API default
            otherwise), so the same settings always give the same bodies.
        max_completion_tokens: a cap on each answer's length, sent only when given
            (to Claude, whose API requires one, ``CLAUDE_MAX_TOKENS`` otherwise).

    Raises:
        ValueError: ``on_claude`` names a stage that does not exist.
    """

    def __init__(
        self,
        *,
        model: str = "gpt-4o-mini",
        claude_model: str = DEFAULT_CLAUDE_MODEL,
        on_claude: Iterable[str] = (),
        temperature: float | None = None,
        max_completion_tokens: int | None = None,
    ) -> None:
        self.model = model
        self.claude_model = claude_model
        self.on_claude = frozenset(on_claude)
        unknown = sorted(self.on_claude - set(TEMPLATE_NAMES))
        if unknown:
            raise ValueError(
                f"on_claude names no stage {', '.join(map(repr, unknown))}; the stages are "
                f"{', '.join(TEMPLATE_NAMES)}"
            )
        self.temperature = temperature
        self.max_completion_tokens = max_completion_tokens
        self._templates = load_templates()

    @classmethod
    def for_provider(
        cls,
        provider: ProviderChoice,
        *,
        model: str = "gpt-4o-mini",
        claude_model: str = DEFAULT_CLAUDE_MODEL,
        temperature: float | None = None,
        max_completion_tokens: int | None = None,
    ) -> Lexicon:
        """A connector whose stages go to GPT (``"openai"``), to Claude
        (``"anthropic"``), or some to each (``"mixed"``: ``MIXED_ON_CLAUDE`` on Claude)."""
        on_claude: Iterable[str] = {
            "openai": (),
            "anthropic": TEMPLATE_NAMES,
            "mixed": MIXED_ON_CLAUDE,
        }[provider]
        return cls(
            model=model,
            claude_model=claude_model,
            on_claude=on_claude,
            temperature=temperature,
            max_completion_tokens=max_completion_tokens,
        )

    def __repr__(self) -> str:
        claude = (
            f", claude_model={self.claude_model!r}, on_claude={sorted(self.on_claude)!r}"
            if self.on_claude
            else ""
        )
        return f"Lexicon(model={self.model!r}{claude}, temperature={self.temperature!r})"

    def _ask(self, name: str, response_format: type[M], **values: str) -> Request[M]:
        prompt = render(self._templates[name], **values)
        params: dict[str, object] = {}
        if self.temperature is not None:
            params["temperature"] = self.temperature
        if name in self.on_claude:
            turn: MessageParam = {"role": "user", "content": prompt}
            return message(
                model=self.claude_model,
                max_tokens=self.max_completion_tokens or CLAUDE_MAX_TOKENS,
                messages=[turn],
                output_format=response_format,
                dedup=True,
                **params,
            )
        if self.max_completion_tokens is not None:
            params["max_completion_tokens"] = self.max_completion_tokens
        user: ChatCompletionUserMessageParam = {"role": "user", "content": prompt}
        return structured(
            model=self.model,
            messages=[user],
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
