"""``BatchJournal``: remote batch operations that keep the store's journal in step.

Shared by the runner and ``inert batches``: find a shard's batch by its metadata,
poll it, download and store its answers, cancel it, resume every pending shard.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine, Iterable, Sequence
from typing import Any, Final

import openai
from openai.types import Batch

from inert._runners._batch._lines import TERMINAL_STATUSES
from inert._runners._batch._output import Collected, OutputLine, is_success, parse_output_lines
from inert._runners._batch._progress import QUIET, ProgressView
from inert._store import ATTACHED_STATES, UNSENT_STATES, ShardRecord, Store

logger = logging.getLogger("inert.batch")

_POLL_ERROR_LIMIT: Final = 20
_DOWNLOAD_ATTEMPTS: Final = 5
_LIST_SLACK_SECONDS: Final = 3600.0

TRANSIENT: Final = (openai.APIConnectionError, openai.InternalServerError, openai.RateLimitError)
"""SDK errors worth retrying: no answer, a 5xx, a 429."""


class BatchJournal:
    """Remote batch operations that keep the store's journal in step.

    Used by :class:`BatchRunner` and by ``inert batches``: find a shard's batch by
    its metadata, poll it, download and store its answers, cancel it.
    """

    def __init__(
        self,
        client: openai.AsyncOpenAI,
        store: Store,
        *,
        poll_interval: float = 5.0,
        poll_interval_max: float = 60.0,
    ) -> None:
        self.client = client
        self.store = store
        self.poll_interval = poll_interval
        self.poll_interval_max = poll_interval_max

    async def find_remote(self, records: Sequence[ShardRecord]) -> dict[int, Batch]:
        """Batches created for journaled shards whose batch id was never journaled.

        A shard is matched by the metadata inert puts on every batch: its run, its
        shard number and the digest of its custom ids.
        """
        if not records:
            return {}
        since = min(r.created_at for r in records) - _LIST_SLACK_SECONDS
        targets = {(r.run_id, str(r.shard), r.digest): r for r in records}
        found: dict[int, Batch] = {}
        async for batch in self.client.batches.list(limit=100):
            if batch.created_at < since:
                break
            meta = batch.metadata or {}
            key = (meta.get("inert_run"), meta.get("inert_shard"), meta.get("inert_digest"))
            record = targets.get(key)  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]  # a key of None never matches
            if record is not None and record.id not in found:
                found[record.id] = batch
                if len(found) == len(targets):
                    break
        return found

    async def resolve_unsent(self, records: Sequence[ShardRecord]) -> list[ShardRecord]:
        """Re-attach unsent shards whose batch exists remotely; abandon the others.

        Returns the shards now attached (state ``created``).
        """
        unsent = [r for r in records if r.state in UNSENT_STATES]
        if not unsent:
            return []
        found = await self.find_remote(unsent)
        attached: list[ShardRecord] = []
        for record in unsent:
            batch = found.get(record.id)
            if batch is None:
                self.store.mark_state(
                    record.id, "abandoned", "no remote batch was found for this shard on resume"
                )
            else:
                logger.info("re-attached shard %s to batch %s", record.id, batch.id)
                attached.append(self.store.mark_created(record.id, batch.id, batch.status))
        return attached

    async def poll(self, record: ShardRecord, view: ProgressView = QUIET) -> Batch | None:
        """Poll a shard's batch with backoff until it is terminal (None: it does not exist)."""
        assert record.batch_id is not None
        interval = self.poll_interval
        errors = 0
        last = record.remote_status
        while True:
            try:
                batch = await self.client.batches.retrieve(record.batch_id)
            except openai.NotFoundError:
                return None
            except TRANSIENT as exc:
                errors += 1
                if errors > _POLL_ERROR_LIMIT:
                    raise
                logger.warning("polling %s failed (%s); retrying", record.batch_id, exc)
                await asyncio.sleep(interval)
                interval = min(interval * 2, self.poll_interval_max)
                continue
            errors = 0
            view.show(record, batch)
            if batch.status != last:
                counts = batch.request_counts
                self.store.mark_remote(
                    record.id,
                    batch.status,
                    counts.completed if counts is not None else 0,
                    counts.failed if counts is not None else 0,
                )
                last = batch.status
            if batch.status in TERMINAL_STATUSES:
                return batch
            await asyncio.sleep(interval)
            interval = min(interval * 1.5, self.poll_interval_max)

    async def _download(self, file_id: str | None) -> bytes:
        if file_id is None:
            return b""
        delay = self.poll_interval
        for attempt in range(_DOWNLOAD_ATTEMPTS):
            try:
                response = await self.client.files.content(file_id)
                return response.content
            except TRANSIENT:
                if attempt == _DOWNLOAD_ATTEMPTS - 1:
                    raise
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.poll_interval_max)
        raise AssertionError("unreachable")  # pragma: no cover

    async def collect(self, record: ShardRecord, view: ProgressView = QUIET) -> Collected:
        """Wait for a shard's batch, download its files and store its answers.

        Every successful line is stored (even one no current op asked for: it was
        paid) in the same transaction that marks the shard downloaded. Lines whose
        custom id is not in the shard are recorded as anomalies and dropped.
        """
        store = self.store
        assert record.batch_id is not None
        batch = await self.poll(record, view)
        if batch is None:
            store.finish_shard(
                record,
                state="failed",
                remote_status="missing",
                answers=(),
                completed=0,
                failed=0,
                output_file_id=None,
                error_file_id=None,
                error=f"the batch {record.batch_id} no longer exists",
            )
            return Collected(record.batch_id, "missing", {})
        counts = batch.request_counts
        completed = counts.completed if counts is not None else 0
        failed = counts.failed if counts is not None else 0
        if batch.status == "failed":
            errors = batch.errors.data if batch.errors is not None and batch.errors.data else []
            message = "; ".join(
                (f"line {e.line}: " if e.line is not None else "") + (e.message or "")
                for e in errors[:5]
            )
            message = message or "the batch failed without an error message"
            code = errors[0].code if errors else None
            store.finish_shard(
                record,
                state="failed",
                remote_status="failed",
                answers=(),
                completed=completed,
                failed=failed,
                output_file_id=None,
                error_file_id=batch.error_file_id,
                error=message,
            )
            return Collected(batch.id, "failed", {}, message, code)
        output = await self._download(batch.output_file_id)
        errors_text = await self._download(batch.error_file_id)
        parsed, bad = parse_output_lines(output)
        failed_lines, bad_errors = parse_output_lines(errors_text)
        known = set(store.shard_custom_ids(record.id))
        lines: dict[str, OutputLine] = {}
        anomalies: list[tuple[str | None, str]] = [(None, text) for text in bad + bad_errors]
        for line in (*parsed, *failed_lines):
            cid = line.custom_id
            if cid not in known:
                anomalies.append(
                    (
                        str(cid),
                        f"batch {batch.id} returned a line whose custom_id is not in its input; "
                        "it was not assigned to any request",
                    )
                )
                continue
            previous = lines.get(cid)
            if previous is not None:
                anomalies.append((cid, f"batch {batch.id} returned custom_id {cid} twice"))
                if is_success(previous):
                    continue
            lines[cid] = line
        for odd_id, detail in anomalies:
            logger.warning("anomaly in shard %s (custom_id %s): %s", record.id, odd_id, detail)
        store.finish_shard(
            record,
            state="downloaded",
            remote_status=batch.status,
            answers=[(cid, line.body) for cid, line in lines.items() if is_success(line)],
            completed=completed,
            failed=failed,
            output_file_id=batch.output_file_id,
            error_file_id=batch.error_file_id,
            anomalies=anomalies,
        )
        return Collected(batch.id, batch.status, lines)

    async def cancel(
        self, *, run_ids: Iterable[str] | None = None, batch_ids: Iterable[str] | None = None
    ) -> list[str]:
        """Cancel the remote batches of unfinished journal shards; return their batch ids.

        Only shards of ``run_ids`` (or with ``batch_ids``) when given, else every one.
        Shards journaled without a batch id are looked up remotely first. A cancelled
        shard stays pending: its partial output (paid lines) is collected later.
        """
        store = self.store
        runs = None if run_ids is None else set(run_ids)
        ids = None if batch_ids is None else set(batch_ids)
        records = [
            r
            for r in store.shards(states=(*UNSENT_STATES, *ATTACHED_STATES))
            if (runs is None or r.run_id in runs) and (ids is None or r.batch_id in ids)
        ]
        if ids is None:
            await self.resolve_unsent(records)
        cancelled: list[str] = []
        for record in store.shards(states=("created",)):
            if (runs is not None and record.run_id not in runs) or (
                ids is not None and record.batch_id not in ids
            ):
                continue
            assert record.batch_id is not None
            try:
                batch = await self.client.batches.cancel(record.batch_id)
            except openai.NotFoundError:
                store.mark_state(record.id, "failed", "the batch no longer exists")
                continue
            except openai.BadRequestError:
                batch = await self.client.batches.retrieve(record.batch_id)
                store.mark_remote(record.id, batch.status, 0, 0)
                continue
            store.mark_state(record.id, "cancelling", only_from=ATTACHED_STATES)
            store.mark_remote(record.id, batch.status, record.completed, record.failed)
            cancelled.append(record.batch_id)
        return cancelled

    async def resume(
        self, *, run_id: str | None = None, view: ProgressView = QUIET
    ) -> list[Collected]:
        """Collect every pending shard (of one run, if given) into the store."""
        pending = self.store.shards(run_id=run_id, states=(*UNSENT_STATES, *ATTACHED_STATES))
        await self.resolve_unsent(pending)
        attached = self.store.shards(run_id=run_id, states=ATTACHED_STATES)
        return list(await gather_tasks(self.collect(r, view) for r in attached))


async def gather_tasks(coros: Iterable[Coroutine[Any, Any, Any]]) -> list[Any]:
    """Run coroutines concurrently; on a failure the others are cancelled (no stray tasks)."""
    tasks: list[asyncio.Task[Any]] = []
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(c) for c in coros]
    except BaseExceptionGroup as failure:
        raise failure.exceptions[0] from None
    return [t.result() for t in tasks]
