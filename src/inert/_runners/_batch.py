"""``BatchRunner``: each engine round becomes OpenAI Batch API jobs, journaled for resume.

One round (one ``_send`` call) goes through these steps, each journaled in the
:class:`~inert.Store` before or after its side effect:

1. ops already in the store are cache hits (``BaseRunner`` does that);
2. shards of earlier, interrupted runs that carry the same ops are re-attached:
   created ones are polled and downloaded; ones journaled without a batch id are
   looked up in ``batches.list`` by their metadata (run, shard, digest of custom ids);
3. the remaining ops are grouped by endpoint and model and sharded under the line
   and byte limits; for each shard: journal the intent, upload the JSONL, journal
   the file id, create the batch, journal the batch id;
4. every batch is polled with backoff; its output and error files are downloaded,
   lines are matched by ``custom_id``, and every answer is stored together with the
   journal update in one transaction;
5. lines that expired, were cancelled or failed with a retryable status are
   resubmitted alone (bounded attempts); every other failure becomes a typed
   :class:`~inert.RequestError` of its op.

A killed process leaves remote batches running and the journal consistent, so a
new runner on the same store collects them instead of paying again.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import uuid
from collections.abc import Coroutine, Iterable, Mapping, Sequence
from typing import Any, ClassVar, Final, Literal, NamedTuple

import openai
import pydantic_core
from openai.types import Batch
from returns.result import Failure, Success
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from inert._engine import RawOutcome
from inert._errors import (
    ApiError,
    CancelledRequestError,
    ConnectionFailedError,
    ExpiredError,
    RateLimitError,
    RequestError,
)
from inert._gc import paused_gc
from inert._json import JSON
from inert._op import Op
from inert._pricing import BATCH_DISCOUNT, Price
from inert._report import ReportBuilder
from inert._runner import BaseRunner
from inert._store import ATTACHED_STATES, UNSENT_STATES, ShardRecord, Store

logger = logging.getLogger("inert.batch")

MAX_REQUESTS_PER_BATCH: Final = 50_000
"""OpenAI's limit on lines per batch input file."""
MAX_BYTES_PER_BATCH: Final = 200 * 1024 * 1024
"""OpenAI's limit on the size of a batch input file."""
TERMINAL_STATUSES: Final = frozenset({"completed", "failed", "expired", "cancelled"})
_POLL_ERROR_LIMIT: Final = 20
_DOWNLOAD_ATTEMPTS: Final = 5
_LIST_SLACK_SECONDS: Final = 3600.0
_MAX_USER_METADATA: Final = 13  # OpenAI allows 16 pairs; inert adds three

BatchEndpoint = Literal[
    "/v1/responses",
    "/v1/chat/completions",
    "/v1/embeddings",
    "/v1/completions",
    "/v1/moderations",
]
_ENDPOINTS: Final[Mapping[str, BatchEndpoint]] = {
    "/v1/responses": "/v1/responses",
    "/v1/chat/completions": "/v1/chat/completions",
    "/v1/embeddings": "/v1/embeddings",
    "/v1/completions": "/v1/completions",
    "/v1/moderations": "/v1/moderations",
}

_TRANSIENT: Final = (openai.APIConnectionError, openai.InternalServerError, openai.RateLimitError)


# --- JSONL input: the hot path of a large round ------------------------------------------


class ShardPlan(NamedTuple):
    """The ops of one future batch and their JSONL lines (newline-terminated text)."""

    endpoint: str
    model: str | None
    ops: list[Op[Any]]
    lines: list[str]
    size: int

    def payload(self) -> bytes:
        """The input file's bytes."""
        return "".join(self.lines).encode("utf-8")


def jsonl_line(op: Op[Any], url_json: str | None = None) -> str:
    """One batch input line: ``{"custom_id": key, "method": "POST", "url": ..., "body": ...}``."""
    url = json.dumps(op.endpoint) if url_json is None else url_json
    return (
        '{"custom_id":"'
        + op.key
        + '","method":"POST","url":'
        + url
        + ',"body":'
        + op.canonical_body()
        + "}\n"
    )


