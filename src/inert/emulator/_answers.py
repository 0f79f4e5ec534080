"""Deterministic answers: schema-valid JSON, plain text, embeddings and usage.

Every answer is derived from a ``random.Random`` seeded by the request's key (the
digest of its canonical body), so the same body always gets the same answer.
"""

from __future__ import annotations

import base64
import json
import random
import struct
from collections.abc import Mapping
from typing import Any, Final

import attrs

from inert._json import JSON, JSONObject

from ._errors import error_body
from ._faults import Faults, answer_fault
from ._tokens import prompt_tokens, text_tokens

__all__ = [
    "CHAT_PATH",
    "EMBEDDINGS_PATH",
    "REFUSAL_TEXT",
    "WORDS",
    "Draft",
    "chat_completion",
    "draft_answer",
    "embedding_response",
    "error_body",
    "invalid_answer",
    "rng_for",
    "schema_answer",
    "validate_chat",
    "validate_embedding",
]

CHAT_PATH: Final = "/v1/chat/completions"
EMBEDDINGS_PATH: Final = "/v1/embeddings"

WORDS: Final = (
    "amber", "anchor", "apple", "arch", "autumn", "beacon", "birch", "bright", "brook",
    "candle", "canyon", "cedar", "clear", "cloud", "copper", "coral", "crisp", "dawn",
    "delta", "drift", "ember", "fable", "fern", "field", "flint", "frost", "gentle",
    "glade", "granite", "harbor", "hazel", "hollow", "iris", "ivory", "jade", "juniper",
    "kernel", "lantern", "linen", "maple", "meadow", "mellow", "mist", "noble", "north",
    "oak", "ocean", "olive", "orbit", "pebble", "pine", "quartz", "quiet", "river",
    "rustle", "saffron", "silver", "slate", "spruce", "stone", "summer", "swift",
    "thistle", "timber", "umber", "valley", "velvet", "willow", "winter", "zephyr",
)  # fmt: skip

ROLES: Final = ("system", "developer", "user", "assistant", "tool", "function")
"""The message roles of ``ChatCompletionRequestMessage`` (openai/openai-openapi)."""

REFUSAL_TEXT: Final = "I'm sorry, but I can't help with that request."
_MAX_DEPTH: Final = 6


def rng_for(key: str, salt: str = "") -> random.Random:
    """A generator seeded by a request key, so answers are reproducible."""
    return random.Random(f"{salt}:{key}")


# --- schema-valid values ------------------------------------------------------------


