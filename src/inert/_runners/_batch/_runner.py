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

import logging
import sys
import uuid
from collections.abc import Coroutine, Mapping, Sequence
from typing import Any, ClassVar, Literal

import openai
from openai.types import Batch
from returns.result import Failure, Success

from inert._engine import RawOutcome
from inert._errors import (
    ApiError,
    CancelledRequestError,
    ConnectionFailedError,
    ExpiredError,
    RequestError,
)
from inert._json import JSON
from inert._op import Op
from inert._pricing import BATCH_DISCOUNT, Price
from inert._report import ReportBuilder
from inert._runner import BaseRunner
from inert._runners._batch._journal import BatchJournal, gather_tasks
from inert._runners._batch._lines import (
    ENDPOINTS,
    MAX_BYTES_PER_BATCH,
    MAX_REQUESTS_PER_BATCH,
    MAX_USER_METADATA,
    ShardPlan,
    plan_shards,
)
from inert._runners._batch._output import Collected, error_fields, is_success, line_failure
from inert._runners._batch._progress import ProgressView
from inert._store import ATTACHED_STATES, ShardRecord, Store

logger = logging.getLogger("inert.batch")


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
        if len(user_metadata) > MAX_USER_METADATA or not all(
            type(k) is str and type(v) is str and len(k) <= 64 and len(v) <= 512
            for k, v in user_metadata.items()
        ):
            raise ValueError(
                f"metadata must be at most {MAX_USER_METADATA} pairs of strings (keys up to "
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
        with ProgressView(self._progress, round_number=report.rounds) as view:
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
                view.log(
                    f"re-attached batch {record.batch_id} of an earlier run ({len(mine)} lines)"
                )
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
            await gather_tasks(jobs)
        return outcomes

    async def _drive(
        self,
        ops: list[Op[Any]],
        attempt: int,
        record: ShardRecord | None,
        plan: ShardPlan | None,
        outcomes: dict[str, RawOutcome],
        report: ReportBuilder,
        view: ProgressView,
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
            view.log(
                f"resubmitted {len(retry)} lines of batch {collected.batch_id} "
                f"({collected.status}), attempt {attempt}"
            )
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
        if is_success(line):
            return False, Success(line.body)
        retryable, error = line_failure(line, collected.batch_id)
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

        endpoint = ENDPOINTS.get(plan.endpoint)
        if endpoint is None:
            fail_all(
                ApiError(
                    f"the Batch API does not serve {plan.endpoint}; it serves "
                    f"{', '.join(ENDPOINTS)}; run such requests with ImmediateRunner",
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
    message, code = error_fields(body)
    return ApiError(
        f"{what}: HTTP {exc.status_code}: {message or exc.message}",
        status=exc.status_code,
        code=code,
        body=body,
    )
