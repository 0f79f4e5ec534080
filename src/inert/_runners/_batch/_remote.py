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

The Anthropic adapter lives in :mod:`._remote_anthropic`, imported only once an
Anthropic client is given (the ``anthropic`` SDK is slow to import).
"""

from __future__ import annotations

import abc
import tempfile
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Final

import openai
from openai.types import Batch

from inert._providers import Provider
from inert._runners._batch._http import (
    Backoff,
    CallFailed,
    checked_batch,
    checked_file,
    retrying,
)
from inert._runners._batch._lines import ENDPOINTS, ShardPlan
from inert._store import ShardRecord

MESSAGES: Final = "/v1/messages"
"""The one endpoint Anthropic's Message Batches serve."""
INLINE: Final = "inline"
"""The input file id journaled for a Message Batch, whose requests go inline."""
_LIST_SLACK_SECONDS: Final = 3600.0
"""How far before a shard's journal entry the Batch API list is read."""


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
