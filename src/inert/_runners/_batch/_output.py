"""Batch output: parsing output and error files, and what each line means for its op.

A line of either file is ``{"id", "custom_id", "response": {"status_code",
"request_id", "body"} | null, "error": {"code", "message"} | null}``
(``BatchRequestOutput`` in openai/openai-openapi). Lines end at ``\\n`` only: JSON
allows U+2028, U+0085 and the other characters ``str.splitlines`` would cut at
inside strings. Nothing in a line is trusted: a line that is not JSON, or whose
fields have the wrong types (a ``custom_id`` that is a list, say), is kept as an
anomaly and never guessed at.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import BinaryIO, Final, NamedTuple

import attrs
import jiter

from inert._answers import error_object, is_answer
from inert._errors import (
    ApiError,
    CancelledRequestError,
    ExpiredError,
    RateLimitError,
    RequestError,
)
from inert._gc import paused_gc
from inert._json import JSON
from inert._runners._batch._http import error_fields

RETRYABLE_LINE_STATUSES: Final = frozenset({408, 409, 429})
"""Statuses of a failed line worth resubmitting, besides 5xx."""


class OutputLine(NamedTuple):
    """One line of a batch output or error file."""

    custom_id: str
    status: int | None
    body: JSON
    error: JSON


@attrs.frozen
class ParsedFile:
    """A parsed output or error file.

    Attributes:
        lines: the well-formed lines, in file order.
        malformed: JSON objects that are not well-formed lines (described).
        unreadable: pieces that are not JSON at all (a cut line, an HTML page).
    """

    lines: list[OutputLine]
    malformed: list[str]
    unreadable: list[str]


def parse_output_lines(data: bytes | str | BinaryIO) -> tuple[list[OutputLine], list[str]]:
    """Parse a batch output or error file: its lines, and a description of each bad one."""
    parsed = parse_output_file(data)
    return parsed.lines, [*parsed.malformed, *parsed.unreadable]


def parse_output_file(data: bytes | str | BinaryIO) -> ParsedFile:
    """Parse a batch output or error file, splitting at ``\\n`` only.

    ``data`` is the file's content, or a binary file read line by line (iterating a
    binary file splits at ``\\n`` only), so a large download is never held whole.
    """
    lines: list[OutputLine] = []
    malformed: list[str] = []
    unreadable: list[str] = []
    append = lines.append
    loads = jiter.from_json  # faster than json.loads, same values
    make = tuple.__new__
    raw_lines: Iterable[bytes] = (
        data.split(b"\n")
        if isinstance(data, bytes)
        else data.encode().split(b"\n")
        if isinstance(data, str)
        else data
    )
    with paused_gc():
        for raw in raw_lines:
            try:
                item = loads(raw, allow_inf_nan=False)  # NaN cannot be stored as JSON
            except ValueError as exc:
                if raw.strip():
                    unreadable.append(f"unreadable output line ({exc}): {_shown(raw)}")
                continue
            if type(item) is dict:
                cid = item.get("custom_id")
                response = item.get("response")
                error = item.get("error")
                if type(cid) is str and (error is None or type(error) is dict):
                    if response is None:
                        append(make(OutputLine, (cid, None, None, error)))
                        continue
                    if type(response) is dict:
                        status = response.get("status_code")
                        if status is None or type(status) is int:
                            append(make(OutputLine, (cid, status, response.get("body"), error)))
                            continue
            malformed.append(f"malformed output line (not a batch output line): {_shown(raw)}")
    return ParsedFile(lines, malformed, unreadable)


def _shown(raw: bytes) -> str:
    return raw[:400].rstrip(b"\n").decode("utf-8", "replace")[:200]


def is_success(line: OutputLine) -> bool:
    """A line that carries an answer (HTTP 200, no error, an object body that is no error
    object: :func:`inert._answers.is_answer`, the rule both runners share)."""
    return (
        line.status == 200
        and line.error is None
        and isinstance(line.body, dict)
        and is_answer(line.body)
    )


def line_failure(line: OutputLine, batch_id: str) -> tuple[bool, RequestError]:
    """``(retryable, error)`` for a failed line."""
    if line.status == 200 and line.error is None:
        error = error_object(line.body)
        if error is not None:
            return False, ApiError(
                f"batch {batch_id}: {error.message}", status=200, code=error.code, body=line.body
            )
    if line.status is not None and line.status != 200:
        status = line.status
        message, code = error_fields(line.body)
        text = f"batch {batch_id}: HTTP {status}: {message or 'no message'}"
        retryable = status in RETRYABLE_LINE_STATUSES or status >= 500
        if status == 429:
            return True, RateLimitError(text, status=status, code=code, body=line.body)
        return retryable, ApiError(text, status=status, code=code, body=line.body)
    message, code = error_fields({"error": line.error})
    if code == "batch_expired":
        return True, ExpiredError(f"batch {batch_id}: the line expired before it ran: {message}")
    if code == "batch_cancelled":
        return True, CancelledRequestError(f"batch {batch_id}: the line was cancelled: {message}")
    return False, ApiError(
        f"batch {batch_id}: the line failed: {message or 'no message'}",
        code=code,
        body=line.error if line.status is None else line.body,
    )


@attrs.frozen
class Matched:
    """The lines of a shard's files matched to its custom ids."""

    lines: dict[str, OutputLine]
    conflicts: frozenset[str]
    anomalies: list[tuple[str | None, str]]