class _Generator:
    def __init__(self, root: Mapping[str, Any], rng: random.Random) -> None:
        self.root = root
        self.rng = rng

    def resolve(self, schema: Mapping[str, Any]) -> Mapping[str, Any]:
        seen = 0
        while "$ref" in schema and seen < 50:
            ref = str(schema["$ref"])
            node: Any = self.root
            if not ref.startswith("#"):
                raise ValueError(f"unsupported $ref {ref!r}")
            for part in ref.lstrip("#").strip("/").split("/"):
                if part:
                    node = node[part.replace("~1", "/").replace("~0", "~")]
            schema = node
            seen += 1
        return schema

    def value(self, schema: Mapping[str, Any], depth: int = 0) -> JSON:
        schema = self.resolve(schema)
        rng = self.rng
        if "const" in schema:
            const: JSON = schema["const"]
            return const
        if "enum" in schema:
            choices: list[JSON] = list(schema["enum"])
            return rng.choice(choices)
        for combinator in ("anyOf", "oneOf"):
            if combinator in schema:
                branches = [self.resolve(b) for b in schema[combinator]]
                non_null = [b for b in branches if b.get("type") != "null"]
                if non_null and (depth >= _MAX_DEPTH or rng.random() < 0.75):
                    return self.value(rng.choice(non_null), depth + 1)
                return self.value(rng.choice(branches), depth + 1)
        if "allOf" in schema and len(schema["allOf"]) == 1:
            return self.value(schema["allOf"][0], depth)
        kind = schema.get("type")
        if isinstance(kind, list):
            kinds = [str(k) for k in kind]
            if "null" in kinds and len(kinds) > 1 and (depth >= _MAX_DEPTH or rng.random() < 0.75):
                kinds.remove("null")
            kind = rng.choice(kinds)
        if kind == "object" or (kind is None and "properties" in schema):
            props: Mapping[str, Any] = schema.get("properties", {})
            # Draw in name order, so the answer depends on the body's content and
            # not on the order its keys were written in; emit in schema order.
            drawn = {name: self.value(props[name], depth + 1) for name in sorted(props)}
            return {name: drawn[name] for name in props}
        if kind == "array":
            low = int(schema.get("minItems", 0))
            high = int(schema.get("maxItems", max(low, 3)))
            if depth >= _MAX_DEPTH:
                high = low
            count = rng.randint(low, max(low, high))
            items: Mapping[str, Any] = schema.get("items", {"type": "string"})
            return [self.value(items, depth + 1) for _ in range(count)]
        if kind == "string":
            return self.string(schema)
        if kind == "integer":
            return self.integer(schema)
        if kind == "number":
            low_f = float(schema.get("minimum", schema.get("exclusiveMinimum", 0.0)))
            high_f = float(schema.get("maximum", schema.get("exclusiveMaximum", low_f + 100.0)))
            mid = round(rng.uniform(low_f, high_f), 3)
            return min(max(mid, low_f), high_f) if low_f < high_f else low_f
        if kind == "boolean":
            return rng.random() < 0.5
        if kind == "null":
            return None
        return self.string({})

    def integer(self, schema: Mapping[str, Any]) -> int:
        low = int(schema.get("minimum", 0))
        if "exclusiveMinimum" in schema:
            low = int(schema["exclusiveMinimum"]) + 1
        high = int(schema.get("maximum", low + 100))
        if "exclusiveMaximum" in schema:
            high = int(schema["exclusiveMaximum"]) - 1
        value = self.rng.randint(low, max(low, high))
        multiple = schema.get("multipleOf")
        if isinstance(multiple, int) and multiple > 0:
            value -= value % multiple
            if value < low:
                value += multiple
        return value

    def string(self, schema: Mapping[str, Any]) -> str:
        rng = self.rng
        fmt = schema.get("format")
        if fmt == "date-time":
            return f"20{rng.randint(10, 29)}-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}T12:00:00Z"
        if fmt == "date":
            return f"20{rng.randint(10, 29)}-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}"
        if fmt == "time":
            return f"1{rng.randint(0, 9)}:30:00"
        if fmt == "email":
            return f"{rng.choice(WORDS)}@example.com"
        if fmt == "uuid":
            return f"{rng.getrandbits(32):08x}-0000-4000-8000-{rng.getrandbits(48):012x}"
        if fmt in ("uri", "url"):
            return f"https://example.com/{rng.choice(WORDS)}"
        text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 4)))
        low = int(schema.get("minLength", 0))
        high = schema.get("maxLength")
        while len(text) < low:
            text += " " + rng.choice(WORDS)
        if isinstance(high, int):
            text = text[:high].rstrip() or text[:high]
        return text


def schema_answer(schema: Mapping[str, Any], rng: random.Random) -> JSON:
    """A JSON value valid for a strict OpenAI JSON schema."""
    return _Generator(schema, rng).value(schema)


def invalid_answer(schema: Mapping[str, Any], rng: random.Random) -> JSON:
    """Valid JSON that does not match the schema (a required field is missing)."""
    gen = _Generator(schema, rng)
    value = gen.value(schema)
    if isinstance(value, dict):
        required = [str(name) for name in gen.resolve(schema).get("required", [])]
        if required:
            del value[rng.choice(required)]
            return value
    return [value]


