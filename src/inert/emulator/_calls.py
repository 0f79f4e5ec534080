"""Model calls: every request to a model endpoint, immediate or batch line, passes here.

``answer(endpoint, body, ...)`` validates a body and produces the deterministic
answer and its token counts; nothing is billed here (the caller bills a 200).
This is the one place to hook behaviour that applies to every model call.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from typing import Any, Final

import attrs

from inert._json import JSONObject, op_key

from ._answers import (
    CHAT_PATH,
    EMBEDDINGS_PATH,
    chat_completion,
    embedding_response,
    validate_chat,
    validate_embedding,
)
from ._completions import (
    COMPLETIONS_PATH,
    MODERATIONS_PATH,
    completion_response,
    moderation_response,
    validate_completion,
    validate_moderation,
)
from ._faults import Faults
from ._responses import RESPONSES_PATH, response_object, validate_response_request


@attrs.frozen
class Answer:
    """The HTTP status and body of a model call, and the tokens a 200 bills."""

    status: int
    body: JSONObject
    prompt_tokens: int = 0
    completion_tokens: int = 0


def _chat(body: Mapping[str, Any], faults: Faults, created: int) -> Answer:
    invalid = validate_chat(body)
    if invalid is not None:
        return Answer(400, invalid)
    key = op_key(CHAT_PATH, dict(body))
    completion, prompt, completion_tokens = chat_completion(
        body, key, faults, created=created, request_id=uuid.uuid4().hex[:24]
    )
    return Answer(200, completion, prompt, completion_tokens)


def _embeddings(body: Mapping[str, Any], faults: Faults, created: int) -> Answer:
    invalid = validate_embedding(body)
    if invalid is not None:
        return Answer(400, invalid)
    response, tokens = embedding_response(body)
    return Answer(200, response, tokens, 0)


def _responses(body: Mapping[str, Any], faults: Faults, created: int) -> Answer:
    invalid = validate_response_request(body)
    if invalid is not None:
        return Answer(400, invalid)
    key = op_key(RESPONSES_PATH, dict(body))
    response, input_tokens, output_tokens = response_object(
        body, key, faults, created=created, request_id=uuid.uuid4().hex[:24]
    )
    return Answer(200, response, input_tokens, output_tokens)


def _completions(body: Mapping[str, Any], faults: Faults, created: int) -> Answer:
    invalid = validate_completion(body)
    if invalid is not None:
        return Answer(400, invalid)
    key = op_key(COMPLETIONS_PATH, dict(body))
    response, prompt, completion = completion_response(
        body, key, faults, created=created, request_id=uuid.uuid4().hex[:24]
    )
    return Answer(200, response, prompt, completion)


def _moderations(body: Mapping[str, Any], faults: Faults, created: int) -> Answer:
    invalid = validate_moderation(body)
    if invalid is not None:
        return Answer(400, invalid)
    response, tokens = moderation_response(body, request_id=uuid.uuid4().hex[:24])
    return Answer(200, response, tokens, 0)


ENDPOINTS: Final[Mapping[str, Callable[[Mapping[str, Any], Faults, int], Answer]]] = {
    RESPONSES_PATH: _responses,
    CHAT_PATH: _chat,
    EMBEDDINGS_PATH: _embeddings,
    COMPLETIONS_PATH: _completions,
    MODERATIONS_PATH: _moderations,
}
"""Every model endpoint the emulator serves, immediately and in batches."""


def answer(endpoint: str, body: Mapping[str, Any], *, faults: Faults, created: int) -> Answer:
    """The answer to one model call (``endpoint`` is one of ``ENDPOINTS``)."""
    return ENDPOINTS[endpoint](body, faults, created)
