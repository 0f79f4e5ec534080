"""A deterministic fake API for the lexicon: schema-valid answers derived from each op.

The answer to an op is a function of its key (the digest of its body), so the same
call always gets the same answer, whichever runner asks and in whatever order.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from inert import Op
from inert._json import JSON, JSONObject
from lexicon import MeaningCluster, MeaningClusters, PartOfSpeech

_WORD = re.compile(r'"([a-z]+)"')


def schema_name(op: Op[Any]) -> str:
    """The name of the response model an op asks for (``MeaningClusters``, ...)."""
    fmt = op.body["response_format"]
    assert isinstance(fmt, dict)
    spec = fmt["json_schema"]
    assert isinstance(spec, dict)
    name = spec["name"]
    assert isinstance(name, str)
    return name


def prompt_of(op: Op[Any]) -> str:
    """The text of the single user message of an op."""
    messages = op.body["messages"]
    assert isinstance(messages, list)
    (message,) = messages
    assert isinstance(message, dict)
    content = message["content"]
    assert isinstance(content, str)
    return content


def word_of(op: Op[Any]) -> str:
    """The headword a prompt names first (every template but register_domain names it)."""
    found = _WORD.search(prompt_of(op))
    assert found is not None
    return found.group(1)


def random_value(schema: Mapping[str, Any], root: Mapping[str, Any], rng: random.Random) -> JSON:
    """A value valid for a strict JSON schema (the subset the lexicon's models use)."""
    if "$ref" in schema:
        name = str(schema["$ref"]).rsplit("/", 1)[-1]
        return random_value(root["$defs"][name], root, rng)
    if "enum" in schema:
        choices: list[JSON] = list(schema["enum"])
        return rng.choice(choices)
    kind = schema.get("type")
    if kind == "object":
        properties: Mapping[str, Any] = schema["properties"]
        return {name: random_value(sub, root, rng) for name, sub in properties.items()}
    if kind == "array":
        low = int(schema.get("minItems", 0))
        high = int(schema.get("maxItems", low + 3))
        return [random_value(schema["items"], root, rng) for _ in range(rng.randint(low, high))]
    if kind == "integer":
        return rng.randint(int(schema.get("minimum", 0)), int(schema.get("maximum", 20)))
    if kind == "number":
        return rng.uniform(float(schema.get("minimum", 0.0)), float(schema.get("maximum", 1.0)))
    assert kind == "string", schema
    return f"text {rng.getrandbits(48):012x}"


def chat_completion(
    content: str, *, prompt_tokens: int = 50, completion_tokens: int = 20
) -> JSONObject:
    """The raw body of a finished chat completion answering ``content``."""
    return {
        "id": "chatcmpl-lexicon",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": "gpt-4o-mini",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content, "refusal": None},
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


class SchemaResponder:
    """``respond(op)`` for a FakeRunner: a schema-valid answer seeded by the op's key.

    Args:
        clusters: when given, ``clusters(word)`` decides the meaning clusters of a
            word instead of the random answer, to pin the shape of a test.
    """

    def __init__(self, clusters: Callable[[str], Sequence[MeaningCluster]] | None = None) -> None:
        self._clusters = clusters

    def __call__(self, op: Op[Any]) -> JSON:
        name = schema_name(op)
        if name == "MeaningClusters" and self._clusters is not None:
            answer = MeaningClusters(clusters=list(self._clusters(word_of(op))))
            return chat_completion(answer.model_dump_json())
        fmt = op.body["response_format"]
        assert isinstance(fmt, dict)
        spec = fmt["json_schema"]
        assert isinstance(spec, dict)
        schema = spec["schema"]
        assert isinstance(schema, dict)
        value = random_value(schema, schema, random.Random(op.key))
        return chat_completion(json.dumps(value))


def cluster(id: str, part_of_speech: PartOfSpeech, *indexes: int) -> MeaningCluster:
    """A meaning cluster for a pinned answer."""
    return MeaningCluster(
        id=id,
        part_of_speech=part_of_speech,
        gloss=f"gloss of {id}",
        source_definition_indexes=list(indexes),
    )
