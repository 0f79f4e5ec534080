"""One provider's batch API behind one small seam: submit, poll, results, cancel, find.

The journal (:mod:`._journal`) drives every batch the same way whichever provider
runs it; what differs lives here, one adapter per provider, each making one try of
a call (the journal retries, through :func:`._http.retrying`):

* :class:`OpenAIBatches` — the Batch API: the JSONL input is uploaded as a file,
  ``POST /v1/batches`` names it and one endpoint, the batch carries metadata (by
  which a batch whose create answer was lost is found again), and the output and
  error files are downloaded by file id.
* :class:`AnthropicBatches` — the Message Batches API (Anthropic's batch-processing
  guide, platform.claude.com/docs/en/build-with-claude/batch-processing, and the
  ``anthropic`` SDK's ``MessageBatch`` and ``MessageBatchIndividualResponse``): the
  requests go inline in ``POST /v1/messages/batches`` as ``{"custom_id", "params"}``
  (no upload), up to 100,000 requests or 256 MB per batch; ``processing_status`` is
  ``in_progress``, ``canceling`` or ``ended``; once ended, the results are JSONL
  behind ``results_url``, one line per request, ``succeeded``, ``errored``,
  ``canceled`` or ``expired``, kept 29 days. A ``custom_id`` must match
  ``^[a-zA-Z0-9_-]{1,64}$``: an op key (64 hex digits) does, so it is used as it is.

The journal sees every batch as an ``openai.types.Batch`` and every results file
as Batch API output lines, so one code path journals, collects, resubmits and
cancels for both. The Anthropic adapter translates: ``in_progress`` is
``in_progress``, ``canceling`` is ``cancelling``, ``ended`` is ``cancelled`` once a
cancel was initiated and ``completed`` otherwise; ``request_counts`` become
``completed`` (succeeded) and ``failed`` (errored, canceled, expired); the
``results_url`` is the batch's output file; a ``succeeded`` line is an answer with
status 200, an ``errored`` one an HTTP status of its error type (so an
``api_error`` or ``overloaded_error`` is retried, an ``invalid_request_error`` is
not), ``canceled`` and ``expired`` the Batch API's ``batch_cancelled`` and
``batch_expired`` (resubmitted, unless the run was cancelled).

**Finding a batch whose create answer was lost.** A Message Batch has no
metadata, and its requests are not listed until it ends. The journal records the
shard (its custom ids, its size and the time) before the create; a lost create is
looked for among the batches listed since then (less a clock slack) that no
journal row carries and that have the shard's number of requests. An ended
candidate is confirmed by its results carrying the shard's custom ids; a single
unconfirmed candidate is taken (collecting it confirms it: a stranger's batch
would answer none of the shard's lines, which then go again). When several
unconfirmed candidates fit, nothing is decided and nothing is submitted: the
look-up fails with :class:`Undecided`, and a later run decides once they ended.
"""

from __future__ import annotations

import abc
import json
import tempfile
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, Final, cast

import anthropic
import httpx2
import jiter
import openai
from anthropic.types.messages import MessageBatch
from openai.types import Batch
from openai.types.batch_request_counts import BatchRequestCounts

from inert._errors import ApiError
from inert._json import JSON
from inert._providers import Provider
from inert._runners._batch._http import (
    Backoff,
    CallFailed,
    NotJsonError,
    checked_batch,
    checked_file,
    retrying,
)
from inert._runners._batch._lines import ENDPOINTS, ShardPlan
from inert._store import ShardRecord, Store

MESSAGES: Final = "/v1/messages"
"""The one endpoint Anthropic's Message Batches serve."""
ANTHROPIC_MAX_REQUESTS: Final = 100_000
"""Anthropic's limit on requests per Message Batch."""
ANTHROPIC_MAX_BYTES: Final = 256 * 1024 * 1024
"""Anthropic's limit on the size of a Message Batch create body."""
INLINE: Final = "inline"
"""The input file id journaled for a Message Batch, whose requests go inline."""
_LIST_SLACK_SECONDS: Final = 3600.0
"""How far before a shard's journal entry the Batch API list is read."""
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


class Undecided(CallFailed):
    """Several batches may be the one a lost create made, and none can be told apart yet."""


