"""What OpenAI refuses: batch creation parameters, upload parameters, input files.

Limits from openai/openai-openapi: ``Metadata`` ("Set of 16 key-value pairs …
Keys are strings with a maximum length of 64 characters. Values are strings with
a maximum length of 512 characters."), ``CreateBatchRequest`` (``completion_window``
enum ``24h``; input file "up to 50,000 requests, and can be up to 200 MB"),
``FileExpirationAfter``/``BatchFileExpirationAfter`` (anchor ``created_at``,
seconds "between 3600 (1 hour) and 2592000 (30 days)"). Messages follow the
wording of OpenAI's own 400s ("Invalid 'input[95].call_id': string too long.
Expected a string with maximum length 64, but got a string with length 116
instead.", code ``string_above_max_length``; "Invalid type for 'metadata.version':
expected a string, but got an integer instead.").
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

from inert._json import JSONObject

from ._errors import bad_request

MAX_METADATA_KEYS: Final = 16
MAX_METADATA_KEY: Final = 64
MAX_METADATA_VALUE: Final = 512
MIN_EXPIRY_SECONDS: Final = 3600
MAX_EXPIRY_SECONDS: Final = 2_592_000
MAX_ERRORS: Final = 100
"""At most this many line errors are reported for a failed batch."""

_JSON_TYPES: Final = {
    bool: "a boolean", int: "an integer", float: "a number", list: "an array",
    dict: "an object", type(None): "null",
}  # fmt: skip


def _type_name(value: object) -> str:
    return _JSON_TYPES.get(type(value), "a string")


def check_metadata(metadata: object) -> None:
    """Refuse metadata beyond OpenAI's limits with a 400 naming the offending part."""
    if metadata is None:
        return
    if not isinstance(metadata, dict):
        raise bad_request(
            f"Invalid type for 'metadata': expected an object, but got {_type_name(metadata)} instead.",
            param="metadata",
            code="invalid_type",
        )
    if len(metadata) > MAX_METADATA_KEYS:
        raise bad_request(
            f"Invalid 'metadata': too many properties. Expected an object with at most "
            f"{MAX_METADATA_KEYS} properties, but got an object with {len(metadata)} properties "
            "instead.",
            param="metadata",
            code="object_above_max_properties",
        )
    for key, value in metadata.items():
        if len(key) > MAX_METADATA_KEY:
            raise bad_request(
                f"Invalid 'metadata': key too long. Expected a key with maximum length "
                f"{MAX_METADATA_KEY}, but got a key with length {len(key)} instead.",
                param="metadata",
                code="string_above_max_length",
            )
        if not isinstance(value, str):
            raise bad_request(
                f"Invalid type for 'metadata.{key}': expected a string, but got "
                f"{_type_name(value)} instead.",
                param=f"metadata.{key}",
                code="invalid_type",
            )
        if len(value) > MAX_METADATA_VALUE:
            raise bad_request(
                f"Invalid 'metadata.{key}': string too long. Expected a string with maximum "
                f"length {MAX_METADATA_VALUE}, but got a string with length {len(value)} instead.",
                param=f"metadata.{key}",
                code="string_above_max_length",
            )


def check_expiry(policy: object, param: str) -> float | None:
    """The seconds of an ``expires_after``-style policy (None when not given).

    Raises:
        ApiError: 400 naming ``param`` for a policy that is not an object with
            anchor ``created_at`` and integer seconds from 3600 to 2592000.
    """
    if policy is None:
        return None
    if not isinstance(policy, dict):
        raise bad_request(
            f"Invalid type for '{param}': expected an object, but got {_type_name(policy)} instead.",
            param=param,
            code="invalid_type",
        )
    anchor = policy.get("anchor")
    if anchor != "created_at":
        raise bad_request(
            f"Invalid value for '{param}.anchor': expected 'created_at', got {anchor!r}.",
            param=f"{param}.anchor",
            code="invalid_value",
        )
    seconds = policy.get("seconds")
    if isinstance(seconds, bool) or not isinstance(seconds, int):
        raise bad_request(
            f"Invalid type for '{param}.seconds': expected an integer, but got "
            f"{_type_name(seconds)} instead.",
            param=f"{param}.seconds",
            code="invalid_type",
        )
    if not MIN_EXPIRY_SECONDS <= seconds <= MAX_EXPIRY_SECONDS:
        raise bad_request(
            f"Invalid '{param}.seconds': must be between {MIN_EXPIRY_SECONDS} (1 hour) and "
            f"{MAX_EXPIRY_SECONDS} (30 days), got {seconds}.",
            param=f"{param}.seconds",
            code="invalid_value",
        )
    return float(seconds)


