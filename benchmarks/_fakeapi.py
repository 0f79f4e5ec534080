"""An in-memory, deterministic stand-in for the chat API, shared by the engine benchmarks.

Every benchmark that compares inert with a hand-written loop calls the same
``answer(body)`` on both sides, so the comparison measures what inert adds (op
building, keys, the engine, decoding through the op) and nothing else.

The answers are canned per response model, cheap to make, and schema-valid for the
lexicon's models. Meaning clusters and synthesized definitions carry a tag derived
from the prompt, so two words never share a definition text by accident and the
calls of different words stay distinct (as they are in real use).
"""

from __future__ import annotations

import json
import re
import zlib
from collections.abc import Mapping
from functools import cache
from typing import Any, Final

from pydantic import BaseModel

from inert import Op
from inert._json import JSON, JSONObject
from lexicon import ProviderDefinition, SampleWord, sample_words

_PARTS_OF_SPEECH: Final = ("noun", "noun", "verb", "adjective")
"""The clusters' parts of speech when the prompt lists no definitions."""
_LISTED: Final = re.compile(r"^(\d+)\. \((noun|verb|adjective|adverb)\)", re.MULTILINE)
MAX_CLUSTERS: Final = 4
"""Clusters per word: one per provider definition, at most this many (C ≈ 4)."""

_FIXED: Final[Mapping[str, str]] = {
    name: json.dumps(value, ensure_ascii=False)
    for name, value in {
        "Pronunciation": {"ipa": "ˈwɜːd", "respelling": "WURD", "syllables": 1},
        "WordFacts": {"etymology": "Old English.", "frequency_band": 2, "facts": ["A fact."]},
        "Synonyms": {"synonyms": [{"word": "alike", "closeness": 0.8}]},
        "Antonyms": {"antonyms": ["opposite"]},
        "Examples": {"sentences": ["An example sentence."]},
        "UsageNotes": {"notes": ["A usage note."]},
        "RegisterDomain": {"usage_register": "neutral", "domain": "general"},
        "WordForms": {"forms": [{"form": "words", "label": "plural"}]},
    }.items()
}


def schema_name(body: Mapping[str, Any]) -> str:
    """The name of the response model a structured-output body asks for."""
    name: str = body["response_format"]["json_schema"]["name"]
    return name


def prompt_of(body: Mapping[str, Any]) -> str:
    """The text of the (single) user message of a body."""
    content: str = body["messages"][-1]["content"]
    return content


def _content(name: str, prompt: str) -> str:
    fixed = _FIXED.get(name)
    if fixed is not None:
        return fixed
    tag = f"{zlib.crc32(prompt.encode()):08x}"
    if name == "MeaningClusters":
        # One cluster for each of the first four provider definitions, with their
        # parts of speech (as listed in the prompt), so word forms repeat as in real use.
        listed = _LISTED.findall(prompt)[:MAX_CLUSTERS] or list(enumerate(_PARTS_OF_SPEECH))
        clusters = [
            {
                "id": f"m{i}",
                "part_of_speech": pos,
                "gloss": f"sense {i} {tag}",
                "source_definition_indexes": [int(i)],
            }
            for i, pos in listed
        ]
        return json.dumps({"clusters": clusters})
    if name == "SynthesizedDefinition":
        return json.dumps({"text": f"definition {tag}"})
    raise KeyError(f"no canned answer for response model {name!r}")


def completion(content: str, model: str) -> JSONObject:
    """The raw body of a finished chat completion whose message is ``content``."""
    return {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": 0,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content, "refusal": None},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 50, "completion_tokens": 20, "total_tokens": 70},
    }


def answer(body: Mapping[str, Any]) -> JSONObject:
    """The canned chat completion answering a lexicon structured-output body."""
    return completion(_content(schema_name(body), prompt_of(body)), str(body["model"]))


def respond(op: Op[Any]) -> JSON:
    """``answer`` for an op: the responder given to ``FakeRunner``."""
    return answer(op.body)


def decode_content(raw: Mapping[str, Any], model: type[BaseModel]) -> Any:
    """What a hand-written client does with an answer: validate the message content."""
    return model.model_validate_json(raw["choices"][0]["message"]["content"])


@cache
def response_format(model: type[BaseModel]) -> dict[str, Any]:
    """The strict ``response_format`` the SDK's ``parse`` sends, built once per model."""
    from openai.lib import type_to_response_format_param

    fmt = type_to_response_format_param(model)
    if not isinstance(fmt, dict):  # pragma: no cover - the SDK returns a mapping for a model
        raise TypeError(f"no response_format for {model!r}")
    return dict(fmt)


def words(count: int) -> list[SampleWord]:
    """``count`` distinct words: the sample data set, then numbered variants of it."""
    sample = sample_words(300)
    chosen: list[SampleWord] = []
    for i in range(count):
        base = sample[i % len(sample)]
        lap = i // len(sample)
        word = base.word if lap == 0 else f"{base.word}{lap}"
        definitions: tuple[ProviderDefinition, ...] = base.definitions
        chosen.append(SampleWord(word=word, definitions=definitions))
    return chosen