def match_lines(batch_id: str, files: Collection[ParsedFile], known: Collection[str]) -> Matched:
    """Assign the lines of a batch's files to the shard's custom ids.

    A line whose custom id is not in the shard is never assigned (an anomaly). Two
    identical lines for one id count once; two that disagree are a conflict: the id
    gets no line and its request fails, so a duplicate never overrides an answer.
    """
    matcher = LineMatcher(batch_id, known)
    for parsed in files:
        matcher.add(parsed)
    return matcher.matched()


class LineMatcher:
    """:func:`match_lines` one file at a time, counting the shard's ids each file carries.

    Collecting a batch both checks that a file reads as long as the batch's counts say
    (how many of the shard's ids it carries) and matches its lines; one pass over the
    lines does both, so a 50,000-line output meets its 50,000 ids once, not twice.
    """

    def __init__(self, batch_id: str, known: Collection[str]) -> None:
        self.batch_id = batch_id
        self.known = known
        self.lines: dict[str, OutputLine] = {}
        self.conflicts: set[str] = set()
        self.anomalies: list[tuple[str | None, str]] = []

    def clear(self) -> None:
        """Forget every file added (a file downloaded again replaces the one read before)."""
        self.lines = {}
        self.conflicts = set()
        self.anomalies = []

    def add(self, parsed: ParsedFile) -> None:
        """Match the lines of one more file (after those of the files added before)."""
        batch_id = self.batch_id
        known = self.known
        lines = self.lines
        conflicts = self.conflicts
        anomalies = self.anomalies
        anomalies.extend((None, text) for text in (*parsed.malformed, *parsed.unreadable))
        for line in parsed.lines:
            cid = line.custom_id
            if cid not in known:
                anomalies.append(
                    (
                        cid[:200],
                        f"batch {batch_id} returned a line whose custom_id is not in its input; "
                        "it was not assigned to any request",
                    )
                )
                continue
            previous = lines.get(cid)
            if previous is None:
                if cid not in conflicts:
                    lines[cid] = line
                continue
            if previous == line:
                anomalies.append((cid, f"batch {batch_id} returned custom_id {cid} twice"))
                continue
            anomalies.append(
                (
                    cid,
                    f"batch {batch_id} returned two different lines for custom_id {cid}; "
                    "neither was stored",
                )
            )
            conflicts.add(cid)
            del lines[cid]

    @property
    def ids_seen(self) -> int:
        """How many of the shard's ids the files added so far carry (each counted once)."""
        return len(self.lines) + len(self.conflicts)

    def matched(self) -> Matched:
        """The lines matched so far."""
        return Matched(self.lines, frozenset(self.conflicts), self.anomalies)


@attrs.frozen
class Collected:
    """What one finished batch gave.

    Attributes:
        batch_id: the remote batch.
        status: its final status, or ``"missing"`` (the batch no longer exists) or
            ``"lost"`` (its output or error file expired before it was downloaded).
        lines: its lines by custom id (conflicting ones left out).
        conflicts: custom ids with two different lines.
        batch_error: why a ``failed`` batch failed; ``batch_error_code`` its code.
        cancel: ``"during"`` if the batch was cancelled while this run drove it
            (by anyone), ``"before"`` if it was already cancelled when this run found
            it in the journal, else ``None``.
        incomplete: set when the output could not be read in full: the shard stays
            in the journal for a later collection, and nothing is resubmitted.
        doubtful: the output had lines that could not be matched to a custom id,
            so a line missing from it may have been answered (and paid).
    """

    batch_id: str
    status: str
    lines: dict[str, OutputLine]
    conflicts: frozenset[str] = frozenset()
    batch_error: str | None = None
    batch_error_code: str | None = None
    cancel: str | None = None
    incomplete: str | None = None
    doubtful: bool = False
