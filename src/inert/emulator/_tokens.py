"""How the emulator counts tokens: what it bills and what a batch enqueues.

There is no tokenizer: a piece of text counts ``ceil(len(text) / 4)`` tokens (a
common rule of thumb for English; the empty string counts 0), an array of token
ids counts its length. Per request (the ``body`` of an immediate call or of one
batch line):

- ``/v1/chat/completions``: every message counts its text (a string ``content``,
  or the ``text`` of its parts) plus 4; the request adds 3.
- ``/v1/responses``: ``instructions`` counts its text; a string ``input`` counts
  its text; each input item counts its text (string ``content`` or the ``text`` of
  its parts) plus 4; the request adds 3.
- ``/v1/completions``: each prompt (a string, a list of strings, a token array or
  a list of token arrays) counts its text or its length.
- ``/v1/embeddings``: each input counts like a prompt.
- ``/v1/moderations``: each input string, and the ``text`` of each text part.

A batch *enqueues* the sum of these over its lines (its prompt tokens: OpenAI's
Batch guide counts "enqueued prompt tokens per model"; output tokens are not
limited). For a request the emulator accepts, without token-id arrays, the count
never exceeds ``ceil(len(text) / 4)`` where ``text`` is the body's most compact
JSON (``json.dumps(body, separators=(",", ":"), ensure_ascii=False)``); any other
encoding of the body is longer, so an estimate of a quarter of the line's byte
length is conservative (``tests/emulator/test_tokens.py`` checks the bound as a
property).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

MESSAGE_OVERHEAD: Final = 4
REQUEST_OVERHEAD: Final = 3


def text_tokens(text: str) -> int:
    """``ceil(len(text) / 4)``: the emulator's token count of a piece of text."""
    return (len(text) + 3) // 4


def _content_tokens(content: object) -> int:
    if isinstance(content, str):
        return text_tokens(content)
    if isinstance(content, list):
        return sum(
            text_tokens(part["text"])
            for part in content
            if isinstance(part, dict) and isinstance(part.get("text"), str)
        )
    return 0


def _messages_tokens(messages: object) -> int:
    if not isinstance(messages, list):
        return REQUEST_OVERHEAD
    total = REQUEST_OVERHEAD
    for message in messages:
        if isinstance(message, dict):
            total += _content_tokens(message.get("content")) + MESSAGE_OVERHEAD
    return total


def _prompt_tokens(prompt: object) -> int:
    """A string, a token array, or a list of either."""
    if isinstance(prompt, str):
        return text_tokens(prompt)
    if isinstance(prompt, list):
        if all(isinstance(item, int) for item in prompt):
            return len(prompt)
        return sum(_prompt_tokens(item) for item in prompt if isinstance(item, str | list))
    return 0


def _moderation_tokens(inputs: object) -> int:
    if isinstance(inputs, str):
        return text_tokens(inputs)
    if isinstance(inputs, list):
        total = 0
        for item in inputs:
            if isinstance(item, str):
                total += text_tokens(item)
            elif isinstance(item, dict) and isinstance(item.get("text"), str):
                total += text_tokens(item["text"])
        return total
    return 0


def _responses_tokens(body: Mapping[str, Any]) -> int:
    total = REQUEST_OVERHEAD
    instructions = body.get("instructions")
    if isinstance(instructions, str):
        total += text_tokens(instructions)
    inputs = body.get("input")
    if isinstance(inputs, str):
        total += text_tokens(inputs)
    elif isinstance(inputs, list):
        for item in inputs:
            if isinstance(item, dict):
                total += _content_tokens(item.get("content")) + MESSAGE_OVERHEAD
    return total


def prompt_tokens(endpoint: str, body: Mapping[str, Any]) -> int:
    """The prompt tokens of a request to ``endpoint``: what it bills and enqueues.

    Defined for any body (a malformed one counts what it can), so the enqueued
    count of a batch does not depend on which lines turn out valid.
    """
    if endpoint == "/v1/chat/completions":
        return _messages_tokens(body.get("messages"))
    if endpoint == "/v1/responses":
        return _responses_tokens(body)
    if endpoint == "/v1/completions":
        return _prompt_tokens(body.get("prompt"))
    if endpoint == "/v1/embeddings":
        return _prompt_tokens(body.get("input"))
    if endpoint == "/v1/moderations":
        return _moderation_tokens(body.get("input"))
    return 0
