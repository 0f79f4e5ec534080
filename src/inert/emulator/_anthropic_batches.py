"""Anthropic's Message Batches on the emulator's clock: create, run, bill, cancel, results.

Modelled on Anthropic's API reference and batch-processing guide
(platform.claude.com/docs/en/build-with-claude/batch-processing and
/docs/en/api/creating-message-batches) and on the ``anthropic`` SDK's models
(``MessageBatch``, ``MessageBatchIndividualResponse``):

* ``POST /v1/messages/batches`` takes ``requests``: up to 100,000 of
  ``{"custom_id", "params"}`` and at most 256 MB in all (else 413
  ``request_too_large``); each ``custom_id`` matches ``^[a-zA-Z0-9_-]{1,64}$`` and is
  unique in the batch (else 400). The ``params`` are checked only as the batch
  runs: a malformed one becomes that request's ``errored`` result, as the guide
  says ("validation of params is asynchronous").
* A batch is ``in_progress`` from its creation: requests complete evenly over
  ``(0.15 .. 0.95) * scale`` seconds and bill as they complete (at the batch
  price), polled or not; at ``1.1 * scale`` it has ``ended`` and its results are a
  JSONL file behind ``results_url``, in no particular order.
  ``request_counts`` shows every request as ``processing`` until the end.
* ``cancel`` makes it ``canceling`` (``cancel_initiated_at``) for ``0.15 * scale``
  seconds, then ``ended``: requests not run by the cancel are ``canceled``.
  Requests the 24-hour window did not reach are ``expired`` (the ``batch_expire``
  and ``line_expired`` faults). Canceled, expired and errored requests are not billed.
* Results stay available 29 days after creation; afterwards (or after
  ``Emulator.expire_files()``) the batch shows ``archived_at`` and its results
  answer 404 ``not_found_error``.
"""

from __future__ import annotations

import json
import math
import random
import re
import threading
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final, Literal, Protocol

import attrs

from inert._json import JSON, JSONObject, op_key

from ._anthropic import MESSAGES_PATH, anthropic_error, message_object, validate_message
from ._batch import CANCELLING, FINALIZING, IN_PROGRESS, VALIDATING
from ._faults import Faults, draw_fate
from ._ledger import Ledger

MAX_REQUESTS: Final = 100_000
"""The most requests in one Message Batch."""
MAX_BYTES: Final = 256 * 1024 * 1024
"""The largest Message Batch create body."""
CUSTOM_ID: Final = re.compile(r"[a-zA-Z0-9_-]{1,64}")
"""What every ``custom_id`` must match (whole)."""
RESULTS_TTL: Final = 29 * 24 * 3600.0
"""Results stay available for 29 days after the batch was created."""
ID_PREFIX: Final = "msgbatch_"
"""How a Message Batch id starts."""
WINDOW: Final = 24 * 3600
"""A batch expires (ends, unrun requests ``expired``) 24 hours after creation."""

ProcessingStatus = Literal["in_progress", "canceling", "ended"]
Outcome = Literal["succeeded", "errored", "expired"]


class ClientError(Exception):
    """A request the API refuses at once: an HTTP status and Anthropic's error body."""

    def __init__(self, status: int, body: JSONObject) -> None:
        super().__init__(status, body)
        self.status = status
        self.body = body


def not_found(batch_id: str) -> ClientError:
    """The 404 for an unknown (or deleted) batch."""
    return ClientError(
        404, anthropic_error("not_found_error", f"No message batch found with id '{batch_id}'.")
    )


def stamp(seconds: float | None) -> str | None:
    """An RFC 3339 time in UTC, as Anthropic writes them (``...Z``)."""
    if seconds is None:
        return None
    moment = datetime.fromtimestamp(seconds, UTC)
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")


class Host(Protocol):
    """What the Message Batches need from the emulator: clock, draws, faults, ledger."""

    lock: threading.RLock
    faults: Faults
    time_scale: float
    batch_rng: random.Random
    """Batches' fates (``draw_fate``)."""
    line_rng: random.Random
    """Requests' outcomes."""

    @property
    def ledger(self) -> Ledger:
        """Where billed requests are recorded."""
        ...

    def clock(self) -> float:
        """Now, in seconds since the epoch."""
        ...


@attrs.define
class Item:
    """One request of a batch and the outcome planned for it at creation."""

    custom_id: str
    key: str
    outcome: Outcome
    result: JSONObject
    input_tokens: int = 0
    output_tokens: int = 0


