"""Everything the server remembers (files, batches, the ledger), on one clock.

Batches run on the emulator's clock whether or not anyone polls them (OpenAI
bills a batch that nobody reads): before any batch, file or ledger read, every
unfinished batch is brought up to now, and ``settle()`` runs them all to their
end. Every method takes the lock.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, Final, Literal

from inert._json import JSONObject, op_key

from ._anthropic_batches import MessageBatches
from ._batch import IN_PROGRESS, QUEUED, TERMINAL, VALIDATING, Batch, Line, advance, cancel, jsonl
from ._calls import ENDPOINTS, Answer, answer
from ._errors import ApiError, bad_request, error_body
from ._faults import ATTEMPT_KINDS, Faults, Injection, Injections, draw_fate
from ._files import DEFAULT_FILE_TTL, EXPIRING_PURPOSES, FileStore, StoredFile, new_id
from ._ledger import Ledger
from ._tokens import prompt_tokens
from ._validate import (
    check_expiry,
    check_metadata,
    line_error,
    parse_input_file,
    require_string,
)

COMPLETION_WINDOWS: Final = ("24h",)

ANY_MODEL: Final = "*"
TokenLimit = int | Mapping[str, int] | None
"""An enqueued-token limit for every model, one per model (``"*"``: the others), or none."""


def draw_streams(seed: int | None) -> tuple[random.Random, random.Random, random.Random]:
    """Three generators from one seed: HTTP attempts' faults, batches' fates, lines' outcomes.

    Each kind of draw has its own stream, so a seeded emulator gives the n-th batch it
    accepts the same fate (``draw_fate``) however many polls, retries, downloads and
    lines came before it: how often a client polls depends on the machine's load, and
    must not change which faults a test sees.
    """
    if seed is None:
        return random.Random(), random.Random(), random.Random()
    return random.Random(seed), random.Random(f"batches:{seed}"), random.Random(f"lines:{seed}")


def token_limit_error(model: str, limit: int) -> JSONObject:
    """The ``BatchError`` of a batch refused for the enqueued-token limit.

    OpenAI's wording, as reported in openai/openai-python#2084: "Enqueued token
    limit reached for gpt-4o-mini in organization org-…. Limit: 2,000,000 enqueued
    tokens. Please try again once some in_progress batches have been completed."
    """
    message = (
        f"Enqueued token limit reached for {model} in organization org-emulator. "
        f"Limit: {limit:,} enqueued tokens. "
        "Please try again once some in_progress batches have been completed."
    )
    return line_error(None, "token_limit_exceeded", message)


def batch_failed_error(input_file_id: str) -> JSONObject:
    """The ``BatchError`` of an injected batch failure (not caused by any one line).

    The message is one OpenAI has given for a batch that failed although its input
    file was fine; the code is the emulator's own.
    """
    message = (
        f"Cannot find file {input_file_id}, or organization org-emulator does not have "
        "access to it."
    )
    return line_error(None, "batch_failed", message)


class State:
    """Files, batches, faults and the ledger of one emulator."""

    def __init__(
        self,
        *,
        faults: Faults,
        time_scale: float,
        seed: int | None,
        max_lines: int,
        max_file_bytes: int,
        latency_ms: float = 0.0,
        file_ttl: float | None = DEFAULT_FILE_TTL,
        enqueued_token_limit: TokenLimit = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.lock = threading.RLock()
        self.ledger: Final = Ledger(before_read=self.advance_all)
        self.faults = faults
        self.injections: Final = Injections()
        self.time_scale = time_scale
        self.seed = seed
        self.max_lines = max_lines
        self.max_file_bytes = max_file_bytes
        self.latency_ms = latency_ms
        self.file_ttl = file_ttl
        self.enqueued_token_limit = enqueued_token_limit
        self.clock = clock
        self.rng, self.batch_rng, self.line_rng = draw_streams(seed)
        self.files: Final = FileStore()
        self.batches: dict[str, Batch] = {}
        self._running: dict[str, Batch] = {}
        self.message_batches: Final = MessageBatches(self)
        """Anthropic's Message Batches, on the same clock (``_anthropic_batches``)."""

    def reset(self) -> None:
        """Forget every file, batch, charge and queued fault; reseed the draws."""
        with self.lock:
            self.files.files.clear()
            self.batches.clear()
            self._running.clear()
            self.message_batches.reset()
            self.ledger.clear()
            self.injections.clear()
            self.rng, self.batch_rng, self.line_rng = draw_streams(self.seed)

    # --- faults -----------------------------------------------------------------------

    def chance(self, rate: float) -> bool:
        """True with probability ``rate`` (from the seeded generator)."""
        if rate <= 0:
            return False
        with self.lock:
            return self.rng.random() < rate

    def attempt_fault(self, route: str) -> Injection | None:
        """The fault this attempt on ``route`` suffers: a queued one first, else a drawn one."""
        injected = self.injections.take(route)
        if injected is not None:
            return injected
        faults = self.faults
        if not (faults.rate_limit or faults.server_error or faults.disconnect):
            return None
        with self.lock:
            u = self.rng.random()
            for kind in ATTEMPT_KINDS:
                rate: float = getattr(faults, kind)
                if u < rate:
                    if kind == "server_error":
                        return Injection(kind, self.rng.choice((500, 503)))
                    if kind == "rate_limit":
                        return Injection(kind, 429, max(0.001, 0.05 * self.time_scale))
                    return Injection(kind)
                u -= rate
        return None

    # --- model calls --------------------------------------------------------------------

    def answer(self, endpoint: str, body: Mapping[str, Any], *, batch: bool) -> Answer:
        """The answer to one model call, immediate or a batch line (not billed here)."""
        return answer(endpoint, body, faults=self.faults, created=int(self.clock()))

    def bill_call(self, endpoint: str, body: Mapping[str, Any], result: Answer) -> None:
        """Bill an immediate call that was answered 200."""
        if result.status == 200:
            self.ledger.record(
                op_key(endpoint, dict(body)),
                endpoint,
                batch=False,
                prompt_tokens=result.prompt_tokens,
                completion_tokens=result.completion_tokens,
            )

    # --- files ------------------------------------------------------------------------

    def add_file(
        self, filename: str, purpose: str, content: bytes, *, ttl: float | None = None
    ) -> StoredFile:
        """Store an upload; it expires after ``ttl`` or, for batch files, the file TTL."""
        if ttl is None and purpose in EXPIRING_PURPOSES:
            ttl = self.file_ttl
        with self.lock:
            return self.files.add(filename, purpose, content, now=self.clock(), ttl=ttl)

    def get_file(self, file_id: str) -> StoredFile:
        """A live file (404 once deleted or expired)."""
        with self.lock:
            self._advance_all(self.clock())
            return self.files.get(file_id, self.clock())

    def delete_file(self, file_id: str) -> None:
        """Delete a live file (404 otherwise)."""
        with self.lock:
            self.files.delete(file_id, self.clock())

    def list_files(
        self, *, purpose: str | None, after: str | None, limit: int, order: Literal["asc", "desc"]
    ) -> JSONObject:
        """A page of live files."""
        with self.lock:
            self._advance_all(self.clock())
            return self.files.page(
                now=self.clock(), purpose=purpose, after=after, limit=limit, order=order
            )

    def expire_files(self, purpose: str | None = None) -> list[str]:
        """Make every file that has an expiry (of ``purpose``, if given) expire now.

        Ended Message Batches count as batch output: their results are archived too.
        """
        with self.lock:
            self._advance_all(self.clock())
            expired = self.files.expire_all(self.clock(), purpose)
            if purpose in (None, "batch_output"):
                expired += self.message_batches.archive_all()
            return expired

    # Sink: what a running batch needs.

    def bill(self, line: Line) -> None:
        """Bill one batch line as it completes."""
        self.ledger.record(
            line.key,
            line.endpoint,
            batch=True,
            prompt_tokens=line.prompt_tokens,
            completion_tokens=line.completion_tokens,
        )

    def write(self, filename: str, lines: list[JSONObject], ttl: float | None) -> str:
        """Store a batch's output or error file."""
        now = self.clock()
        return self.files.add(filename, "batch_output", jsonl(lines), now=now, ttl=ttl).id

    # --- batches ----------------------------------------------------------------------

    def create_batch(self, params: Mapping[str, Any]) -> Batch:
        """Check the parameters (400 at once, as OpenAI does) and start a batch."""
        endpoint = params.get("endpoint")
        if not isinstance(endpoint, str) or endpoint not in ENDPOINTS:
            raise bad_request(
                f"Invalid 'endpoint': {endpoint!r}; supported: {', '.join(ENDPOINTS)}.",
                param="endpoint",
                code="invalid_value",
            )
        window = params.get("completion_window")
        if window not in COMPLETION_WINDOWS:
            raise bad_request(
                "Invalid 'completion_window': only '24h' is supported.",
                param="completion_window",
                code="invalid_value",
            )
        file_id = require_string(params, "input_file_id")
        check_metadata(params.get("metadata"))
        output_ttl = check_expiry(params.get("output_expires_after"), "output_expires_after")
        if output_ttl is None:
            output_ttl = self.file_ttl
        with self.lock:
            now = self.clock()
            self._advance_all(now)
            stored = self.files.files.get(file_id)
            if stored is None or stored.expired(now):
                raise bad_request(
                    f"No such File object: {file_id}", param="input_file_id", code="invalid_value"
                )
            if stored.purpose != "batch":
                raise bad_request(
                    f"File {file_id} has purpose {stored.purpose!r}; batches need purpose 'batch'.",
                    param="input_file_id",
                    code="invalid_value",
                )
            errors, parsed, model = parse_input_file(
                stored.content, endpoint, max_bytes=self.max_file_bytes, max_lines=self.max_lines
            )
            enqueued = sum(prompt_tokens(url, body) for _, url, body in parsed)
            faults, scale = self.faults, self.time_scale
            if not errors and model is not None:
                limit = self._limit_for(model)
                if limit is not None and self.queued_tokens(model) + enqueued > limit:
                    errors = [token_limit_error(model, limit)]
            # A batch refused at creation draws nothing: the n-th batch accepted gets
            # the same fate however many were refused before it (refusals of the
            # enqueued-token limit depend on timing).
            fate = None if errors else draw_fate(self.batch_rng, faults)
            if fate is not None and fate.failed:
                errors = [batch_failed_error(file_id)]
            lines = [] if errors else [self._plan_line(cid, url, body) for cid, url, body in parsed]
            self.line_rng.shuffle(lines)
            batch = Batch(
                id=new_id("batch_"),
                endpoint=endpoint,
                input_file_id=file_id,
                completion_window=window,
                metadata=params.get("metadata"),
                created=now,
                scale=scale,
                model=model,
                errors=errors,
                lines=lines,
                enqueued_tokens=0 if errors else enqueued,
                output_ttl=output_ttl,
            )
            if fate is not None and not errors:
                if fate.expire_at is not None:  # half way through, as it always has
                    batch.expire_at = now + (VALIDATING + IN_PROGRESS / 2) * scale
                if fate.cancel_at is not None:
                    batch.cancel_at = batch.start + fate.cancel_at * IN_PROGRESS * scale
                batch.unknown_custom_id = fate.unknown_custom_id
                batch.drop_output = fate.drop_output
            self.batches[batch.id] = batch
            self._running[batch.id] = batch
            return batch

    def _limit_for(self, model: str) -> int | None:
        limit = self.enqueued_token_limit
        if limit is None or isinstance(limit, int):
            return limit
        return limit.get(model, limit.get(ANY_MODEL))

    def queued_tokens(self, model: str) -> int:
        """Tokens enqueued now for ``model``: its validating and in-progress batches."""
        with self.lock:
            return sum(
                b.enqueued_tokens
                for b in self._running.values()
                if b.model == model and b.status in QUEUED and not b.errors
            )

    def _plan_line(self, custom_id: str, url: str, body: JSONObject) -> Line:
        key = op_key(url, body)
        draw = self.line_rng.random()
        faults = self.faults
        if draw < faults.line_expired:
            return Line(custom_id, key, url, "expired")
        if draw < faults.line_expired + faults.line_failed:
            failure = error_body(
                "The server had an error while processing your request.",
                type="server_error",
                code="server_error",
            )
            return Line(custom_id, key, url, "http_error", 500, failure)
        result = self.answer(url, body, batch=True)
        outcome: Literal["ok", "http_error"] = "ok" if result.status == 200 else "http_error"
        return Line(
            custom_id,
            key,
            url,
            outcome,
            result.status,
            result.body,
            result.prompt_tokens,
            result.completion_tokens,
        )

    def _find(self, batch_id: str) -> Batch:
        batch = self.batches.get(batch_id)
        if batch is None:
            raise ApiError(
                404, error_body(f"No batch found with id '{batch_id}'.", param="batch_id")
            )
        return batch

    def get_batch(self, batch_id: str) -> Batch:
        """A batch as it is now (404 for an unknown id)."""
        with self.lock:
            self._advance_all(self.clock())
            return self._find(batch_id)

    def list_batches(self, after: str | None, limit: int) -> JSONObject:
        """A ``ListBatchesResponse`` page, newest first."""
        with self.lock:
            self._advance_all(self.clock())
            ordered = list(reversed(self.batches.values()))
            start = 0
            if after is not None:
                ids = [b.id for b in ordered]
                start = ids.index(after) + 1 if after in ids else len(ids)
            page = ordered[start : start + limit]
            return {
                "object": "list",
                "data": [b.to_json() for b in page],
                "first_id": page[0].id if page else None,
                "last_id": page[-1].id if page else None,
                "has_more": start + limit < len(ordered),
            }

    def cancel_batch(self, batch_id: str) -> Batch:
        """``POST /v1/batches/{id}/cancel``: 400 when it has ended or is cancelling."""
        with self.lock:
            now = self.clock()
            self._advance_all(now)
            batch = self._find(batch_id)
            if not cancel(batch, now, self):
                raise bad_request(
                    f"Cannot cancel a batch with status '{batch.status}'.", code="invalid_state"
                )
            return batch

    def cancel_elsewhere(self, batch_id: str) -> bool:
        """Cancel as the dashboard or another process would; False if it had ended."""
        with self.lock:
            now = self.clock()
            self._advance_all(now)
            if batch_id not in self.batches:
                raise KeyError(batch_id)
            return cancel(self.batches[batch_id], now, self)

    def expire_batch(self, batch_id: str) -> None:
        """Make a running batch expire now."""
        with self.lock:
            now = self.clock()
            self._advance_all(now)
            batch = self._find(batch_id)
            if batch.status not in TERMINAL:
                batch.expire_at = now
                self._advance_all(now)

    def advance_all(self) -> None:
        """Bring every unfinished batch up to now (billing what has completed)."""
        with self.lock:
            self._advance_all(self.clock())

    def settle(self) -> None:
        """Run every unfinished batch to its end, billing what that run bills."""
        with self.lock:
            self._advance_all(math.inf)

    def _advance_all(self, now: float) -> None:
        self.message_batches.advance(now)
        if not self._running:
            return
        for batch_id, batch in list(self._running.items()):
            advance(batch, now, self)
            if batch.status in TERMINAL:
                del self._running[batch_id]