def plan_shards(
    ops: Iterable[Op[Any]], *, max_requests: int, max_bytes: int
) -> tuple[list[ShardPlan], list[Op[Any]]]:
    """Group ops by endpoint and model and cut each group under both limits.

    Line sizes are counted in UTF-8 bytes (ASCII lines, the usual case, are measured
    without encoding them).

    Returns:
        the shards in order, and the ops whose single line is larger than
        ``max_bytes`` (they can never be sent as a batch line).
    """
    groups: dict[tuple[str, str | None], list[Op[Any]]] = {}
    for op in ops:
        groups.setdefault((op.endpoint, op.model), []).append(op)
    plans: list[ShardPlan] = []
    too_large: list[Op[Any]] = []
    for (endpoint, model), members in groups.items():
        head = '","method":"POST","url":' + json.dumps(endpoint) + ',"body":'
        cur_ops: list[Op[Any]] = []
        cur_lines: list[str] = []
        size = 0
        for op in members:
            # The body is the op's canonical text: the very bytes the immediate runner
            # posts, so the two modes cannot send different requests.
            line = '{"custom_id":"' + op.key + head + op.canonical_body() + "}\n"
            n = len(line) if line.isascii() else len(line.encode("utf-8"))
            if n > max_bytes:
                too_large.append(op)
                continue
            if cur_ops and (len(cur_ops) >= max_requests or size + n > max_bytes):
                plans.append(ShardPlan(endpoint, model, cur_ops, cur_lines, size))
                cur_ops, cur_lines, size = [], [], 0
            cur_ops.append(op)
            cur_lines.append(line)
            size += n
        if cur_ops:
            plans.append(ShardPlan(endpoint, model, cur_ops, cur_lines, size))
    return plans, too_large


# --- JSONL output -------------------------------------------------------------------------


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


def _is_success(line: OutputLine) -> bool:
    return line.status == 200 and line.error is None and isinstance(line.body, dict)


def _line_failure(line: OutputLine, batch_id: str) -> tuple[bool, RequestError]:
    """``(retryable, error)`` for a failed line."""
    if line.status is not None and line.status != 200:
        status = line.status
        message, code = _error_fields(line.body)
        text = f"batch {batch_id}: HTTP {status}: {message or 'no message'}"
        if status == 429:
            return True, RateLimitError(text, status=status, code=code, body=line.body)
        return status >= 500, ApiError(text, status=status, code=code, body=line.body)
    message, code = _error_fields({"error": line.error})
    if code == "batch_expired":
        return True, ExpiredError(f"batch {batch_id}: the line expired before it ran: {message}")
    if code == "batch_cancelled":
        return True, CancelledRequestError(f"batch {batch_id}: the line was cancelled: {message}")
    return False, ApiError(
        f"batch {batch_id}: the line failed: {message or 'no message'}",
        code=code,
        body=line.error,
    )


def _error_fields(body: JSON) -> tuple[str, str | None]:
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


# --- progress ---------------------------------------------------------------------------