# --- what the model says -------------------------------------------------------------


@attrs.frozen
class Draft:
    """The text a model call answers: content or a refusal, and whether it was cut."""

    content: str | None
    refusal: str | None = None
    cut: bool = False

    @property
    def tokens(self) -> int:
        """The completion tokens it bills (at least 1)."""
        return max(1, text_tokens(self.content if self.content is not None else self.refusal or ""))


def draft_answer(
    rng: random.Random,
    *,
    fault: str | None,
    schema: Mapping[str, Any] | None,
    json_object: bool = False,
    limit: int | None = None,
    sentence: tuple[int, int] = (6, 18),
) -> Draft:
    """What a model answers: schema-valid JSON, a JSON object or a sentence, with faults.

    ``refusal`` refuses, ``invalid_output`` breaks the schema, ``truncation`` cuts the
    text in half; a ``limit`` of tokens cuts the text to about ``4 * limit`` characters.
    """
    if fault == "refusal":
        return Draft(None, REFUSAL_TEXT)
    if schema is not None:
        value = (
            invalid_answer(schema, rng) if fault == "invalid_output" else schema_answer(schema, rng)
        )
        content = json.dumps(value, ensure_ascii=False)
    elif json_object:
        content = json.dumps({"answer": " ".join(rng.choice(WORDS) for _ in range(3))})
    else:
        words = [rng.choice(WORDS) for _ in range(rng.randint(*sentence))]
        content = " ".join(words).capitalize() + "."
    if fault == "truncation":
        return Draft(content[: max(1, len(content) // 2)], cut=True)
    if limit is not None and text_tokens(content) > limit:
        return Draft(content[: max(1, limit * 4)], cut=True)
    return Draft(content)


# --- chat completions -----------------------------------------------------------------


def validate_chat(body: Mapping[str, Any]) -> JSONObject | None:
    """An OpenAI-shaped 400 body when the chat request is malformed, else None."""
    model = body.get("model")
    if not isinstance(model, str) or not model:
        return error_body(
            "you must provide a model parameter", param="model", code="missing_required_parameter"
        )
    messages = body.get("messages")
    if messages is None:
        return error_body(
            "Missing required parameter: 'messages'.",
            param="messages",
            code="missing_required_parameter",
        )
    if not isinstance(messages, list) or not messages:
        return error_body(
            "Invalid 'messages': expected a non-empty array.", param="messages", code="invalid_type"
        )
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            return error_body(
                f"Missing required parameter: 'messages[{i}].role'.",
                param=f"messages[{i}].role",
                code="missing_required_parameter",
            )
        if message["role"] not in ROLES:
            supported = ", ".join(f"'{role}'" for role in ROLES)
            return error_body(
                f"Invalid value: '{message['role']}'. Supported values are: {supported}.",
                param=f"messages[{i}].role",
                code="invalid_value",
            )
    n = body.get("n", 1)
    if n is not None and n != 1:
        return error_body("The emulator supports only n=1.", param="n", code="invalid_value")
    fmt = body.get("response_format")
    if fmt is not None:
        if not isinstance(fmt, dict) or fmt.get("type") not in (
            "text",
            "json_object",
            "json_schema",
        ):
            return error_body(
                "Invalid 'response_format.type'.",
                param="response_format.type",
                code="invalid_value",
            )
        if fmt["type"] == "json_schema":
            spec = fmt.get("json_schema")
            if not isinstance(spec, dict) or not isinstance(spec.get("schema", {}), dict):
                return error_body(
                    "Missing required parameter: 'response_format.json_schema'.",
                    param="response_format.json_schema",
                    code="missing_required_parameter",
                )
            if not isinstance(spec.get("name"), str):
                return error_body(
                    "Missing required parameter: 'response_format.json_schema.name'.",
                    param="response_format.json_schema.name",
                    code="missing_required_parameter",
                )
    return None


def chat_completion(
    body: Mapping[str, Any], key: str, faults: Faults, *, created: int, request_id: str
) -> tuple[JSONObject, int, int]:
    """The completion for a valid chat body, and its prompt and completion tokens."""
    rng = rng_for(key, "chat")
    prompt = prompt_tokens(CHAT_PATH, body)
    fmt = body.get("response_format") or {}
    schema: Mapping[str, Any] | None = None
    if fmt.get("type") == "json_schema":
        schema = fmt["json_schema"].get("schema", {"type": "object", "properties": {}})
    limit = body.get("max_completion_tokens") or body.get("max_tokens")
    draft = draft_answer(
        rng,
        fault=answer_fault(faults, key),
        schema=schema,
        json_object=fmt.get("type") == "json_object",
        limit=limit if isinstance(limit, int) else None,
    )
    content, refusal = draft.content, draft.refusal
    finish = "length" if draft.cut else "stop"
    completion_tokens = draft.tokens
    completion: JSONObject = {
        "id": f"chatcmpl-{request_id}",
        "object": "chat.completion",
        "created": created,
        "model": str(body["model"]),
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": content,
                    "refusal": refusal,
                    "annotations": [],
                },
                "finish_reason": finish,
                "logprobs": None,
            }
        ],
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt + completion_tokens,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": 0,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        },
        "service_tier": "default",
        "system_fingerprint": "fp_inert_emulator",
    }
    return completion, prompt, completion_tokens


