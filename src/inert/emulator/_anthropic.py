"""Anthropic's Messages API (``POST /v1/messages``): validation, answers and error shapes.

Shapes follow the ``anthropic`` SDK's own models (``anthropic.types.Message``,
``Usage``, ``TextBlock``; ``ErrorResponse`` for errors) and Anthropic's API
reference (platform.claude.com/docs/en/api/messages):

* a request needs ``model``, ``max_tokens`` (a whole number of at least 1) and a
  non-empty ``messages`` list whose items have a ``role`` (``user``, ``assistant``
  or ``system``) and a ``content`` (text or a list of blocks); any top-level field
  the API does not define is refused ("Extra inputs are not permitted"), as
  Anthropic refuses it;
* structured outputs: ``output_config.format`` of type ``json_schema`` with a
  ``schema`` whose every object has ``additionalProperties: false`` (Anthropic's
  structured-outputs guide requires it); the answer's text is JSON valid for the
  schema, as chat's structured outputs;
* the ``anthropic`` SDK moves what structured outputs do not enforce (bounds,
  lengths) from the schema into the property's ``description``, as
  ``{minimum: 1, maximum: 5}``, where the model may follow it
  (``anthropic.lib._parse._transform.transform_schema``); the emulator's model
  follows those hints, as a careful model does (the ``invalid_output`` fault
  stands for one that does not);
* the answer is one ``text`` block; ``stop_reason`` is ``end_turn``, or
  ``max_tokens`` when the answer is cut (by ``max_tokens`` or the ``truncation``
  fault), or ``refusal`` (the ``refusal`` fault);
* errors are ``{"type": "error", "error": {"type": ..., "message": ...},
  "request_id": ...}``.

Tokens: ``system`` and every message count their text (``ceil(len / 4)``, a
string ``content`` or the ``text`` of its blocks) plus 4 per message; the request
adds 3 (the same rule of thumb as ``_tokens``).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from typing import Any, Final

from inert._json import JSON, JSONObject, op_key

from ._answers import REFUSAL_TEXT, draft_answer, rng_for
from ._faults import Faults, answer_fault
from ._tokens import MESSAGE_OVERHEAD, REQUEST_OVERHEAD, text_tokens

MESSAGES_PATH: Final = "/v1/messages"
"""The Messages endpoint; an Anthropic op's endpoint (and its ledger entry's)."""

PREFIX: Final = "/anthropic"
"""Where the emulator serves Anthropic's API: ``anthropic.AsyncAnthropic(base_url=emu.anthropic_base_url)``."""

ROLES: Final = ("user", "assistant", "system")
FIELDS: Final = frozenset(
    {
        "model", "max_tokens", "messages", "cache_control", "container", "diagnostics",
        "inference_geo", "metadata", "output_config", "service_tier", "speed",
        "stop_sequences", "stream", "system", "thinking", "tool_choice", "tools",
    }
)  # fmt: skip
"""The body fields of ``MessageCreateParams`` as the ``anthropic`` SDK 2.x types them
(``temperature``, ``top_k`` and ``top_p`` are gone from them)."""


def anthropic_error(kind: str, message: str) -> JSONObject:
    """Anthropic's error body (the SDK's ``ErrorResponse``)."""
    return {
        "type": "error",
        "error": {"type": kind, "message": message},
        "request_id": f"req_{uuid.uuid4().hex[:24]}",
    }


def invalid(message: str) -> JSONObject:
    """An ``invalid_request_error`` body (HTTP 400)."""
    return anthropic_error("invalid_request_error", message)


def _open_object(schema: object, where: str) -> str | None:
    work: list[tuple[object, str]] = [(schema, where)]
    while work:
        node, at = work.pop()
        if isinstance(node, list):
            work.extend((item, f"{at}[{i}]") for i, item in enumerate(node))
            continue
        if not isinstance(node, dict):
            continue
        if node.get("type") == "object" and node.get("additionalProperties") is not False:
            return at
        work.extend((value, f"{at}.{key}") for key, value in node.items())
    return None


def _check_format(config: object) -> JSONObject | None:
    if config is None:
        return None
    if not isinstance(config, dict):
        return invalid("output_config: Input should be an object")
    fmt = config.get("format")
    if fmt is None:
        return None
    if not isinstance(fmt, dict) or fmt.get("type") != "json_schema":
        return invalid("output_config.format.type: Input should be 'json_schema'")
    schema = fmt.get("schema")
    if not isinstance(schema, dict):
        return invalid("output_config.format.schema: Field required")
    where = _open_object(schema, "output_config.format.schema")
    if where is not None:
        return invalid(
            f"{where}: For 'object' type, 'additionalProperties' must be explicitly set to false"
        )
    return None