@attrs.define
class MessageBatch:
    """A Message Batch and where it is on its timeline."""

    id: str
    created: float
    scale: float
    items: list[Item]
    expire_at: float | None = None
    cancel_at: float | None = None
    unknown_custom_id: bool = False
    status: ProcessingStatus = "in_progress"
    cancel_initiated_at: float | None = None
    ended_at: float | None = None
    archived_at: float | None = None
    done: int = 0
    billed: int = 0
    results: bytes | None = None
    counts: dict[str, int] = attrs.field(factory=dict)

    @property
    def start(self) -> float:
        """When requests start to complete."""
        return self.created + VALIDATING * self.scale

    @property
    def end(self) -> float:
        """When every request has run."""
        return self.start + IN_PROGRESS * self.scale

    def to_json(self, base_url: str) -> JSONObject:
        """The ``MessageBatch`` object; ``results_url`` points under ``base_url``."""
        counts = self.counts or {
            "processing": len(self.items),
            "succeeded": 0,
            "errored": 0,
            "canceled": 0,
            "expired": 0,
        }
        ended = self.status == "ended"
        return {
            "id": self.id,
            "type": "message_batch",
            "processing_status": self.status,
            "request_counts": dict(counts),
            "ended_at": stamp(self.ended_at),
            "created_at": stamp(self.created),
            "expires_at": stamp(self.created + WINDOW),
            "archived_at": stamp(self.archived_at),
            "cancel_initiated_at": stamp(self.cancel_initiated_at),
            "results_url": (f"{base_url}/v1/messages/batches/{self.id}/results" if ended else None),
        }


def _check_requests(body: Mapping[str, Any], size: int) -> list[tuple[str, JSONObject]]:
    """The ``(custom_id, params)`` pairs of a create body, or the ClientError refusing it."""
    if size > MAX_BYTES:
        raise ClientError(
            413,
            anthropic_error(
                "request_too_large", f"Request exceeds the maximum size of {MAX_BYTES} bytes."
            ),
        )
    for name in body:
        if name != "requests":
            raise ClientError(
                400,
                anthropic_error("invalid_request_error", f"{name}: Extra inputs are not permitted"),
            )
    requests = body.get("requests")
    if not isinstance(requests, list) or not requests:
        raise ClientError(
            400,
            anthropic_error("invalid_request_error", "requests: Field required (a non-empty list)"),
        )
    if len(requests) > MAX_REQUESTS:
        raise ClientError(
            400,
            anthropic_error(
                "invalid_request_error",
                f"requests: List should have at most {MAX_REQUESTS} items after validation, "
                f"not {len(requests)}",
            ),
        )
    seen: set[str] = set()
    pairs: list[tuple[str, JSONObject]] = []
    for i, request in enumerate(requests):
        if not isinstance(request, dict):
            raise ClientError(
                400,
                anthropic_error(
                    "invalid_request_error", f"requests.{i}: Input should be an object"
                ),
            )
        custom_id = request.get("custom_id")
        if not isinstance(custom_id, str) or CUSTOM_ID.fullmatch(custom_id) is None:
            raise ClientError(
                400,
                anthropic_error(
                    "invalid_request_error",
                    f"requests.{i}.custom_id: String should match pattern "
                    "'^[a-zA-Z0-9_-]{1,64}$'",
                ),
            )
        if custom_id in seen:
            raise ClientError(
                400,
                anthropic_error(
                    "invalid_request_error",
                    f"requests.{i}.custom_id: Duplicate custom_id '{custom_id}' in this batch",
                ),
            )
        seen.add(custom_id)
        params = request.get("params")
        if not isinstance(params, dict):
            raise ClientError(
                400,
                anthropic_error("invalid_request_error", f"requests.{i}.params: Field required"),
            )
        extra = [name for name in request if name not in ("custom_id", "params")]
        if extra:
            raise ClientError(
                400,
                anthropic_error(
                    "invalid_request_error",
                    f"requests.{i}.{extra[0]}: Extra inputs are not permitted",
                ),
            )
        pairs.append((custom_id, params))
    return pairs