class _ProgressView:
    """A rich progress display: one row per batch (status, requests done of total)."""

    def __init__(self, enabled: bool) -> None:
        self._progress: Progress | None = None
        if enabled:
            self._progress = Progress(
                TextColumn("{task.description}"),
                TextColumn("{task.fields[status]:<11}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("failed {task.fields[failed]}"),
                TimeElapsedColumn(),
                console=Console(stderr=True),
            )
        self._tasks: dict[str, TaskID] = {}

    def __enter__(self) -> _ProgressView:
        if self._progress is not None:
            self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()

    def show(self, record: ShardRecord, batch: Batch) -> None:
        progress = self._progress
        if progress is None:
            return
        counts = batch.request_counts
        total = counts.total if counts is not None else record.size
        completed = counts.completed if counts is not None else 0
        failed = counts.failed if counts is not None else 0
        task = self._tasks.get(batch.id)
        if task is None:
            label = f"{batch.id} (shard {record.shard}, attempt {record.attempt})"
            task = progress.add_task(label, total=total or None, status=batch.status, failed=0)
            self._tasks[batch.id] = task
        progress.update(
            task,
            total=total or None,
            completed=completed + failed,
            status=batch.status,
            failed=failed,
        )


_QUIET: Final = _ProgressView(False)


# --- the journaled batch client (shared by the runner and the CLI) -------------------------


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

    async def poll(self, record: ShardRecord, view: _ProgressView = _QUIET) -> Batch | None:
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
            except _TRANSIENT as exc:
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
            except _TRANSIENT:
                if attempt == _DOWNLOAD_ATTEMPTS - 1:
                    raise
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.poll_interval_max)
        raise AssertionError("unreachable")  # pragma: no cover

    async def collect(self, record: ShardRecord, view: _ProgressView = _QUIET) -> Collected:
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
                if _is_success(previous):
                    continue
            lines[cid] = line
        for odd_id, detail in anomalies:
            logger.warning("anomaly in shard %s (custom_id %s): %s", record.id, odd_id, detail)
        store.finish_shard(
            record,
            state="downloaded",
            remote_status=batch.status,
            answers=[(cid, line.body) for cid, line in lines.items() if _is_success(line)],
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
        self, *, run_id: str | None = None, view: _ProgressView = _QUIET
    ) -> list[Collected]:
        """Collect every pending shard (of one run, if given) into the store."""
        pending = self.store.shards(run_id=run_id, states=(*UNSENT_STATES, *ATTACHED_STATES))
        await self.resolve_unsent(pending)
        attached = self.store.shards(run_id=run_id, states=ATTACHED_STATES)
        return list(await _all(self.collect(r, view) for r in attached))


async def _all(coros: Iterable[Coroutine[Any, Any, Any]]) -> list[Any]:
    """Run coroutines concurrently; on a failure the others are cancelled (no stray tasks)."""
    tasks: list[asyncio.Task[Any]] = []
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(c) for c in coros]
    except BaseExceptionGroup as failure:
        raise failure.exceptions[0] from None
    return [t.result() for t in tasks]


# --- the runner -------------------------------------------------------------------------


def _positive(name: str, value: float) -> None:
    # type() rather than isinstance: callers without a type checker pass anything.
    if type(value) not in (int, float) or not value > 0:
        raise ValueError(f"{name} must be a positive number; got {value!r}")


def _positive_int(name: str, value: int, limit: int) -> None:
    if type(value) is not int or not 1 <= value <= limit:
        raise ValueError(f"{name} must be an integer from 1 to {limit:,}; got {value!r}")


