"""Anthropic's Message Batches as :class:`~._remote.RemoteBatches` (see :mod:`._remote`).

Imported only when a runner or journal is given an ``anthropic.AsyncAnthropic``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Final, cast

import anthropic
import httpx2
import jiter
from anthropic.types.messages import MessageBatch
from openai.types import Batch
from openai.types.batch_request_counts import BatchRequestCounts

from inert._errors import ApiError
from inert._json import JSON
from inert._providers import Provider
from inert._runners._batch._http import NotJsonError
from inert._runners._batch._lines import ShardPlan
from inert._runners._batch._remote import INLINE, MESSAGES, RemoteBatches, Undecided
from inert._store import ShardRecord, Store

ANTHROPIC_MAX_REQUESTS: Final = 100_000
"""Anthropic's limit on requests per Message Batch."""
ANTHROPIC_MAX_BYTES: Final = 256 * 1024 * 1024
"""Anthropic's limit on the size of a Message Batch create body."""
ANTHROPIC_SLACK_SECONDS: Final = 300.0
"""How much earlier than its journal entry a Message Batch may say it was created
(the server's clock against this machine's)."""

_ERROR_STATUSES: Final[Mapping[str, int]] = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}
"""The HTTP status of each of Anthropic's error types (its errors reference)."""


class AnthropicBatches(RemoteBatches):
    """Anthropic's Message Batches through an ``anthropic.AsyncAnthropic`` without SDK retries.

    Every call reads the raw answer and validates it with the SDK's own
    ``MessageBatch`` model, so a body that is not one (an HTML page from a proxy)
    is a transient :class:`~._http.NotJsonError`, never a half-built object.
    """

    provider: Provider = "anthropic"
    uploads = False

    def __init__(self, client: anthropic.AsyncAnthropic, store: Store) -> None:
        self.client = client.with_options(max_retries=0)
        self.store = store

    def batch_endpoint(self, endpoint: str) -> str | None:
        return MESSAGES if endpoint == MESSAGES else None

    def endpoints(self) -> Sequence[str]:
        return [MESSAGES]

    @staticmethod
    def _batch(what: str, response: httpx2.Response) -> Batch:
        return as_batch(_message_batch(what, response.content))

    async def create(
        self, record: ShardRecord, plan: ShardPlan, endpoint: str, metadata: Mapping[str, str]
    ) -> Batch:
        payload = (
            '{"requests":['
            + ",".join(
                '{"custom_id":"' + op.key + '","params":' + op.canonical_body() + "}"
                for op in plan.ops
            )
            + "]}"
        ).encode()
        response = await self.client.post(
            "/v1/messages/batches",
            cast_to=httpx2.Response,
            content=payload,
            options={"max_retries": 0, "headers": {"content-type": "application/json"}},
        )
        return self._batch("creating the message batch", response)

    async def retrieve(self, batch_id: str) -> Batch:
        response = await self.client.get(
            f"/v1/messages/batches/{batch_id}",
            cast_to=httpx2.Response,
            options={"max_retries": 0},
        )
        return self._batch(f"polling message batch {batch_id}", response)

    async def cancel(self, batch_id: str) -> Batch:
        response = await self.client.post(
            f"/v1/messages/batches/{batch_id}/cancel",
            cast_to=httpx2.Response,
            options={"max_retries": 0},
        )
        return self._batch(f"cancelling message batch {batch_id}", response)

    async def _results(self, results_url: str) -> bytes:
        response = await self.client.get(
            results_url,
            cast_to=httpx2.Response,
            options={"max_retries": 0, "headers": {"Accept": "application/binary"}},
        )
        return response.content

    async def download(self, file_id: str) -> bytes:
        return batch_output_lines(await self._results(file_id))

    async def _listed(self, since: float) -> list[MessageBatch]:
        """Every batch created at ``since`` or later, newest first."""
        listed: list[MessageBatch] = []
        after: str | None = None
        while True:
            params: dict[str, object] = {"limit": 100}
            if after is not None:
                params["after_id"] = after
            response = await self.client.get(
                "/v1/messages/batches",
                cast_to=httpx2.Response,
                options={"max_retries": 0, "params": params},
            )
            page = _page(response.content)
            for item in page.data:
                if item.created_at.timestamp() < since:
                    return listed
                listed.append(item)
            if not page.has_more or page.last_id is None:
                return listed
            after = page.last_id

    async def scan(self, records: Sequence[ShardRecord]) -> dict[int, Batch]:
        since = min(r.created_at for r in records) - ANTHROPIC_SLACK_SECONDS
        candidates = [b for b in await self._listed(since) if self.store.find_shard(b.id) is None]
        found: dict[int, Batch] = {}
        taken: set[str] = set()
        for record in sorted(records, key=lambda r: r.created_at):
            ids = set(self.store.shard_custom_ids(record.id))
            fitting = [
                b
                for b in candidates
                if b.id not in taken
                and _total(b) == len(ids)
                and b.created_at.timestamp() >= record.created_at - ANTHROPIC_SLACK_SECONDS
            ]
            confirmed: list[MessageBatch] = []
            open_: list[MessageBatch] = []
            for batch in fitting:
                if (
                    batch.processing_status == "ended"
                    and batch.results_url
                    and batch.archived_at is None
                ):
                    got = _custom_ids(await self._results(batch.results_url))
                    if ids <= got:
                        confirmed.append(batch)
                else:
                    open_.append(batch)
            if confirmed:
                chosen = min(confirmed, key=lambda b: b.created_at)
            elif len(open_) == 1:
                chosen = open_[0]
            elif not open_:
                continue
            else:
                raise Undecided(
                    ApiError(
                        f"{len(open_)} message batches of {len(ids)} requests, made since shard "
                        f"{record.id} was journaled and carried by no journal entry, may be the "
                        "one its lost create made; nothing was submitted for its lines: run "
                        "again once they have ended, when their results tell them apart",
                        code="ambiguous_batch",
                    ),
                    definite=False,
                    status=None,
                )
            taken.add(chosen.id)
            found[record.id] = as_batch(chosen)
        return found


