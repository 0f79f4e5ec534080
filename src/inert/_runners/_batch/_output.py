"""Batch output: parsing output and error files, and what each line means for its op."""

from __future__ import annotations

from typing import NamedTuple

import pydantic_core

from inert._errors import (
    ApiError,
    CancelledRequestError,
    ExpiredError,
    RateLimitError,
    RequestError,
)
from inert._gc import paused_gc
from inert._json import JSON


class OutputLine(NamedTuple):
    """One line of a batch output or error file."""

    custom_id: str
    status: int | None
    body: JSON
    error: JSON


def parse_output_lines(data: bytes | str) -> tuple[list[OutputLine], list[str]]:
    """Parse a batch output or error file.

    Returns:
        the lines, and a description of each line that could not be read (kept as
        anomalies: a malformed line is never guessed at).
    """
    lines: list[OutputLine] = []
    bad: list[str] = []
    append = lines.append
    loads = pydantic_core.from_json  # jiter: faster than json.loads, same values
    make = tuple.__new__
    with paused_gc():
        for raw in data.splitlines():
            try:
                item = loads(raw)
                response = item.get("response")
                if response is None:
                    append(make(OutputLine, (item["custom_id"], None, None, item.get("error"))))
                else:
                    append(
                        make(
                            OutputLine,
                            (
                                item["custom_id"],
                                response.get("status_code"),
                                response.get("body"),
                                item.get("error"),
                            ),
                        )
                    )
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                if not raw.strip():
                    continue
                text = raw if isinstance(raw, str) else raw.decode("utf-8", "replace")
                bad.append(f"unreadable output line ({exc}): {text[:200]}")
    return lines, bad


def is_success(line: OutputLine) -> bool:
    return line.status == 200 and line.error is None and isinstance(line.body, dict)


def line_failure(line: OutputLine, batch_id: str) -> tuple[bool, RequestError]:
    """``(retryable, error)`` for a failed line."""
    if line.status is not None and line.status != 200:
        status = line.status
        message, code = error_fields(line.body)
        text = f"batch {batch_id}: HTTP {status}: {message or 'no message'}"
        if status == 429:
            return True, RateLimitError(text, status=status, code=code, body=line.body)
        return status >= 500, ApiError(text, status=status, code=code, body=line.body)
    message, code = error_fields({"error": line.error})
    if code == "batch_expired":
        return True, ExpiredError(f"batch {batch_id}: the line expired before it ran: {message}")
    if code == "batch_cancelled":
        return True, CancelledRequestError(f"batch {batch_id}: the line was cancelled: {message}")
    return False, ApiError(
        f"batch {batch_id}: the line failed: {message or 'no message'}",
        code=code,
        body=line.error,
    )


def error_fields(body: JSON) -> tuple[str, str | None]:
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):
            message = error.get("message")
            code = error.get("code")
            return (
                message if isinstance(message, str) else "",
                code if isinstance(code, str) else None,
            )
    return "", None


class Collected(NamedTuple):
    """What one finished batch gave: its final status and its lines by custom id."""

    batch_id: str
    status: str
    lines: dict[str, OutputLine]
    batch_error: str | None = None
    batch_error_code: str | None = None