# --- embeddings ---------------------------------------------------------------------


def validate_embedding(body: Mapping[str, Any]) -> JSONObject | None:
    """An OpenAI-shaped 400 body when the embeddings request is malformed, else None."""
    if not isinstance(body.get("model"), str) or not body["model"]:
        return error_body(
            "you must provide a model parameter", param="model", code="missing_required_parameter"
        )
    inputs = body.get("input")
    ok = isinstance(inputs, str) or (
        isinstance(inputs, list) and inputs and all(isinstance(i, str | int | list) for i in inputs)
    )
    if not ok:
        return error_body(
            "'input' must be a string or a non-empty array of strings.",
            param="input",
            code="invalid_type",
        )
    dims = body.get("dimensions", 8)
    if not isinstance(dims, int) or isinstance(dims, bool) or not 1 <= dims <= 4096:
        return error_body(
            "'dimensions' must be an integer from 1 to 4096.",
            param="dimensions",
            code="invalid_value",
        )
    if body.get("encoding_format", "float") not in ("float", "base64"):
        return error_body("'encoding_format' must be 'float' or 'base64'.", param="encoding_format")
    return None


def embedding_response(body: Mapping[str, Any]) -> tuple[JSONObject, int]:
    """Deterministic unit vectors for each input, and the prompt tokens."""
    raw = body["input"]
    inputs: list[object] = [raw] if isinstance(raw, str) else list(raw)
    if inputs and all(isinstance(i, int) for i in inputs):
        inputs = [inputs]
    dims: int = body.get("dimensions", 8)
    as_base64 = body.get("encoding_format") == "base64"
    data: list[JSON] = []
    tokens = prompt_tokens(EMBEDDINGS_PATH, body)
    for index, item in enumerate(inputs):
        text = item if isinstance(item, str) else json.dumps(item)
        rng = random.Random(f"embedding:{body['model']}:{text}")
        vector = [rng.gauss(0.0, 1.0) for _ in range(dims)]
        norm = sum(v * v for v in vector) ** 0.5 or 1.0
        unit = [round(v / norm, 6) for v in vector]
        encoded: JSON
        if as_base64:
            encoded = base64.b64encode(struct.pack(f"<{dims}f", *unit)).decode("ascii")
        else:
            encoded = list(unit)
        data.append({"object": "embedding", "index": index, "embedding": encoded})
    response: JSONObject = {
        "object": "list",
        "data": data,
        "model": str(body["model"]),
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }
    return response, tokens