def _total(batch: MessageBatch) -> int:
    c = batch.request_counts
    return c.processing + c.succeeded + c.errored + c.canceled + c.expired


def _message_batch(what: str, data: bytes) -> MessageBatch:
    try:
        return MessageBatch.model_validate_json(data)
    except ValueError:
        raise NotJsonError(what, data.decode("utf-8", "replace")) from None


class _Page:
    def __init__(self, data: list[MessageBatch], has_more: bool, last_id: str | None) -> None:
        self.data = data
        self.has_more = has_more
        self.last_id = last_id


def _page(data: bytes) -> _Page:
    what = "listing message batches"
    try:
        body = jiter.from_json(data)
    except ValueError:
        raise NotJsonError(what, data.decode("utf-8", "replace")) from None
    if not isinstance(body, dict) or not isinstance(body.get("data"), list):
        raise NotJsonError(what, data.decode("utf-8", "replace"))
    page = cast("dict[str, Any]", body)
    try:
        items = [MessageBatch.model_validate(item) for item in page["data"]]
    except ValueError:
        raise NotJsonError(what, data.decode("utf-8", "replace")) from None
    last = page.get("last_id")
    return _Page(items, page.get("has_more") is True, last if isinstance(last, str) else None)


def _epoch(moment: datetime | None) -> int | None:
    return None if moment is None else int(moment.timestamp())


def as_batch(batch: MessageBatch) -> Batch:
    """A Message Batch as the journal sees every batch: an ``openai.types.Batch``."""
    counts = batch.request_counts
    ended = batch.processing_status == "ended"
    status = {"in_progress": "in_progress", "canceling": "cancelling"}.get(
        batch.processing_status,
        "cancelled" if batch.cancel_initiated_at is not None else "completed",
    )
    return Batch(
        id=batch.id,
        object="batch",
        endpoint=MESSAGES,
        completion_window="24h",
        created_at=int(batch.created_at.timestamp()),
        input_file_id=INLINE,
        status=cast("Any", status),
        request_counts=BatchRequestCounts(
            completed=counts.succeeded,
            failed=counts.errored + counts.canceled + counts.expired,
            total=_total(batch),
        ),
        output_file_id=batch.results_url if ended else None,
        error_file_id=None,
        expires_at=_epoch(batch.expires_at),
        cancelling_at=_epoch(batch.cancel_initiated_at),
        completed_at=_epoch(batch.ended_at) if ended and status == "completed" else None,
        cancelled_at=_epoch(batch.ended_at) if ended and status == "cancelled" else None,
    )


def _custom_ids(data: bytes) -> set[str]:
    ids: set[str] = set()
    for raw in data.split(b"\n"):
        try:
            item = jiter.from_json(raw)
        except ValueError:
            continue
        if isinstance(item, dict):
            cid = cast("dict[str, Any]", item).get("custom_id")
            if isinstance(cid, str):
                ids.add(cid)
    return ids


def output_line(item: JSON) -> JSON:
    """One Message Batch result line as a Batch API output line (``None``: not a result)."""
    if not isinstance(item, dict):
        return None
    cid = item.get("custom_id")
    result = item.get("result")
    if not isinstance(cid, str) or not isinstance(result, dict):
        return None
    kind = result.get("type")
    if kind == "succeeded" and isinstance(result.get("message"), dict):
        return {
            "custom_id": cid,
            "response": {"status_code": 200, "body": result["message"]},
            "error": None,
        }
    if kind == "errored":
        outer = result.get("error")
        inner = outer.get("error") if isinstance(outer, dict) else None
        error_type = inner.get("type") if isinstance(inner, dict) else None
        message = inner.get("message") if isinstance(inner, dict) else None
        code = error_type if isinstance(error_type, str) else "api_error"
        return {
            "custom_id": cid,
            "response": {
                "status_code": _ERROR_STATUSES.get(code, 500),
                "body": {
                    "error": {
                        "message": message if isinstance(message, str) else "no message",
                        "code": code,
                        "type": code,
                    }
                },
            },
            "error": None,
        }
    if kind in ("canceled", "expired"):
        code = "batch_cancelled" if kind == "canceled" else "batch_expired"
        text = (
            "the request was canceled before it ran"
            if kind == "canceled"
            else "the batch ended (24 hours) before the request ran"
        )
        return {"custom_id": cid, "response": None, "error": {"code": code, "message": text}}
    return None


def batch_output_lines(data: bytes) -> bytes:
    """A Message Batch results file as Batch API output lines, line for line.

    A line that is not JSON is kept as it is (the output parser reports it); one
    that is JSON but no result line becomes an object without a ``custom_id`` (a
    malformed line, never guessed at).
    """
    out: list[bytes] = []
    for raw in data.split(b"\n"):
        if not raw.strip():
            continue
        try:
            item: JSON = jiter.from_json(raw, allow_inf_nan=False)
        except ValueError:
            out.append(raw)
            continue
        line = output_line(item)
        if line is None:
            out.append(json.dumps({"unrecognised_message_batch_result": item}).encode())
        else:
            out.append(json.dumps(line, ensure_ascii=False, separators=(",", ":")).encode())
    return b"".join(piece + b"\n" for piece in out)
