"""One batch and its lifecycle on the emulator's clock.

A batch's state is a function of time: ``validating`` for ``0.15 * scale``
seconds, then ``failed`` (validation errors, the enqueued-token limit, an injected
failure) or ``in_progress`` for ``0.8 * scale`` (lines complete evenly, in a
shuffled order, and bill as they complete), ``finalizing`` for ``0.15 * scale``,
then ``completed``. An expiry or a cancel interrupts ``in_progress``; cancelling
takes ``0.15 * scale``. ``advance(batch, now, sink)`` brings a batch up to
``now`` (``math.inf`` runs it to its end); the state calls it for every batch
before anything observes the server, so a batch nobody polls still runs and bills,
as at OpenAI.
"""

from __future__ import annotations

import json
import random
from typing import Final, Literal, Protocol

import attrs

from inert._json import JSON, JSONObject

VALIDATING: Final = 0.15
IN_PROGRESS: Final = 0.8
FINALIZING: Final = 0.15
CANCELLING: Final = 0.15

Status = Literal[
    "validating",
    "failed",
    "in_progress",
    "finalizing",
    "completed",
    "expired",
    "cancelling",
    "cancelled",
]
TERMINAL: Final = ("failed", "completed", "expired", "cancelled")
QUEUED: Final = ("validating", "in_progress")
"""Statuses whose batches count against the enqueued-token limit."""


@attrs.define
class Line:
    """One batch line and the outcome planned for it when the batch was created."""

    custom_id: str
    key: str
    endpoint: str
    outcome: Literal["ok", "http_error", "expired"]
    status_code: int = 200
    body: JSONObject = attrs.field(factory=dict)
    prompt_tokens: int = 0
    completion_tokens: int = 0


class Sink(Protocol):
    """What a batch needs from the server as it runs: billing and file writing."""

    def bill(self, line: Line) -> None:
        """Bill one completed line."""

    def write(self, filename: str, lines: list[JSONObject], ttl: float | None) -> str:
        """Store an output or error file and return its id."""
        ...


@attrs.define
class Batch:
    """A batch: what was asked, what was planned, and where it is on its timeline."""

    id: str
    endpoint: str
    input_file_id: str
    completion_window: str
    metadata: JSON
    created: float
    scale: float
    model: str | None
    errors: list[JSONObject]
    lines: list[Line]
    enqueued_tokens: int = 0
    output_ttl: float | None = None
    expire_at: float | None = None
    cancel_at: float | None = None
    unknown_custom_id: bool = False
    drop_output: bool = False
    status: Status = "validating"
    in_progress_at: float | None = None
    finalizing_at: float | None = None
    completed_at: float | None = None
    failed_at: float | None = None
    expired_at: float | None = None
    cancelling_at: float | None = None
    cancelled_at: float | None = None
    done: int = 0
    billed: int = 0
    output_file_id: str | None = None
    error_file_id: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0

    @property
    def start(self) -> float:
        """When validation ends and lines start to run."""
        return self.created + VALIDATING * self.scale

    @property
    def end(self) -> float:
        """When every line has run (finalizing starts)."""
        return self.start + IN_PROGRESS * self.scale

    def counts(self) -> JSONObject:
        """``request_counts``: all zero until validation has passed (as at OpenAI)."""
        accounted = self.in_progress_at is not None or self.status in ("expired", "cancelled")
        if not accounted or self.status == "failed":
            return {"total": 0, "completed": 0, "failed": 0}
        done = self.lines[: self.done]
        ok = sum(1 for line in done if line.outcome == "ok")
        failed = len(done) - ok
        if self.status in ("expired", "cancelled"):
            failed = len(self.lines) - ok
        return {"total": len(self.lines), "completed": ok, "failed": failed}

    def to_json(self) -> JSONObject:
        """The ``Batch`` object."""

        def stamp(value: float | None) -> int | None:
            return None if value is None else int(value)

        errors: JSON = None
        if self.errors:
            errors = {"object": "list", "data": list(self.errors)}
        return {
            "id": self.id,
            "object": "batch",
            "endpoint": self.endpoint,
            "model": self.model,
            "errors": errors,
            "input_file_id": self.input_file_id,
            "completion_window": self.completion_window,
            "status": self.status,
            "output_file_id": self.output_file_id,
            "error_file_id": self.error_file_id,
            "created_at": int(self.created),
            "in_progress_at": stamp(self.in_progress_at),
            # Null while validating, as in the spec's createBatch example response.
            "expires_at": None if self.status == "validating" else int(self.created) + 24 * 3600,
            "finalizing_at": stamp(self.finalizing_at),
            "completed_at": stamp(self.completed_at),
            "failed_at": stamp(self.failed_at),
            "expired_at": stamp(self.expired_at),
            "cancelling_at": stamp(self.cancelling_at),
            "cancelled_at": stamp(self.cancelled_at),
            "request_counts": self.counts(),
            "usage": {
                "input_tokens": self.input_tokens,
                "input_tokens_details": {"cached_tokens": 0},
                "output_tokens": self.output_tokens,
                "output_tokens_details": {"reasoning_tokens": 0},
                "total_tokens": self.input_tokens + self.output_tokens,
            },
            "metadata": self.metadata,
        }


