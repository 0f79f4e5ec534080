"""``POST /v1/responses``: the Responses API, with strict structured outputs.

Shapes follow openai/openai-openapi (``CreateResponse`` in, the ``Response``
object out: an ``output`` of one assistant ``message`` whose content is an
``output_text`` or a ``refusal``, and ``usage`` with ``input_tokens`` and
``output_tokens``). With ``text.format`` of type ``json_schema`` the text is JSON
valid for the schema, as chat's structured outputs. A ``max_output_tokens`` below
16 is a 400 (``CreateResponse``: ``minimum: 16``); an answer cut by it or by the
``truncation`` fault ends ``status: "incomplete"`` with
``incomplete_details.reason: "max_output_tokens"``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from inert._json import JSON, JSONObject

from ._answers import Draft, draft_answer, rng_for
from ._errors import error_body
from ._faults import Faults, answer_fault
from ._tokens import prompt_tokens

RESPONSES_PATH: Final = "/v1/responses"
INPUT_ROLES: Final = ("user", "assistant", "system", "developer")
MIN_OUTPUT_TOKENS: Final = 16


def _missing(name: str) -> JSONObject:
    return error_body(
        f"Missing required parameter: '{name}'.", param=name, code="missing_required_parameter"
    )


def _check_input(inputs: object) -> JSONObject | None:
    if isinstance(inputs, str):
        return None
    if not isinstance(inputs, list) or not inputs:
        return error_body(
            "Invalid 'input': expected a string or a non-empty array of input items.",
            param="input",
            code="invalid_type",
        )
    for i, item in enumerate(inputs):
        if not isinstance(item, dict):
            return error_body(
                f"Invalid type for 'input[{i}]': expected an object.",
                param=f"input[{i}]",
                code="invalid_type",
            )
        role = item.get("role")
        if role is None and "type" not in item:
            return _missing(f"input[{i}].role")
        if role is not None and role not in INPUT_ROLES:
            supported = ", ".join(f"'{r}'" for r in INPUT_ROLES)
            return error_body(
                f"Invalid value: '{role}'. Supported values are: {supported}.",
                param=f"input[{i}].role",
                code="invalid_value",
            )
        if role is not None and not isinstance(item.get("content"), str | list):
            return _missing(f"input[{i}].content")
    return None


def _check_format(text: object) -> JSONObject | None:
    if text is None:
        return None
    if not isinstance(text, dict):
        return error_body("Invalid type for 'text': expected an object.", param="text")
    fmt = text.get("format")
    if fmt is None:
        return None
    if not isinstance(fmt, dict) or fmt.get("type") not in ("text", "json_schema", "json_object"):
        return error_body(
            "Invalid value for 'text.format.type': expected 'text', 'json_schema' or 'json_object'.",
            param="text.format.type",
            code="invalid_value",
        )
    if fmt["type"] == "json_schema":
        if not isinstance(fmt.get("name"), str):
            return _missing("text.format.name")
        if not isinstance(fmt.get("schema"), dict):
            return _missing("text.format.schema")
    return None


def validate_response_request(body: Mapping[str, Any]) -> JSONObject | None:
    """An OpenAI-shaped 400 body when the Responses request is malformed, else None."""
    model = body.get("model")
    if not isinstance(model, str) or not model:
        return _missing("model")
    if "input" not in body:
        return _missing("input")
    problem = _check_input(body["input"])
    if problem is not None:
        return problem
    instructions = body.get("instructions")
    if instructions is not None and not isinstance(instructions, str):
        return error_body(
            "Invalid type for 'instructions': expected a string.",
            param="instructions",
            code="invalid_type",
        )
    limit = body.get("max_output_tokens")
    if limit is not None and (
        isinstance(limit, bool) or not isinstance(limit, int) or limit < MIN_OUTPUT_TOKENS
    ):
        return error_body(
            f"Invalid 'max_output_tokens': integer below minimum value. Expected a value >= "
            f"{MIN_OUTPUT_TOKENS}, but got {limit!r} instead.",
            param="max_output_tokens",
            code="integer_below_min_value",
        )
    return _check_format(body.get("text"))


def response_object(
    body: Mapping[str, Any], key: str, faults: Faults, *, created: int, request_id: str
) -> tuple[JSONObject, int, int]:
    """The ``Response`` for a valid body, and its input and output tokens."""
    rng = rng_for(key, "responses")
    text: Mapping[str, Any] = body.get("text") or {}
    fmt: Mapping[str, Any] = text.get("format") or {"type": "text"}
    schema = fmt.get("schema") if fmt.get("type") == "json_schema" else None
    limit = body.get("max_output_tokens")
    draft: Draft = draft_answer(
        rng,
        fault=answer_fault(faults, key),
        schema=schema,
        json_object=fmt.get("type") == "json_object",
        limit=limit if isinstance(limit, int) else None,
    )
    content: JSON
    if draft.refusal is not None:
        content = {"type": "refusal", "refusal": draft.refusal}
    else:
        content = {
            "type": "output_text",
            "text": draft.content or "",
            "annotations": [],
            "logprobs": [],
        }
    status = "incomplete" if draft.cut else "completed"
    input_tokens = prompt_tokens(RESPONSES_PATH, body)
    output_tokens = draft.tokens
    metadata = body.get("metadata")
    response: JSONObject = {
        "id": f"resp_{request_id}",
        "object": "response",
        "created_at": created,
        "status": status,
        "completed_at": created if status == "completed" else None,
        "error": None,
        "incomplete_details": {"reason": "max_output_tokens"} if draft.cut else None,
        "instructions": body.get("instructions"),
        "max_output_tokens": limit if isinstance(limit, int) else None,
        "model": str(body["model"]),
        "output": [
            {
                "id": f"msg_{request_id}",
                "type": "message",
                "role": "assistant",
                "status": status,
                "content": [content],
            }
        ],
        "parallel_tool_calls": True,
        "previous_response_id": None,
        "reasoning": {"effort": None, "summary": None},
        "service_tier": "default",
        "temperature": 1.0,
        "text": {"format": dict(fmt)},
        "tool_choice": "auto",
        "tools": [],
        "top_p": 1.0,
        "truncation": "disabled",
        "usage": {
            "input_tokens": input_tokens,
            "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
            "output_tokens": output_tokens,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": input_tokens + output_tokens,
        },
        "metadata": metadata if isinstance(metadata, dict) else {},
    }
    return response, input_tokens, output_tokens
