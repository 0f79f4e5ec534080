"""Files and batches held in memory, with a batch lifecycle computed from the clock.

A batch's status is worked out lazily from its timestamps whenever it is read, so
no background task is needed: ``validating`` for ``0.15 * time_scale`` seconds,
``in_progress`` for ``0.8 * time_scale`` (lines complete evenly, in a shuffled
order), ``finalizing`` for ``0.15 * time_scale``, then ``completed``. Cancelling
takes ``0.15 * time_scale``.
"""

from __future__ import annotations

import json
import random
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any, Final, Literal

import attrs

from inert._json import JSON, JSONObject, op_key

from ._answers import (
    CHAT_PATH,
    EMBEDDINGS_PATH,
    chat_completion,
    embedding_response,
    error_body,
    validate_chat,
    validate_embedding,
)
from ._faults import Faults
from ._ledger import Ledger

ENDPOINTS: Final = (CHAT_PATH, EMBEDDINGS_PATH)
VALIDATING: Final = 0.15
IN_PROGRESS: Final = 0.8
FINALIZING: Final = 0.15
CANCELLING: Final = 0.15
MAX_ERRORS: Final = 100

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


class ApiError(Exception):
    """An error answered with OpenAI's error shape and an HTTP status."""

    def __init__(self, status: int, body: JSONObject) -> None:
        super().__init__(status, body)
        self.status = status
        self.body = body


def new_id(prefix: str) -> str:
    """An OpenAI-looking object id such as ``batch_5f3a...``."""
    return f"{prefix}{uuid.uuid4().hex[:24]}"


@attrs.define
class StoredFile:
    id: str
    filename: str
    purpose: str
    content: bytes
    created_at: int

    def to_json(self) -> JSONObject:
        return {
            "id": self.id,
            "object": "file",
            "bytes": len(self.content),
            "created_at": self.created_at,
            "filename": self.filename,
            "purpose": self.purpose,
            "status": "processed",
            "expires_at": None,
            "status_details": None,
        }


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


@attrs.define
class Batch:
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
    expire_after: float | None = None
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

    def counts(self) -> JSONObject:
        done = self.lines[: self.done]
        ok = sum(1 for line in done if line.outcome == "ok")
        failed = len(done) - ok
        if self.status in ("expired", "cancelled"):
            failed = len(self.lines) - ok
        return {"total": len(self.lines), "completed": ok, "failed": failed}

    def to_json(self) -> JSONObject:
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
            "expires_at": int(self.created) + 24 * 3600,
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


def _line_error(line: int, code: str, message: str, param: str | None = None) -> JSONObject:
    return {"code": code, "message": message, "param": param, "line": line}