class BatchRunner(BaseRunner):
    """Runs requests through the OpenAI Batch API: half price, one batch round per level.

    Every step is journaled in ``store`` so that a killed process can be resumed by
    running the same requests again with a new runner on the same store: answers
    already stored are cache hits, batches already submitted are re-attached, and
    only what is found nowhere is submitted.

    Args:
        client: the SDK client (``openai.AsyncOpenAI``); its key is never stored.
        store: the :class:`~inert.Store` for answers and the batch journal.
        poll_interval: seconds between the first status polls; grows by half each
            poll up to ``poll_interval_max``.
        poll_interval_max: the longest wait between two polls.
        max_requests_per_batch: lines per batch input file (OpenAI allows 50,000).
        max_bytes_per_batch: bytes per batch input file (OpenAI allows 200 MB).
        max_attempts: submissions of a line that expires, is cancelled or fails with
            a retryable status (429, 5xx) before its error is final.
        completion_window: the batch completion window; OpenAI accepts only ``"24h"``.
        progress: show a progress display on stderr; ``None`` shows it on a terminal.
        metadata: extra metadata for every batch (up to 13 string pairs).
        prices: the price table for cost estimates (the batch discount is applied).
    """

    pipelined = False
    price_factor: ClassVar[float] = BATCH_DISCOUNT
    stores_itself: ClassVar[bool] = True

    def __init__(
        self,
        client: openai.AsyncOpenAI,
        *,
        store: Store,
        poll_interval: float = 5.0,
        poll_interval_max: float = 60.0,
        max_requests_per_batch: int = MAX_REQUESTS_PER_BATCH,
        max_bytes_per_batch: int = MAX_BYTES_PER_BATCH,
        max_attempts: int = 3,
        completion_window: Literal["24h"] = "24h",
        progress: bool | None = None,
        metadata: Mapping[str, str] | None = None,
        prices: Mapping[str, Price] | None = None,
    ) -> None:
        if not isinstance(client, openai.AsyncOpenAI):
            hint = (
                " (a synchronous openai.OpenAI; pass openai.AsyncOpenAI(...) instead)"
                if isinstance(client, openai.OpenAI)
                else ""
            )
            raise TypeError(
                f"BatchRunner needs an openai.AsyncOpenAI client; got {type(client).__name__}{hint}"
            )
        if not isinstance(store, Store):
            raise TypeError(
                f"BatchRunner needs store=Store(path) for its journal; got {type(store).__name__}"
            )
        _positive("poll_interval", poll_interval)
        _positive("poll_interval_max", poll_interval_max)
        if poll_interval_max < poll_interval:
            raise ValueError(
                f"poll_interval_max ({poll_interval_max!r}) must be at least poll_interval "
                f"({poll_interval!r})"
            )
        _positive_int("max_requests_per_batch", max_requests_per_batch, MAX_REQUESTS_PER_BATCH)
        _positive_int("max_bytes_per_batch", max_bytes_per_batch, MAX_BYTES_PER_BATCH)
        _positive_int("max_attempts", max_attempts, 100)
        if completion_window != "24h":
            raise ValueError(
                f"completion_window must be '24h' (the only window OpenAI accepts); "
                f"got {completion_window!r}"
            )
        user_metadata = dict(metadata or {})
        if len(user_metadata) > _MAX_USER_METADATA or not all(
            type(k) is str and type(v) is str and len(k) <= 64 and len(v) <= 512
            for k, v in user_metadata.items()
        ):
            raise ValueError(
                f"metadata must be at most {_MAX_USER_METADATA} pairs of strings (keys up to "
                "64 characters, values up to 512); inert adds three pairs of its own"
            )
        reserved = [k for k in user_metadata if k.startswith("inert_")]
        if reserved:
            raise ValueError(f"metadata keys starting with 'inert_' are reserved: {reserved}")
        super().__init__(store=store, prices=prices)
        self._client = client
        self._journal = BatchJournal(
            client, store, poll_interval=poll_interval, poll_interval_max=poll_interval_max
        )
        self._batch_store = store
        self._max_requests = max_requests_per_batch
        self._max_bytes = max_bytes_per_batch
        self._max_attempts = max_attempts
        self._progress = sys.stderr.isatty() if progress is None else progress
        self._metadata = user_metadata
        self._run_id: str | None = None
        self._run_ids: list[str] = []
        self._cancel_requested = False

    def __repr__(self) -> str:
        return f"BatchRunner(store={self._batch_store!r})"

    @property
    def store(self) -> Store:
        """The store holding this runner's answers and journal."""
        return self._batch_store

    @property
    def run_id(self) -> str | None:
        """The journal id of the current (or last) run, once it submitted anything."""
        return self._run_id

    def _begin_run(self) -> None:
        self._run_id = None
        self._cancel_requested = False

    def _ensure_run(self) -> str:
        if self._run_id is None:
            self._run_id = f"run_{uuid.uuid4().hex[:20]}"
            self._run_ids.append(self._run_id)
            self._batch_store.begin_run(self._run_id, self._metadata)
        return self._run_id

    async def cancel(self) -> list[str]:
        """Cancel the remote batches of this runner's runs that have not finished.

        Lines cancelled this way are not resubmitted; they fail with
        :class:`~inert.errors.CancelledRequestError`. Lines completed before the
        cancellation are still downloaded and stored. Returns the cancelled batch ids.
        """
        self._cancel_requested = True
        if not self._run_ids:
            return []
        return await self._journal.cancel(run_ids=self._run_ids)

    async def cancel_all(self) -> list[str]:
        """Cancel every unfinished batch of the store's journal (any run, any process)."""
        self._cancel_requested = True
        return await self._journal.cancel()

    async def _send(
        self, ops: Sequence[Op[Any]], report: ReportBuilder
    ) -> Mapping[str, RawOutcome]:
        store = self._batch_store
        wanted: dict[str, Op[Any]] = {op.key: op for op in ops}
        outcomes: dict[str, RawOutcome] = {}
        with _ProgressView(self._progress) as view:
            pending = store.pending_shards_for(wanted)
            await self._journal.resolve_unsent(pending)
            jobs: list[Coroutine[Any, Any, None]] = []
            claimed: set[str] = set()
            for record in pending:
                record = store.shard(record.id)
                if record.state not in ATTACHED_STATES:
                    continue
                mine = [
                    wanted[cid]
                    for cid in store.shard_custom_ids(record.id)
                    if cid in wanted and cid not in claimed
                ]
                claimed.update(op.key for op in mine)
                jobs.append(self._drive(mine, record.attempt, record, None, outcomes, report, view))
            fresh = [op for op in ops if op.key not in claimed]
            plans, too_large = plan_shards(
                fresh, max_requests=self._max_requests, max_bytes=self._max_bytes
            )
            for op in too_large:
                outcomes[op.key] = Failure(
                    ApiError(
                        f"the batch line of {op!r} is larger than max_bytes_per_batch "
                        f"({self._max_bytes:,} bytes); raise the limit or shorten the request",
                        code="line_too_large",
                    )
                )
            for plan in plans:
                jobs.append(self._drive(plan.ops, 1, None, plan, outcomes, report, view))
            await _all(jobs)
        return outcomes

    async def _drive(
        self,
        ops: list[Op[Any]],
        attempt: int,
        record: ShardRecord | None,
        plan: ShardPlan | None,
        outcomes: dict[str, RawOutcome],
        report: ReportBuilder,
        view: _ProgressView,
    ) -> None:
        """Carry one shard through submission, collection and resubmissions."""
        current = ops
        while True:
            if record is None:
                assert plan is not None
                record = await self._submit(plan, attempt, outcomes, report)
                if record is None:
                    return
            try:
                collected = await self._journal.collect(record, view)
            except openai.OpenAIError as exc:
                for op in current:
                    outcomes[op.key] = Failure(
                        ConnectionFailedError(
                            f"could not collect batch {record.batch_id}: {exc}; it stays in the "
                            f"journal of {self._batch_store.path}: run again (or `inert batches "
                            "resume`) to collect it"
                        )
                    )
                return
            retry: list[Op[Any]] = []
            final = attempt >= self._max_attempts or self._cancel_requested
            for op in current:
                retryable, outcome = self._outcome(op, collected)
                if retryable and not final:
                    retry.append(op)
                else:
                    outcomes[op.key] = outcome
            if not retry:
                return
            report.retries += len(retry)
            attempt += 1
            logger.info("resubmitting %d lines of batch %s", len(retry), collected.batch_id)
            plans, _ = plan_shards(
                retry, max_requests=self._max_requests, max_bytes=self._max_bytes
            )
            if len(plans) != 1:  # pragma: no cover - retries are a subset of one shard
                raise AssertionError("resubmitted lines must fit one shard")
            plan, current, record = plans[0], retry, None

    def _outcome(self, op: Op[Any], collected: Collected) -> tuple[bool, RawOutcome]:
        """``(retryable, outcome)`` of one op in a collected batch."""
        if collected.status == "failed":
            return False, Failure(
                ApiError(
                    f"batch {collected.batch_id} failed: {collected.batch_error}",
                    code=collected.batch_error_code,
                )
            )
        line = collected.lines.get(op.key)
        if line is None:
            if collected.status == "expired":
                return True, Failure(
                    ExpiredError(f"batch {collected.batch_id} expired before this line ran")
                )
            if collected.status == "cancelled":
                return True, Failure(
                    CancelledRequestError(
                        f"batch {collected.batch_id} was cancelled before this line ran"
                    )
                )
            return True, Failure(
                ApiError(
                    f"batch {collected.batch_id} ({collected.status}) returned no line for "
                    f"{op!r} in its output or error file",
                    code="missing_line",
                )
            )
        if _is_success(line):
            return False, Success(line.body)
        retryable, error = _line_failure(line, collected.batch_id)
        return retryable, Failure(error)

    async def _submit(
        self,
        plan: ShardPlan,
        attempt: int,
        outcomes: dict[str, RawOutcome],
        report: ReportBuilder,
    ) -> ShardRecord | None:
        """Journal, upload and create one batch; None when it could not be created."""
        store = self._batch_store
        run_id = self._ensure_run()

        def fail_all(error: RequestError) -> None:
            for op in plan.ops:
                outcomes[op.key] = Failure(error)

        endpoint = _ENDPOINTS.get(plan.endpoint)
        if endpoint is None:
            fail_all(
                ApiError(
                    f"the Batch API does not serve {plan.endpoint}; it serves "
                    f"{', '.join(_ENDPOINTS)}; run such requests with ImmediateRunner",
                    code="unsupported_endpoint",
                )
            )
            return None
        index = store.next_shard_index(run_id)
        record = store.intend_shard(
            run_id=run_id,
            shard=index,
            attempt=attempt,
            endpoint=plan.endpoint,
            model=plan.model,
            custom_ids=[op.key for op in plan.ops],
        )
        if self._cancel_requested:
            store.mark_state(record.id, "abandoned", "the run was cancelled before upload")
            fail_all(CancelledRequestError("the run was cancelled before this line was submitted"))
            return None
        try:
            uploaded = await self._client.files.create(
                file=(f"inert-{run_id}-{index}.jsonl", plan.payload()), purpose="batch"
            )
        except openai.APIStatusError as exc:
            store.mark_state(record.id, "failed", f"upload refused: {exc}")
            fail_all(_api_error("uploading the batch input file failed", exc))
            return None
        except openai.APIConnectionError as exc:
            store.mark_state(record.id, "failed", f"upload failed: {exc}")
            fail_all(ConnectionFailedError(f"uploading the batch input file failed: {exc}"))
            return None
        record = store.mark_uploaded(record.id, uploaded.id)
        if self._cancel_requested:
            store.mark_state(record.id, "abandoned", "the run was cancelled before create")
            fail_all(CancelledRequestError("the run was cancelled before this line was submitted"))
            return None
        metadata = {
            **self._metadata,
            "inert_run": run_id,
            "inert_shard": str(index),
            "inert_digest": record.digest,
        }
        try:
            batch = await self._client.batches.create(
                input_file_id=uploaded.id,
                endpoint=endpoint,
                completion_window="24h",
                metadata=metadata,
            )
        except (openai.APIStatusError, openai.APIConnectionError) as exc:
            definite = isinstance(exc, openai.APIStatusError) and not isinstance(
                exc, openai.InternalServerError | openai.RateLimitError
            )
            found: Batch | None = None
            if not definite:
                # The create may have happened even though its answer was lost.
                try:
                    found = (await self._journal.find_remote([record])).get(record.id)
                except openai.OpenAIError:
                    found = None
            if found is None:
                if isinstance(exc, openai.APIStatusError) and definite:
                    store.mark_state(record.id, "failed", f"create refused: {exc}")
                    fail_all(_api_error("creating the batch failed", exc))
                else:
                    # Left 'uploaded': a later run looks for the batch again before resubmitting.
                    fail_all(
                        ConnectionFailedError(
                            f"creating the batch failed ({exc}); the shard stays journaled and a "
                            "rerun checks whether the batch exists before submitting again"
                        )
                    )
                return None
            batch = found
        record = store.mark_created(record.id, batch.id, batch.status)
        report.batches_created += 1
        return record


def _api_error(what: str, exc: openai.APIStatusError) -> ApiError:
    body: JSON = None
    try:
        body = exc.response.json()
    except ValueError:
        body = None
    message, code = _error_fields(body)
    return ApiError(
        f"{what}: HTTP {exc.status_code}: {message or exc.message}",
        status=exc.status_code,
        code=code,
        body=body,
    )