class RemoteBatches(abc.ABC):
    """One provider's batch API, one try per call (the journal retries and journals).

    Each call raises the SDK's exceptions or :class:`~._http.NotJsonError` for the
    journal's :func:`~._http.retrying` to judge.
    """

    provider: Provider
    uploads: bool
    """Whether a shard's lines are uploaded as a file before its batch is created."""

    @abc.abstractmethod
    def batch_endpoint(self, endpoint: str) -> str | None:
        """The endpoint a batch of ops of ``endpoint`` is created for (None: not served)."""

    @abc.abstractmethod
    def endpoints(self) -> Sequence[str]:
        """Every endpoint this provider's batch API serves (for messages)."""

    async def upload(
        self,
        plan: ShardPlan,
        filename: str,
        backoff: Backoff,
        lost: Callable[[CallFailed], Awaitable[None]],
    ) -> str:
        """Upload a shard's input file (with retries); its file id."""
        raise NotImplementedError

    @abc.abstractmethod
    async def create(
        self, record: ShardRecord, plan: ShardPlan, endpoint: str, metadata: Mapping[str, str]
    ) -> Batch:
        """Create the shard's batch (one try)."""

    @abc.abstractmethod
    async def retrieve(self, batch_id: str) -> Batch:
        """The batch as the server sees it now (one try)."""

    @abc.abstractmethod
    async def download(self, file_id: str) -> bytes:
        """An output or error file as Batch API output lines (one try)."""

    @abc.abstractmethod
    async def cancel(self, batch_id: str) -> Batch:
        """Ask the server to cancel the batch (one try)."""

    @abc.abstractmethod
    async def scan(self, records: Sequence[ShardRecord]) -> dict[int, Batch]:
        """Batches made for ``records`` whose batch ids were never journaled (one try)."""


class OpenAIBatches(RemoteBatches):
    """OpenAI's Batch API through an ``openai.AsyncOpenAI`` without SDK retries."""

    provider: Provider = "openai"
    uploads = True

    def __init__(self, client: openai.AsyncOpenAI) -> None:
        self.client = client.with_options(max_retries=0)

    def batch_endpoint(self, endpoint: str) -> str | None:
        return ENDPOINTS.get(endpoint)

    def endpoints(self) -> Sequence[str]:
        return list(ENDPOINTS)

    async def upload(
        self,
        plan: ShardPlan,
        filename: str,
        backoff: Backoff,
        lost: Callable[[CallFailed], Awaitable[None]],
    ) -> str:
        what = "uploading the batch input file"
        with tempfile.TemporaryFile() as spool:
            plan.write_to(spool)

            async def once() -> str:
                spool.seek(0)
                made = await self.client.files.create(file=(filename, spool), purpose="batch")
                return checked_file(what, made).id

            return await retrying(what, once, backoff, before_retry=_noting(lost))

    async def create(
        self, record: ShardRecord, plan: ShardPlan, endpoint: str, metadata: Mapping[str, str]
    ) -> Batch:
        assert record.input_file_id is not None
        return checked_batch(
            "creating the batch",
            await self.client.batches.create(
                input_file_id=record.input_file_id,
                endpoint=ENDPOINTS[endpoint],
                completion_window="24h",
                metadata=dict(metadata),
            ),
        )

    async def retrieve(self, batch_id: str) -> Batch:
        return checked_batch(
            f"polling batch {batch_id}", await self.client.batches.retrieve(batch_id)
        )

    async def download(self, file_id: str) -> bytes:
        response = await self.client.files.content(file_id)
        return response.content

    async def cancel(self, batch_id: str) -> Batch:
        return checked_batch(
            f"cancelling batch {batch_id}", await self.client.batches.cancel(batch_id)
        )

    async def scan(self, records: Sequence[ShardRecord]) -> dict[int, Batch]:
        """Match by the metadata inert puts on every batch: run, shard, digest of custom ids."""
        since = min(r.created_at for r in records) - _LIST_SLACK_SECONDS
        targets = {(r.run_id, str(r.shard), r.digest): r for r in records}
        found: dict[int, Batch] = {}
        async for item in self.client.batches.list(limit=100):
            batch = checked_batch("listing batches", item)
            if batch.created_at < since:
                break
            meta = batch.metadata or {}
            run, shard, digest = (
                meta.get("inert_run"),
                meta.get("inert_shard"),
                meta.get("inert_digest"),
            )
            record = (
                None
                if run is None or shard is None or digest is None
                else targets.get((run, shard, digest))
            )
            if record is not None and record.id not in found:
                found[record.id] = batch
                if len(found) == len(targets):
                    break
        return found


def _noting(
    lost: Callable[[CallFailed], Awaitable[None]],
) -> Callable[[CallFailed], Awaitable[str | None]]:
    async def before_retry(failure: CallFailed) -> str | None:
        await lost(failure)
        return None

    return before_retry


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