def advance(batch: Batch, now: float, sink: Sink) -> None:
    """Bring a batch up to ``now``: status, completed lines (billed), files when it ends."""
    if batch.status in TERMINAL:
        return
    if batch.status == "validating":
        expire_at = batch.expire_at
        if expire_at is not None and expire_at < batch.start and now >= expire_at:
            batch.expired_at = expire_at
            _finish(batch, "expired", sink)
            return
        if now < batch.start:
            return
        if batch.errors:
            batch.status, batch.failed_at = "failed", batch.start
            return
        batch.status, batch.in_progress_at = "in_progress", batch.start
    if batch.status == "in_progress":
        stop, reason = _interruption(batch)
        if stop is not None and now >= stop:
            _progress(batch, stop, sink)
            if reason == "expired":
                batch.expired_at = stop
                _finish(batch, "expired", sink)
                return
            batch.status, batch.cancelling_at = "cancelling", stop
        else:
            _progress(batch, min(now, batch.end), sink)
            if now < batch.end:
                return
            batch.status, batch.finalizing_at = "finalizing", batch.end
    if batch.status == "finalizing":
        completed_at = batch.end + FINALIZING * batch.scale
        if now >= completed_at:
            batch.completed_at = completed_at
            _finish(batch, "completed", sink)
        return
    if batch.status == "cancelling":
        assert batch.cancelling_at is not None
        cancelled_at = batch.cancelling_at + CANCELLING * batch.scale
        if now >= cancelled_at:
            batch.cancelled_at = cancelled_at
            _finish(batch, "cancelled", sink)


def cancel(batch: Batch, now: float, sink: Sink) -> bool:
    """Start cancelling a batch at ``now``; False when it has ended or is cancelling already."""
    advance(batch, now, sink)
    if batch.status in TERMINAL or batch.status == "cancelling":
        return False
    batch.status, batch.cancelling_at = "cancelling", now
    return True


def _interruption(batch: Batch) -> tuple[float | None, str]:
    """The earliest expiry or planned cancel that falls while lines run."""
    candidates = [
        (at, reason)
        for at, reason in ((batch.expire_at, "expired"), (batch.cancel_at, "cancelled"))
        if at is not None and at < batch.end
    ]
    if not candidates:
        return None, ""
    at, reason = min(candidates)
    return max(at, batch.start), reason


def _progress(batch: Batch, now: float, sink: Sink) -> None:
    n = len(batch.lines)
    span = batch.end - batch.start
    fraction = 1.0 if now >= batch.end or span <= 0 else max(0.0, (now - batch.start) / span)
    batch.done = max(batch.done, min(n, int(n * fraction)))
    for line in batch.lines[batch.billed : batch.done]:
        if line.outcome == "ok":
            sink.bill(line)
            batch.input_tokens += line.prompt_tokens
            batch.output_tokens += line.completion_tokens
    batch.billed = batch.done


def _finish(batch: Batch, status: Status, sink: Sink) -> None:
    rng = random.Random(batch.id)
    output: list[JSONObject] = []
    failures: list[JSONObject] = []
    for index, line in enumerate(batch.lines):
        request_id = f"req_{rng.getrandbits(96):024x}"
        entry: JSONObject = {
            "id": f"batch_req_{rng.getrandbits(96):024x}",
            "custom_id": line.custom_id,
        }
        if index >= batch.done or line.outcome == "expired":
            code = (
                "batch_cancelled"
                if status == "cancelled" and index >= batch.done
                else "batch_expired"
            )
            message = (
                "This request was cancelled before it ran."
                if code == "batch_cancelled"
                else "This request could not be executed before the completion window expired."
            )
            failures.append(entry | {"response": None, "error": {"code": code, "message": message}})
        elif line.outcome == "http_error":
            response: JSONObject = {
                "status_code": line.status_code,
                "request_id": request_id,
                "body": line.body,
            }
            failures.append(entry | {"response": response, "error": None})
        else:
            response = {"status_code": 200, "request_id": request_id, "body": line.body}
            output.append(entry | {"response": response, "error": None})
    if batch.unknown_custom_id and output:
        stray = dict(output[0])
        stray["id"] = f"batch_req_{rng.getrandbits(96):024x}"
        stray["custom_id"] = f"unknown-{rng.getrandbits(64):016x}"
        output.append(stray)
    rng.shuffle(output)
    if output and not batch.drop_output:
        batch.output_file_id = sink.write(f"{batch.id}_output.jsonl", output, batch.output_ttl)
    if failures:
        batch.error_file_id = sink.write(f"{batch.id}_error.jsonl", failures, batch.output_ttl)
    batch.status = status


def jsonl(lines: list[JSONObject]) -> bytes:
    """JSONL bytes: one compact JSON object per line, each ending with ``\\n``."""
    return "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines).encode("utf-8")