class State:
    """Everything the server remembers; every method takes the lock."""

    def __init__(
        self,
        *,
        ledger: Ledger,
        faults: Faults,
        time_scale: float,
        seed: int | None,
        max_lines: int,
        max_file_bytes: int,
        latency_ms: float = 0.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.lock = threading.RLock()
        self.ledger = ledger
        self.faults = faults
        self.time_scale = time_scale
        self.seed = seed
        self.max_lines = max_lines
        self.max_file_bytes = max_file_bytes
        self.latency_ms = latency_ms
        self.clock = clock
        self.rng = random.Random(seed)
        self.files: dict[str, StoredFile] = {}
        self.batches: dict[str, Batch] = {}

    def reset(self) -> None:
        with self.lock:
            self.files.clear()
            self.batches.clear()
            self.ledger.clear()
            self.rng = random.Random(self.seed)

    # --- attempt faults ---------------------------------------------------------------

    def draw_attempt_fault(self) -> str | None:
        """``rate_limit``, ``server_error``, ``disconnect`` or None for one attempt."""
        faults = self.faults
        if not (faults.rate_limit or faults.server_error or faults.disconnect):
            return None
        with self.lock:
            u = self.rng.random()
        for kind in ("rate_limit", "server_error", "disconnect"):
            rate: float = getattr(faults, kind)
            if u < rate:
                return kind
            u -= rate
        return None

    # --- immediate requests -----------------------------------------------------------

    def answer(
        self, endpoint: str, body: Mapping[str, Any], *, batch: bool
    ) -> tuple[int, JSONObject, int, int]:
        """Status, body and tokens for a chat or embeddings request (not billed here)."""
        if endpoint == CHAT_PATH:
            invalid = validate_chat(body)
            if invalid is not None:
                return 400, invalid, 0, 0
            key = op_key(endpoint, dict(body))
            completion, prompt, completion_tokens = chat_completion(
                body, key, self.faults, created=int(self.clock()), request_id=uuid.uuid4().hex[:24]
            )
            return 200, completion, prompt, completion_tokens
        invalid = validate_embedding(body)
        if invalid is not None:
            return 400, invalid, 0, 0
        response, tokens = embedding_response(body)
        return 200, response, tokens, 0

    # --- files ------------------------------------------------------------------------

    def add_file(self, filename: str, purpose: str, content: bytes) -> StoredFile:
        stored = StoredFile(new_id("file-"), filename, purpose, content, int(self.clock()))
        with self.lock:
            self.files[stored.id] = stored
        return stored

    def get_file(self, file_id: str) -> StoredFile:
        with self.lock:
            stored = self.files.get(file_id)
        if stored is None:
            raise ApiError(404, error_body(f"No such File object: {file_id}", param="id"))
        return stored

    def delete_file(self, file_id: str) -> None:
        with self.lock:
            self.get_file(file_id)
            del self.files[file_id]

    # --- batches ----------------------------------------------------------------------

    def create_batch(self, params: Mapping[str, Any]) -> Batch:
        endpoint = params.get("endpoint")
        if endpoint not in ENDPOINTS:
            raise ApiError(
                400,
                error_body(
                    f"Invalid 'endpoint': {endpoint!r}; supported: {', '.join(ENDPOINTS)}.",
                    param="endpoint",
                    code="invalid_value",
                ),
            )
        window = params.get("completion_window")
        if window != "24h":
            raise ApiError(
                400,
                error_body(
                    "Invalid 'completion_window': only '24h' is supported.",
                    param="completion_window",
                    code="invalid_value",
                ),
            )
        file_id = params.get("input_file_id")
        if not isinstance(file_id, str):
            raise ApiError(
                400,
                error_body(
                    "Missing required parameter: 'input_file_id'.",
                    param="input_file_id",
                    code="missing_required_parameter",
                ),
            )
        with self.lock:
            stored = self.files.get(file_id)
            if stored is None:
                raise ApiError(
                    400,
                    error_body(
                        f"No such File object: {file_id}",
                        param="input_file_id",
                        code="invalid_value",
                    ),
                )
            if stored.purpose != "batch":
                raise ApiError(
                    400,
                    error_body(
                        f"File {file_id} has purpose {stored.purpose!r}; batches need purpose 'batch'.",
                        param="input_file_id",
                        code="invalid_value",
                    ),
                )
            errors, parsed, model = self._validate_file(stored.content, endpoint)
            faults = self.faults
            lines = [] if errors else [self._plan_line(cid, url, body) for cid, url, body in parsed]
            order = list(range(len(lines)))
            self.rng.shuffle(order)
            expire = self.rng.random() < faults.batch_expire
            batch = Batch(
                id=new_id("batch_"),
                endpoint=endpoint,
                input_file_id=file_id,
                completion_window=window,
                metadata=params.get("metadata"),
                created=self.clock(),
                scale=self.time_scale,
                model=model,
                errors=errors,
                lines=[lines[i] for i in order],
                expire_after=(VALIDATING + IN_PROGRESS / 2) * self.time_scale if expire else None,
                unknown_custom_id=self.rng.random() < faults.unknown_custom_id,
                drop_output=self.rng.random() < faults.drop_output,
            )
            self.batches[batch.id] = batch
            return batch

    def _validate_file(
        self, content: bytes, endpoint: str
    ) -> tuple[list[JSONObject], list[tuple[str, str, JSONObject]], str | None]:
        errors: list[JSONObject] = []
        if len(content) > self.max_file_bytes:
            message = f"The input file is larger than the {self.max_file_bytes} byte maximum."
            return [_line_error(0, "file_too_large", message) | {"line": None}], [], None
        try:
            text = content.decode("utf-8")
        except UnicodeDecodeError:
            return (
                [
                    _line_error(0, "invalid_file", "The input file is not UTF-8 text.")
                    | {"line": None}
                ],
                [],
                None,
            )
        raw_lines = [line for line in text.splitlines() if line.strip()]
        if not raw_lines:
            return (
                [_line_error(0, "empty_file", "The input file is empty.") | {"line": None}],
                [],
                None,
            )
        if len(raw_lines) > self.max_lines:
            message = f"The input file has {len(raw_lines)} lines; the maximum is {self.max_lines}."
            return [_line_error(0, "too_many_tasks", message) | {"line": None}], [], None
        parsed: list[tuple[str, str, JSONObject]] = []
        seen: set[str] = set()
        model: str | None = None
        for number, raw in enumerate(raw_lines, start=1):
            if len(errors) >= MAX_ERRORS:
                break
            try:
                item = json.loads(raw)
            except json.JSONDecodeError:
                errors.append(
                    _line_error(
                        number, "invalid_json_line", "This line is not parseable as valid JSON."
                    )
                )
                continue
            if not isinstance(item, dict):
                errors.append(
                    _line_error(number, "invalid_json_line", "This line is not a JSON object.")
                )
                continue
            custom_id = item.get("custom_id")
            if not isinstance(custom_id, str) or not custom_id:
                errors.append(
                    _line_error(
                        number, "missing_required_parameter", "Missing 'custom_id'.", "custom_id"
                    )
                )
                continue
            if item.get("method") != "POST":
                errors.append(
                    _line_error(
                        number,
                        "invalid_method",
                        "The 'method' of each line must be 'POST'.",
                        "method",
                    )
                )
                continue
            url = item.get("url")
            if url != endpoint:
                message = f"The URL {url!r} does not match the batch endpoint {endpoint!r}."
                errors.append(_line_error(number, "url_mismatch", message, "url"))
                continue
            body = item.get("body")
            if not isinstance(body, dict):
                errors.append(
                    _line_error(number, "missing_required_parameter", "Missing 'body'.", "body")
                )
                continue
            line_model = body.get("model")
            if isinstance(line_model, str):
                if model is None:
                    model = line_model
                elif line_model != model:
                    message = f"Line model {line_model!r} differs from the batch model {model!r}."
                    errors.append(_line_error(number, "model_mismatch", message, "body.model"))
                    continue
            if custom_id in seen:
                message = f"The custom_id {custom_id!r} is used by an earlier line."
                errors.append(_line_error(number, "duplicate_custom_id", message, "custom_id"))
                continue
            seen.add(custom_id)
            parsed.append((custom_id, endpoint, body))
        return errors, parsed, model

    def _plan_line(self, custom_id: str, url: str, body: JSONObject) -> Line:
        key = op_key(url, body)
        draw = self.rng.random()
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
        status, response, prompt, completion = self.answer(url, body, batch=True)
        outcome: Literal["ok", "http_error"] = "ok" if status == 200 else "http_error"
        return Line(custom_id, key, url, outcome, status, response, prompt, completion)

    def get_batch(self, batch_id: str) -> Batch:
        with self.lock:
            batch = self.batches.get(batch_id)
            if batch is None:
                raise ApiError(
                    404, error_body(f"No batch found with id '{batch_id}'.", param="batch_id")
                )
            self._advance(batch)
            return batch

    def list_batches(self, after: str | None, limit: int) -> JSONObject:
        with self.lock:
            ordered = list(reversed(self.batches.values()))
            start = 0
            if after is not None:
                ids = [b.id for b in ordered]
                start = ids.index(after) + 1 if after in ids else len(ids)
            page = ordered[start : start + limit]
            for batch in page:
                self._advance(batch)
            data: list[JSON] = [b.to_json() for b in page]
            return {
                "object": "list",
                "data": data,
                "first_id": page[0].id if page else None,
                "last_id": page[-1].id if page else None,
                "has_more": start + limit < len(ordered),
            }

    def cancel_batch(self, batch_id: str) -> Batch:
        with self.lock:
            batch = self.get_batch(batch_id)
            if batch.status in TERMINAL or batch.status == "cancelling":
                raise ApiError(
                    400,
                    error_body(
                        f"Cannot cancel a batch with status '{batch.status}'.", code="invalid_state"
                    ),
                )
            batch.status = "cancelling"
            batch.cancelling_at = self.clock()
            return batch

    def expire_batch(self, batch_id: str) -> None:
        with self.lock:
            batch = self.get_batch(batch_id)
            if batch.status not in TERMINAL:
                batch.expire_after = self.clock() - batch.created
                self._advance(batch)

    def advance_all(self) -> None:
        with self.lock:
            for batch in self.batches.values():
                self._advance(batch)

    def _advance(self, batch: Batch) -> None:
        if batch.status in TERMINAL:
            return
        now = self.clock()
        scale = batch.scale
        start = batch.created + VALIDATING * scale
        if batch.status == "cancelling":
            assert batch.cancelling_at is not None
            if now >= batch.cancelling_at + CANCELLING * scale:
                batch.cancelled_at = batch.cancelling_at + CANCELLING * scale
                self._finish(batch, "cancelled")
            return
        end = start + IN_PROGRESS * scale
        expire_at = None if batch.expire_after is None else batch.created + batch.expire_after
        if (
            expire_at is not None
            and now >= expire_at
            and expire_at < end
            and not (batch.errors and expire_at >= start)
        ):
            if expire_at >= start:
                batch.in_progress_at = start
                self._progress(batch, expire_at, start, end)
            batch.expired_at = expire_at
            self._finish(batch, "expired")
            return
        if now < start:
            return
        if batch.errors:
            batch.status, batch.failed_at = "failed", start
            return
        batch.in_progress_at = start
        self._progress(batch, now, start, end)
        if now < end:
            batch.status = "in_progress"
            return
        batch.finalizing_at = end
        if now < end + FINALIZING * scale:
            batch.status = "finalizing"
            return
        batch.completed_at = end + FINALIZING * scale
        self._finish(batch, "completed")

    def _progress(self, batch: Batch, now: float, start: float, end: float) -> None:
        n = len(batch.lines)
        fraction = 1.0 if now >= end else (now - start) / (end - start)
        batch.done = max(batch.done, min(n, int(n * fraction)))
        for line in batch.lines[batch.billed : batch.done]:
            if line.outcome == "ok":
                self.ledger.record(
                    line.key,
                    line.endpoint,
                    batch=True,
                    prompt_tokens=line.prompt_tokens,
                    completion_tokens=line.completion_tokens,
                )
                batch.input_tokens += line.prompt_tokens
                batch.output_tokens += line.completion_tokens
        batch.billed = batch.done

    def _finish(self, batch: Batch, status: Status) -> None:
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
                failures.append(
                    entry | {"response": None, "error": {"code": code, "message": message}}
                )
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
            batch.output_file_id = self._write(f"{batch.id}_output.jsonl", output).id
        if failures:
            batch.error_file_id = self._write(f"{batch.id}_error.jsonl", failures).id
        batch.status = status

    def _write(self, filename: str, lines: list[JSONObject]) -> StoredFile:
        text = "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines)
        return self.add_file(filename, "batch_output", text.encode("utf-8"))