def validate_message(body: Mapping[str, Any]) -> JSONObject | None:
    """An Anthropic-shaped 400 body when the Messages request is malformed, else None."""
    for name in body:
        if name not in FIELDS:
            return invalid(f"{name}: Extra inputs are not permitted")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        return invalid("model: Field required")
    limit = body.get("max_tokens")
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        return invalid("max_tokens: Field required (a whole number of at least 1)")
    if body.get("stream") is True:
        return invalid("stream: the emulator answers whole messages only")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return invalid("messages: Field required (a non-empty list)")
    for i, item in enumerate(messages):
        if not isinstance(item, dict) or item.get("role") not in ROLES:
            return invalid(f"messages.{i}.role: Input should be 'user', 'assistant' or 'system'")
        if not isinstance(item.get("content"), str | list):
            return invalid(f"messages.{i}.content: Field required")
    system = body.get("system")
    if system is not None and not isinstance(system, str | list):
        return invalid("system: Input should be a valid string or a list of text blocks")
    return _check_format(body.get("output_config"))


def _content_tokens(content: object) -> int:
    if isinstance(content, str):
        return text_tokens(content)
    total = 0
    if isinstance(content, list):
        for block in content:
            if isinstance(block, dict) and isinstance(block.get("text"), str):
                total += text_tokens(block["text"])
    return total


def message_tokens(body: Mapping[str, Any]) -> int:
    """The input tokens a Messages request bills (see the module docstring)."""
    total = REQUEST_OVERHEAD + _content_tokens(body.get("system"))
    messages = body.get("messages")
    if isinstance(messages, list):
        for item in messages:
            if isinstance(item, dict):
                total += _content_tokens(item.get("content")) + MESSAGE_OVERHEAD
    return total


_HINT: Final = re.compile(r"\{(\w+: [^{}]*)\}$")
"""The constraints the SDK appends to a description: ``{key: value, key: value}``."""
_HINTED: Final = frozenset(
    {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf",
     "minItems", "maxItems", "minLength", "maxLength"}
)  # fmt: skip
"""The numeric constraints the emulator's model reads back from a description."""


def followed_hints(schema: object) -> Any:
    """``schema`` with the numeric constraints its descriptions hint at put back in place."""
    if isinstance(schema, list):
        return [followed_hints(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    restored: dict[str, Any] = {key: followed_hints(value) for key, value in schema.items()}
    description = schema.get("description")
    match = _HINT.search(description) if isinstance(description, str) else None
    if match is not None:
        for pair in match.group(1).split(", "):
            key, _, value = pair.partition(": ")
            if key in _HINTED and key not in restored:
                try:
                    restored[key] = int(value)
                except ValueError:
                    try:
                        restored[key] = float(value)
                    except ValueError:
                        continue
    return restored


def message_object(
    body: Mapping[str, Any], faults: Faults, *, batch: bool
) -> tuple[JSONObject, int, int]:
    """The ``Message`` answering a valid body, and its input and output tokens."""
    key = op_key(MESSAGES_PATH, dict(body))
    rng = rng_for(key, "anthropic")
    config: Mapping[str, Any] = body.get("output_config") or {}
    fmt: Mapping[str, Any] = config.get("format") or {}
    schema = followed_hints(fmt.get("schema")) if fmt.get("type") == "json_schema" else None
    fault = answer_fault(faults, key)
    draft = draft_answer(rng, fault=fault, schema=schema, limit=int(body["max_tokens"]))
    stop = "end_turn"
    text = draft.content or ""
    if draft.refusal is not None:
        stop, text = "refusal", REFUSAL_TEXT
    elif draft.cut:
        stop = "max_tokens"
    input_tokens = message_tokens(body)
    output_tokens = draft.tokens
    usage: JSON = {
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "service_tier": "batch" if batch else "standard",
    }
    message: JSONObject = {
        "id": f"msg_{uuid.uuid4().hex[:24]}",
        "type": "message",
        "role": "assistant",
        "model": str(body["model"]),
        "content": [{"type": "text", "text": text, "citations": None}],
        "stop_reason": stop,
        "stop_sequence": None,
        "usage": usage,
    }
    return message, input_tokens, output_tokens