def line_error(line: int | None, code: str, message: str, param: str | None = None) -> JSONObject:
    """One ``BatchError``: ``{"code", "message", "param", "line"}``."""
    return {"code": code, "message": message, "param": param, "line": line}


ParsedLine = tuple[str, str, JSONObject]
"""``(custom_id, url, body)`` of one valid input line."""


def parse_input_file(
    content: bytes, endpoint: str, *, max_bytes: int, max_lines: int
) -> tuple[list[JSONObject], list[ParsedLine], str | None]:
    """The validation errors, the parsed lines and the model of a batch input file.

    Lines end at ``\\n`` only (JSONL); other line separators such as U+2028 or
    U+0085 are legal inside JSON strings and stay part of their line. A line of
    only spaces, tabs or ``\\r`` is skipped.
    """
    if len(content) > max_bytes:
        message = f"The input file is larger than the {max_bytes} byte maximum."
        return [line_error(None, "file_too_large", message)], [], None
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError:
        return [line_error(None, "invalid_file", "The input file is not UTF-8 text.")], [], None
    numbered = [
        (number, raw) for number, raw in enumerate(text.split("\n"), start=1) if raw.strip(" \t\r")
    ]
    if not numbered:
        return [line_error(None, "empty_file", "The input file is empty.")], [], None
    if len(numbered) > max_lines:
        message = f"The input file has {len(numbered)} lines; the maximum is {max_lines}."
        return [line_error(None, "too_many_tasks", message)], [], None
    errors: list[JSONObject] = []
    parsed: list[ParsedLine] = []
    seen: set[str] = set()
    model: str | None = None
    for number, raw in numbered:
        if len(errors) >= MAX_ERRORS:
            break
        problem, line = _check_line(raw, endpoint)
        if problem is not None:
            errors.append(line_error(number, *problem))
            continue
        assert line is not None
        custom_id, _, body = line
        line_model = body.get("model")
        if isinstance(line_model, str):
            if model is None:
                model = line_model
            elif line_model != model:
                message = f"Line model {line_model!r} differs from the batch model {model!r}."
                errors.append(line_error(number, "model_mismatch", message, "body.model"))
                continue
        if custom_id in seen:
            message = f"The custom_id {custom_id!r} is used by an earlier line."
            errors.append(line_error(number, "duplicate_custom_id", message, "custom_id"))
            continue
        seen.add(custom_id)
        parsed.append(line)
    return errors, parsed, model


def _check_line(
    raw: str, endpoint: str
) -> tuple[tuple[str, str, str | None] | None, ParsedLine | None]:
    """``((code, message, param), None)`` for a bad line, ``(None, parsed)`` for a good one."""
    try:
        item: Any = json.loads(raw)
    except json.JSONDecodeError:
        return ("invalid_json_line", "This line is not parseable as valid JSON.", None), None
    if not isinstance(item, dict):
        return ("invalid_json_line", "This line is not a JSON object.", None), None
    custom_id = item.get("custom_id")
    if not isinstance(custom_id, str) or not custom_id:
        return ("missing_required_parameter", "Missing 'custom_id'.", "custom_id"), None
    if item.get("method") != "POST":
        return ("invalid_method", "The 'method' of each line must be 'POST'.", "method"), None
    url = item.get("url")
    if url != endpoint:
        message = f"The URL {url!r} does not match the batch endpoint {endpoint!r}."
        return ("url_mismatch", message, "url"), None
    body = item.get("body")
    if not isinstance(body, dict):
        return ("missing_required_parameter", "Missing 'body'.", "body"), None
    return None, (custom_id, endpoint, body)


def require_string(params: Mapping[str, Any], name: str) -> str:
    """A required string parameter of a JSON body (400 naming it otherwise)."""
    value = params.get(name)
    if value is None:
        raise bad_request(
            f"Missing required parameter: '{name}'.", param=name, code="missing_required_parameter"
        )
    if not isinstance(value, str):
        raise bad_request(
            f"Invalid type for '{name}': expected a string, but got {_type_name(value)} instead.",
            param=name,
            code="invalid_type",
        )
    return value