class MessageBatches:
    """Every Message Batch of one emulator; the host's lock guards every method."""

    def __init__(self, host: Host) -> None:
        self.host = host
        self.batches: dict[str, MessageBatch] = {}
        self._running: dict[str, MessageBatch] = {}

    def reset(self) -> None:
        """Forget every batch."""
        self.batches.clear()
        self._running.clear()

    # --- the routes' operations --------------------------------------------------------

    def create(self, body: Mapping[str, Any], size: int) -> MessageBatch:
        """Check a create body (refused at once, or planned request by request) and start it."""
        pairs = _check_requests(body, size)
        host = self.host
        with host.lock:
            now = host.clock()
            self.advance(now)
            faults, rng = host.faults, host.line_rng
            items = [self._plan(custom_id, params, faults, rng) for custom_id, params in pairs]
            rng.shuffle(items)
            batch = MessageBatch(
                id=f"{ID_PREFIX}{uuid.uuid4().hex[:24]}",
                created=now,
                scale=host.time_scale,
                items=items,
            )
            # Its fate from a stream of its own (see emulator._state.draw_streams).
            fate = draw_fate(host.batch_rng, faults)
            if fate.expire_at is not None:
                batch.expire_at = batch.start + fate.expire_at * IN_PROGRESS * batch.scale
            if fate.cancel_at is not None:
                batch.cancel_at = batch.start + fate.cancel_at * IN_PROGRESS * batch.scale
            batch.unknown_custom_id = fate.unknown_custom_id
            self.batches[batch.id] = batch
            self._running[batch.id] = batch
            return batch

    def _plan(self, custom_id: str, params: JSONObject, faults: Faults, rng: random.Random) -> Item:
        key = op_key(MESSAGES_PATH, params)
        draw = rng.random()
        if draw < faults.line_expired:
            return Item(custom_id, key, "expired", {"type": "expired"})
        if draw < faults.line_expired + faults.line_failed:
            error = anthropic_error("api_error", "Internal server error")
            return Item(custom_id, key, "errored", {"type": "errored", "error": error})
        problem = validate_message(params)
        if problem is not None:
            return Item(custom_id, key, "errored", {"type": "errored", "error": problem})
        message, input_tokens, output_tokens = message_object(params, faults, batch=True)
        result: JSONObject = {"type": "succeeded", "message": message}
        return Item(custom_id, key, "succeeded", result, input_tokens, output_tokens)

    def get(self, batch_id: str) -> MessageBatch:
        """A batch as it is now (404 for an unknown id)."""
        with self.host.lock:
            self.advance(self.host.clock())
            batch = self.batches.get(batch_id)
            if batch is None:
                raise not_found(batch_id)
            return batch

    def page(
        self, *, limit: int, after_id: str | None, before_id: str | None
    ) -> tuple[list[MessageBatch], bool]:
        """A page of batches, newest first, and whether more follow."""
        with self.host.lock:
            self.advance(self.host.clock())
            ordered = list(reversed(self.batches.values()))
            ids = [b.id for b in ordered]
            start, stop = 0, len(ordered)
            if after_id is not None:
                start = ids.index(after_id) + 1 if after_id in ids else len(ids)
            if before_id is not None:
                stop = ids.index(before_id) if before_id in ids else 0
                start = max(start, stop - limit)
            chosen = ordered[start:stop][:limit]
            return chosen, start + len(chosen) < stop

    def cancel(self, batch_id: str) -> MessageBatch:
        """Start cancelling a batch; one that has ended or is canceling is left as it is."""
        with self.host.lock:
            now = self.host.clock()
            batch = self.get(batch_id)
            if batch.status == "in_progress":
                self._progress(batch, now)
                batch.status, batch.cancel_initiated_at = "canceling", now
            return batch

    def delete(self, batch_id: str) -> None:
        """Delete an ended batch (400 while it is still processing)."""
        with self.host.lock:
            batch = self.get(batch_id)
            if batch.status != "ended":
                raise ClientError(
                    400,
                    anthropic_error(
                        "invalid_request_error",
                        f"Batch {batch_id} cannot be deleted while it is {batch.status}; "
                        "cancel it first and wait for it to end.",
                    ),
                )
            del self.batches[batch_id]

    def results(self, batch_id: str) -> bytes:
        """The results JSONL of an ended batch (404 before the end or once archived)."""
        with self.host.lock:
            batch = self.get(batch_id)
            if batch.results is None or batch.archived_at is not None:
                message = (
                    f"Results of message batch '{batch_id}' are no longer available."
                    if batch.archived_at is not None
                    else f"Message batch '{batch_id}' has not ended; it has no results yet."
                )
                raise ClientError(404, anthropic_error("not_found_error", message))
            return batch.results

    # --- the clock ---------------------------------------------------------------------

    def cancel_elsewhere(self, batch_id: str) -> bool:
        """Cancel as the Console or another process would; False if ended or canceling."""
        with self.host.lock:
            now = self.host.clock()
            self.advance(now)
            batch = self.batches.get(batch_id)
            if batch is None:
                raise KeyError(batch_id)
            if batch.status != "in_progress":
                return False
            self.cancel(batch_id)
            return True

    def expire(self, batch_id: str) -> None:
        """Make a processing batch end now: its unrun requests ``expired``."""
        with self.host.lock:
            now = self.host.clock()
            batch = self.get(batch_id)
            if batch.status == "in_progress":
                batch.expire_at = now
                self.advance(now)

    def archive_all(self) -> list[str]:
        """Make the results of every ended batch unavailable now (as 29 days later)."""
        with self.host.lock:
            now = self.host.clock()
            self.advance(now)
            archived = []
            for batch in self.batches.values():
                if batch.status == "ended" and batch.archived_at is None:
                    batch.archived_at = now
                    archived.append(batch.id)
            return archived

    def advance(self, now: float) -> None:
        """Bring every unfinished batch up to ``now`` (billing what has completed)."""
        for batch_id, batch in list(self._running.items()):
            self._advance(batch, now)
            if batch.status == "ended":
                del self._running[batch_id]
        for batch in self.batches.values():
            if (
                batch.archived_at is None
                and now != math.inf
                and now >= batch.created + RESULTS_TTL
                and batch.status == "ended"
            ):
                batch.archived_at = batch.created + RESULTS_TTL

    def _advance(self, batch: MessageBatch, now: float) -> None:
        if batch.status == "in_progress":
            stops = [
                (at, why)
                for at, why in ((batch.expire_at, "expired"), (batch.cancel_at, "canceled"))
                if at is not None and at < batch.end
            ]
            if stops:
                at, why = min(stops)
                at = max(at, batch.created)
                if now >= at:
                    self._progress(batch, at)
                    if why == "expired":
                        self._finish(batch, at, unrun="expired")
                        return
                    batch.status, batch.cancel_initiated_at = "canceling", at
            if batch.status == "in_progress":
                self._progress(batch, min(now, batch.end))
                ended_at = batch.end + FINALIZING * batch.scale
                if now >= ended_at:
                    self._finish(batch, ended_at, unrun="expired")
                return
        if batch.status == "canceling":
            assert batch.cancel_initiated_at is not None
            ended_at = batch.cancel_initiated_at + CANCELLING * batch.scale
            if now >= ended_at:
                self._finish(batch, ended_at, unrun="canceled")

    def _progress(self, batch: MessageBatch, now: float) -> None:
        n = len(batch.items)
        span = batch.end - batch.start
        fraction = 1.0 if now >= batch.end or span <= 0 else max(0.0, (now - batch.start) / span)
        batch.done = max(batch.done, min(n, int(n * fraction)))
        for item in batch.items[batch.billed : batch.done]:
            if item.outcome == "succeeded":
                self.host.ledger.record(
                    item.key,
                    MESSAGES_PATH,
                    batch=True,
                    prompt_tokens=item.input_tokens,
                    completion_tokens=item.output_tokens,
                )
        batch.billed = batch.done

    def _finish(
        self, batch: MessageBatch, at: float, *, unrun: Literal["expired", "canceled"]
    ) -> None:
        rng = random.Random(batch.id)
        counts = {"processing": 0, "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0}
        lines: list[JSONObject] = []
        for index, item in enumerate(batch.items):
            result: JSONObject = item.result if index < batch.done else {"type": unrun}
            kind = str(result["type"])
            counts[kind] += 1
            lines.append({"custom_id": item.custom_id, "result": result})
        if batch.unknown_custom_id and lines:
            stray = dict(lines[0])
            stray["custom_id"] = f"unknown-{rng.getrandbits(64):016x}"
            lines.append(stray)
        rng.shuffle(lines)
        batch.results = "".join(
            json.dumps(line, ensure_ascii=False) + "\n" for line in lines
        ).encode("utf-8")
        batch.counts = counts
        batch.status, batch.ended_at = "ended", at


def page_json(batches: list[MessageBatch], has_more: bool, base_url: str) -> JSON:
    """A list page as Anthropic answers one (``data``, ``has_more``, ``first_id``, ``last_id``)."""
    return {
        "data": [b.to_json(base_url) for b in batches],
        "has_more": has_more,
        "first_id": batches[0].id if batches else None,
        "last_id": batches[-1].id if batches else None,
    }
