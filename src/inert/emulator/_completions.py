"""``POST /v1/completions`` (legacy text completions) and ``POST /v1/moderations``.

Shapes follow openai/openai-openapi (``CreateCompletionRequest`` and
``CreateCompletionResponse``: ``max_tokens`` defaults to 16, so a longer answer
ends with ``finish_reason: "length"``; ``CreateModerationRequest`` and
``CreateModerationResponse``: one result per input, every category present).
Moderations are free at OpenAI; the ledger still records them (with no
completion tokens) so that a call made twice shows.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any, Final

from inert._json import JSON, JSONObject

from ._answers import draft_answer, rng_for
from ._errors import error_body
from ._faults import Faults, answer_fault
from ._tokens import prompt_tokens

COMPLETIONS_PATH: Final = "/v1/completions"
MODERATIONS_PATH: Final = "/v1/moderations"
DEFAULT_MAX_TOKENS: Final = 16
DEFAULT_MODERATION_MODEL: Final = "omni-moderation-latest"

CATEGORIES: Final = (
    "harassment", "harassment/threatening", "hate", "hate/threatening", "illicit",
    "illicit/violent", "self-harm", "self-harm/instructions", "self-harm/intent", "sexual",
    "sexual/minors", "violence", "violence/graphic",
)  # fmt: skip
"""The categories of ``CreateModerationResponse``, each required in every result."""

IMAGE_CATEGORIES: Final = (
    "self-harm", "self-harm/instructions", "self-harm/intent", "sexual", "violence",
    "violence/graphic",
)  # fmt: skip
"""The categories whose ``category_applied_input_types`` may include ``image``."""


def _is_prompt(prompt: object) -> bool:
    if isinstance(prompt, str):
        return True
    if not isinstance(prompt, list) or not prompt:
        return False
    if all(isinstance(p, str) for p in prompt):
        return True
    if all(isinstance(p, int) and not isinstance(p, bool) for p in prompt):
        return True
    return all(
        isinstance(p, list) and p and all(isinstance(t, int) and not isinstance(t, bool) for t in p)
        for p in prompt
    )


def _prompts(prompt: object) -> list[object]:
    if isinstance(prompt, list) and prompt and not all(isinstance(p, int) for p in prompt):
        return list(prompt)
    return [prompt]


def validate_completion(body: Mapping[str, Any]) -> JSONObject | None:
    """An OpenAI-shaped 400 body when the completions request is malformed, else None."""
    model = body.get("model")
    if not isinstance(model, str) or not model:
        return error_body(
            "you must provide a model parameter", param="model", code="missing_required_parameter"
        )
    if "prompt" not in body:
        return error_body(
            "Missing required parameter: 'prompt'.",
            param="prompt",
            code="missing_required_parameter",
        )
    if not _is_prompt(body["prompt"]):
        return error_body(
            "Invalid 'prompt': expected a string, an array of strings, an array of tokens, or "
            "an array of token arrays.",
            param="prompt",
            code="invalid_type",
        )
    n = body.get("n", 1)
    if n is not None and n != 1:
        return error_body("The emulator supports only n=1.", param="n", code="invalid_value")
    limit = body.get("max_tokens", DEFAULT_MAX_TOKENS)
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        return error_body(
            "Invalid 'max_tokens': expected a non-negative integer.",
            param="max_tokens",
            code="invalid_value",
        )
    return None


def completion_response(
    body: Mapping[str, Any], key: str, faults: Faults, *, created: int, request_id: str
) -> tuple[JSONObject, int, int]:
    """The ``CreateCompletionResponse`` (one choice per prompt) and its tokens."""
    limit = body.get("max_tokens", DEFAULT_MAX_TOKENS)
    fault = answer_fault(faults, key)
    choices: list[JSON] = []
    completion_tokens = 0
    for index, _ in enumerate(_prompts(body["prompt"])):
        draft = draft_answer(
            rng_for(f"{key}:{index}", "completions"),
            fault=None if fault == "refusal" else fault,
            schema=None,
            limit=limit if isinstance(limit, int) else None,
        )
        completion_tokens += draft.tokens
        choices.append(
            {
                "index": index,
                "text": " " + (draft.content or ""),
                "finish_reason": "length" if draft.cut else "stop",
                "logprobs": None,
            }
        )
    prompt = prompt_tokens(COMPLETIONS_PATH, body)
    response: JSONObject = {
        "id": f"cmpl-{request_id}",
        "object": "text_completion",
        "created": created,
        "model": str(body["model"]),
        "choices": choices,
        "system_fingerprint": "fp_inert_emulator",
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt + completion_tokens,
        },
    }
    return response, prompt, completion_tokens


def _texts(inputs: object) -> list[tuple[str, bool]] | None:
    """``(text, has_image)`` per moderation input, or None when malformed."""
    if isinstance(inputs, str):
        return [(inputs, False)]
    if not isinstance(inputs, list) or not inputs:
        return None
    if all(isinstance(item, str) for item in inputs):
        return [(item, False) for item in inputs]
    text, image = "", False
    for item in inputs:
        if not isinstance(item, dict):
            return None
        if item.get("type") == "text" and isinstance(item.get("text"), str):
            text += item["text"]
        elif item.get("type") == "image_url" and isinstance(item.get("image_url"), dict):
            image = True
        else:
            return None
    return [(text, image)]


def validate_moderation(body: Mapping[str, Any]) -> JSONObject | None:
    """An OpenAI-shaped 400 body when the moderations request is malformed, else None."""
    if "input" not in body:
        return error_body(
            "Missing required parameter: 'input'.", param="input", code="missing_required_parameter"
        )
    if _texts(body["input"]) is None:
        return error_body(
            "Invalid 'input': expected a string, an array of strings, or an array of text and "
            "image_url parts.",
            param="input",
            code="invalid_type",
        )
    model = body.get("model", DEFAULT_MODERATION_MODEL)
    if not isinstance(model, str) or not model:
        return error_body("Invalid 'model': expected a string.", param="model", code="invalid_type")
    return None


def moderation_response(body: Mapping[str, Any], *, request_id: str) -> tuple[JSONObject, int]:
    """One ``CreateModerationResponse`` result per input, and the input tokens.

    Scores are small and fixed by the text; a category is flagged (score 0.9) when
    its name appears in the text, so tests can ask for a flag.
    """
    texts = _texts(body["input"]) or []
    results: list[JSON] = []
    for text, image in texts:
        rng = random.Random(f"moderation:{text}")
        lowered = text.lower()
        scores: dict[str, JSON] = {}
        flags: dict[str, JSON] = {}
        applied: dict[str, JSON] = {}
        for category in CATEGORIES:
            hit = category in lowered
            scores[category] = 0.9 if hit else round(rng.uniform(0.0, 0.01), 6)
            flags[category] = hit
            kinds: list[JSON] = ["text"]
            if image and category in IMAGE_CATEGORIES:
                kinds.append("image")
            applied[category] = kinds
        results.append(
            {
                "flagged": any(flags.values()),
                "categories": flags,
                "category_scores": scores,
                "category_applied_input_types": applied,
            }
        )
    response: JSONObject = {
        "id": f"modr-{request_id}",
        "model": str(body.get("model", DEFAULT_MODERATION_MODEL)),
        "results": results,
    }
    return response, prompt_tokens(MODERATIONS_PATH, body)
