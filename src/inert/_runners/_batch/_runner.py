"""``BatchRunner``: each engine round becomes batch jobs, journaled for resume.

Each provider's ops go through that provider's batch API (OpenAI's Batch API,
Anthropic's Message Batches; :mod:`._remote`), in parallel, by the same steps.

One round (one ``_send`` call) goes through these steps, each journaled in the
:class:`~inert.Store` before or after its side effect:

1. ops already in the store are cache hits (``BaseRunner`` does that);
2. shards of earlier, interrupted runs that carry the same ops are re-attached:
   created ones are polled and downloaded; ones journaled without a batch id are
   looked up in ``batches.list`` by their metadata (run, shard, digest of custom ids);
   lines of shards whose output expired are submitted again;
3. the remaining ops are grouped by endpoint and model and sharded under the line,
   byte and known enqueued-token limits; for each shard, once the model's queue has
   room: journal the intent, upload the JSONL, journal the file id, create the batch
   (at most one: a lost answer is looked up before any retry), journal the batch id;
4. every batch is polled with backoff; its output and error files are downloaded,
   checked against its counts, lines are matched by ``custom_id``, and every answer
   is stored together with the journal update in one transaction;
5. lines that expired, were cancelled by the window, failed with a retryable status
   or whose output file expired are resubmitted while the attempts make progress; a
   batch refused for the enqueued-token limit is resubmitted once the model's queue
   drains; every other failure becomes a typed :class:`~inert.RequestError` of its
   op. A cancellation — by this runner, by ``inert batches cancel`` in any process,
   or at the server — stops: answered lines are kept, unrun lines fail with
   :class:`~inert.errors.CancelledRequestError`, nothing is resubmitted.

A killed process leaves remote batches running and the journal consistent, so a
new runner on the same store collects them instead of paying again.
"""

from __future__ import annotations

import logging
import sys
import uuid
from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Final, Literal

import attrs
from returns.result import Failure, Success

from inert._answers import rejected_by_decoder
from inert._engine import RawOutcome
from inert._errors import (
    ApiError,
    CancelledRequestError,
    ConnectionFailedError,
    ExpiredError,
    RateLimitError,
    RequestError,
)
from inert._json import JSON
from inert._op import Op
from inert._pricing import BATCH_DISCOUNT, Price
from inert._providers import PROVIDERS, check_clients, clients_of
from inert._report import ReportBuilder
from inert._runner import BaseRunner
from inert._runners._batch._capacity import REFUSALS_ALONE_LIMIT, Capacity, limits_of
from inert._runners._batch._http import CallFailed
from inert._runners._batch._journal import CANCEL_STATUSES, BatchJournal, gather_tasks
from inert._runners._batch._lines import (
    MAX_BYTES_PER_BATCH,
    MAX_REQUESTS_PER_BATCH,
    MAX_USER_METADATA,
    ShardPlan,
    plan_shards,
)
from inert._runners._batch._output import Collected, is_success, line_failure
from inert._runners._batch._progress import ProgressView
from inert._store import ATTACHED_STATES, LOST_STATE, UNSENT_STATES, ShardRecord, Store

if TYPE_CHECKING:
    from anthropic import AsyncAnthropic
    from openai import AsyncOpenAI

logger = logging.getLogger("inert.batch")

DEFAULT_MAX_ATTEMPTS: Final = 10
"""Submissions of a line at most (with 30% of lines expiring at every attempt, 200
lines all get answered with a chance of about 1 in 800 of one line running out)."""
STALL_LINES: Final = 8
"""Resubmission ends once the attempts since the last answered line carried this many
lines without answering one (an attempt of 8 lines or more that answers none ends it
at once; a lone line gets up to 8 tries)."""


def _positive(name: str, value: float) -> None:
    # type() rather than isinstance: callers without a type checker pass anything.
    if type(value) not in (int, float) or not value > 0:
        raise ValueError(f"{name} must be a positive number; got {value!r}")


def _positive_int(name: str, value: int, limit: int) -> None:
    if type(value) is not int or not 1 <= value <= limit:
        raise ValueError(f"{name} must be an integer from 1 to {limit:,}; got {value!r}")


def amended(error: RequestError, note: str) -> RequestError:
    """The same failure with ``note`` appended to its message (status, code, body kept)."""
    message = f"{error.message}; {note}"
    if isinstance(error, RateLimitError):
        return RateLimitError(message, status=error.status, code=error.code, body=error.body)
    if isinstance(error, ApiError):
        return ApiError(message, status=error.status, code=error.code, body=error.body)
    if isinstance(error, ConnectionFailedError):
        return ConnectionFailedError(message)
    return RequestError(message)


def _keeper(ops: Sequence[Op[Any]]) -> Callable[[str, JSON], bool]:
    """Whether an answer may be stored: not when its op's decoder rejects it as no answer."""
    by_key = {op.key: op for op in ops}

    def keep(cid: str, body: JSON) -> bool:
        op = by_key.get(cid)
        return op is None or rejected_by_decoder(op, body) is None

    return keep


@attrs.define
class _Round:
    """What the shards of one round share: where outcomes go, the report, the queue."""

    outcomes: dict[str, RawOutcome]
    report: ReportBuilder
    view: ProgressView
    capacity: Capacity

    def fail(self, ops: Sequence[Op[Any]], error: RequestError) -> None:
        failure: RawOutcome = Failure(error)
        for op in ops:
            self.outcomes[op.key] = failure


class BatchRunner(BaseRunner):
    """Runs requests through the providers' batch APIs: half price, one batch round per level.

    Each op goes to the batch API of its provider (its endpoint says which:
    Anthropic's ``/v1/messages`` goes to Message Batches, every other to OpenAI's
    Batch API); the shards of one round, of every provider, run in parallel. A run
    whose ops need a provider the runner has no client for fails at once, before
    anything is sent, with a :class:`~inert.errors.MissingClientError`.

    Every step is journaled in ``store`` so that a killed process can be resumed by
    running the same requests again with a new runner on the same store: answers
    already stored are cache hits, batches already submitted are re-attached, and
    only what is found nowhere is submitted.

    Args:
        client: the SDK client (``openai.AsyncOpenAI``); its key is never stored. The
            runner's calls to the files and batches endpoints go without the SDK's
            retries (which could create a batch twice) and are retried by the runner.
            The same as ``openai=``.
        openai: the OpenAI client, given by name.
        anthropic: an ``anthropic.AsyncAnthropic`` for Message Batches of the
            ``inert.anthropic`` builders' requests, used the same way.
        store: the :class:`~inert.Store` for answers and the batch journal.
        poll_interval: seconds between the first status polls; grows by half each
            poll up to ``poll_interval_max``. Retried calls and waits for queue
            capacity are paced by the same two settings.
        poll_interval_max: the longest wait between two polls.
        max_requests_per_batch: lines per batch input file (OpenAI allows 50,000).
        max_bytes_per_batch: bytes per batch input file (OpenAI allows 200 MB).
        max_attempts: submissions of a line at most. Lines that expire, are
            cancelled by the window, fail with 408/429/5xx or whose output file
            expired are resubmitted while attempts make progress (see ``STALL_LINES``).
        enqueued_token_limit: the organisation's enqueued-token limit of the Batch API,
            for every model (an int) or per model (a mapping); shards are sized and
            submitted to stay under it. Without it, the server's
            ``token_limit_exceeded`` still only delays a shard.
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
        client: AsyncOpenAI | None = None,
        *,
        openai: AsyncOpenAI | None = None,
        anthropic: AsyncAnthropic | None = None,
        store: Store,
        poll_interval: float = 5.0,
        poll_interval_max: float = 60.0,
        max_requests_per_batch: int = MAX_REQUESTS_PER_BATCH,
        max_bytes_per_batch: int = MAX_BYTES_PER_BATCH,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        enqueued_token_limit: int | Mapping[str, int] | None = None,
        completion_window: Literal["24h"] = "24h",
        progress: bool | None = None,
        metadata: Mapping[str, str] | None = None,
        prices: Mapping[str, Price] | None = None,
    ) -> None:
        gpt, claude = clients_of("BatchRunner", client, openai, anthropic)
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
        limits = limits_of(enqueued_token_limit)
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
        self._journal = BatchJournal(
            gpt,
            store,
            anthropic=claude,
            poll_interval=poll_interval,
            poll_interval_max=poll_interval_max,
        )
        self._batch_store = store
        self._poll_interval = poll_interval
        self._poll_interval_max = poll_interval_max
        self._max_requests = max_requests_per_batch
        self._max_bytes = max_bytes_per_batch
        self._max_attempts = max_attempts
        self._limits = limits
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

    def _stop_requested(self) -> bool:
        """Whether this run was asked to stop: by :meth:`cancel` or, in the journal, by anyone."""
        if self._cancel_requested:
            return True
        run_id = self._run_id
        return run_id is not None and self._batch_store.cancel_requested(run_id)

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

    # --- one round --------------------------------------------------------------------

    async def _send(
        self, ops: Sequence[Op[Any]], report: ReportBuilder
    ) -> Mapping[str, RawOutcome]:
        if len(self._journal.remotes) < len(PROVIDERS):
            # Before anything of the round is sent (the engine's rounds call no check).
            check_clients("BatchRunner", {op.endpoint for op in ops}, self._journal.remotes)
        store = self._batch_store
        wanted: dict[str, Op[Any]] = {op.key: op for op in ops}
        capacity = Capacity(
            self._limits, first_wait=self._poll_interval, max_wait=self._poll_interval_max
        )
        with ProgressView(self._progress, round_number=report.rounds) as view:
            rnd = _Round({}, report, view, capacity)
            jobs: list[Coroutine[Any, Any, None]] = []
            claimed: set[str] = set()
            pending = store.pending_shards_for(wanted)
            for record in pending:
                if record.state == LOST_STATE:
                    # Its answers are gone: its unanswered lines go out again as fresh ops.
                    store.transition(
                        record.id,
                        (LOST_STATE,),
                        "abandoned",
                        error=f"{record.error}; its unanswered lines were submitted again",
                    )
            unsent = [r for r in pending if r.state in UNSENT_STATES]
            try:
                await self._journal.resolve_unsent(unsent)
            except CallFailed as failure:
                # Whether their batches exist is unknown: submitting again could pay twice.
                error = amended(
                    failure.error,
                    "the batches of earlier shards carrying these requests could not be "
                    "looked up, so nothing was submitted for them; run again",
                )
                for record in unsent:
                    mine = self._unclaimed(record, wanted, claimed)
                    rnd.fail(mine, error)
            for record in pending:
                record = store.shard(record.id)
                if record.state not in ATTACHED_STATES:
                    continue
                known = store.shard_custom_ids(record.id)
                mine = [wanted[cid] for cid in known if cid in wanted and cid not in claimed]
                claimed.update(op.key for op in mine)
                capacity.hold(record.model, record.tokens)
                view.log(
                    f"re-attached batch {record.batch_id} of an earlier run ({len(mine)} lines)"
                )
                jobs.append(
                    self._drive(rnd, mine, record.attempt, record=record, known=known, adopted=True)
                )
            fresh = [op for op in ops if op.key not in claimed and op.key not in rnd.outcomes]
            plans, too_large = self._plan(fresh, capacity)
            for op in too_large:
                rnd.fail(
                    [op],
                    ApiError(
                        f"the batch line of {op!r} is larger than max_bytes_per_batch "
                        f"({self._max_bytes:,} bytes); raise the limit or shorten the request",
                        code="line_too_large",
                    ),
                )
            for plan in plans:
                jobs.append(self._drive(rnd, plan.ops, 1, plan=plan))
            await gather_tasks(jobs)
        return rnd.outcomes

    def _unclaimed(
        self, record: ShardRecord, wanted: Mapping[str, Op[Any]], claimed: set[str]
    ) -> list[Op[Any]]:
        mine = [
            wanted[cid]
            for cid in self._batch_store.shard_custom_ids(record.id)
            if cid in wanted and cid not in claimed
        ]
        claimed.update(op.key for op in mine)
        return mine

    def _plan(
        self, ops: Sequence[Op[Any]], capacity: Capacity, *, max_requests: int | None = None
    ) -> tuple[list[ShardPlan], list[Op[Any]]]:
        return plan_shards(
            ops,
            max_requests=self._max_requests if max_requests is None else max_requests,
            max_bytes=self._max_bytes,
            max_tokens=capacity.limit_for,
        )

    # --- one shard and its resubmissions ----------------------------------------------

    async def _drive(
        self,
        rnd: _Round,
        ops: list[Op[Any]],
        attempt: int,
        *,
        plan: ShardPlan | None = None,
        record: ShardRecord | None = None,
        known: Sequence[str] | None = None,
        adopted: bool = False,
        parent_id: int | None = None,
        stalled: int = 0,
        refusals: int = 0,
    ) -> None:
        """Carry one shard through submission, collection and its resubmissions."""
        while True:
            if record is None:
                assert plan is not None
                if self._stop_requested():
                    rnd.fail(
                        ops,
                        CancelledRequestError(
                            "the run was cancelled before this line was submitted"
                        ),
                    )
                    return
                await rnd.capacity.acquire(plan.model, plan.tokens)
                try:
                    made = await self._submit(plan, attempt, parent_id, rnd.report)
                except BaseException:
                    await rnd.capacity.release(plan.model, plan.tokens)
                    raise
                if isinstance(made, RequestError):
                    await rnd.capacity.release(plan.model, plan.tokens)
                    rnd.fail(ops, made)
                    return
                record, known, adopted = made, [op.key for op in plan.ops], False
            try:
                collected = await self._journal.collect(
                    record,
                    rnd.view,
                    known=known,
                    adopted=adopted,
                    should_cancel=self._stop_requested,
                    keep=_keeper(ops),
                )
            except CallFailed as failure:
                rnd.fail(
                    ops,
                    amended(
                        failure.error,
                        f"could not collect batch {record.batch_id}; it stays in the journal "
                        f"of {self._batch_store.path}: run again (or `inert batches resume`) "
                        "to collect it",
                    ),
                )
                return
            finally:
                await rnd.capacity.release(record.model, record.tokens)
            if (
                collected.status == "failed"
                and collected.batch_error_code == "token_limit_exceeded"
            ):
                if self._stop_requested():
                    rnd.fail(
                        ops,
                        CancelledRequestError("the run was cancelled while waiting for capacity"),
                    )
                    return
                alone = rnd.capacity.queued(record.model) == 0
                refusals = refusals + 1 if alone else 0
                if refusals > REFUSALS_ALONE_LIMIT:
                    rnd.fail(
                        ops,
                        ApiError(
                            f"batch {collected.batch_id} was refused for the enqueued-token limit "
                            f"of {record.model} {refusals} times with nothing of this run "
                            "queued: the queue is held by other work, or these lines alone "
                            "exceed the limit; wait and run again, or raise the limit",
                            code="token_limit_exceeded",
                        ),
                    )
                    return
                logger.info(
                    "batch %s was refused for the enqueued-token limit; waiting for capacity",
                    collected.batch_id,
                )
                rnd.view.log(
                    f"batch {collected.batch_id} refused for the enqueued-token limit of "
                    f"{record.model}; waiting for the queue, then submitting its {len(ops)} "
                    "lines again"
                )
                await rnd.capacity.after_refusal(record.model, refusals)
                halves = (len(ops) + 1) // 2 if alone and len(ops) > 1 else None
                plans, _ = self._plan(ops, rnd.capacity, max_requests=halves)
                parent_id = record.id
                if len(plans) > 1:
                    await gather_tasks(
                        self._drive(
                            rnd, p.ops, attempt, plan=p, parent_id=parent_id, refusals=refusals
                        )
                        for p in plans
                    )
                    return
                plan, ops, record = plans[0], plans[0].ops, None
                continue
            refusals = 0
            stop = collected.cancel == "during" or self._stop_requested()
            retry: list[tuple[Op[Any], RawOutcome]] = []
            answered = 0
            for op in ops:
                retryable, outcome = self._outcome(op, collected, stop)
                if isinstance(outcome, Success):
                    answered += 1
                if retryable and not stop:
                    retry.append((op, outcome))
                else:
                    rnd.outcomes[op.key] = outcome
            if not retry:
                return
            if answered:
                stalled = 0
            elif collected.cancel != "before" and collected.status not in ("lost", "missing"):
                # Only an attempt that ran and answered nothing says the lines do not go
                # through; one cancelled before this run, or whose output expired, does not.
                stalled += len(ops)
            if attempt >= self._max_attempts or stalled >= STALL_LINES:
                for op, outcome in retry:
                    rnd.outcomes[op.key] = outcome
                return
            rnd.report.retries += len(retry)
            attempt += 1
            logger.info("resubmitting %d lines of batch %s", len(retry), collected.batch_id)
            rnd.view.log(
                f"resubmitted {len(retry)} lines of batch {collected.batch_id} "
                f"({collected.status}), attempt {attempt}"
            )
            plans, _ = self._plan([op for op, _ in retry], rnd.capacity)
            parent_id = record.id
            if collected.status == "lost":
                self._batch_store.transition(
                    record.id,
                    (LOST_STATE,),
                    "abandoned",
                    error="its output or error file expired before it was downloaded; its "
                    "unanswered lines were submitted again",
                )
            if len(plans) > 1:
                await gather_tasks(
                    self._drive(rnd, p.ops, attempt, plan=p, parent_id=parent_id, stalled=stalled)
                    for p in plans
                )
                return
            plan, ops, record = plans[0], plans[0].ops, None

    def _outcome(self, op: Op[Any], collected: Collected, stop: bool) -> tuple[bool, RawOutcome]:
        """``(retryable, outcome)`` of one op in a collected batch."""
        batch_id = collected.batch_id
        if collected.status == "failed":
            return False, Failure(
                ApiError(
                    f"batch {batch_id} failed: {collected.batch_error}",
                    code=collected.batch_error_code,
                )
            )
        if op.key in collected.conflicts:
            return False, Failure(
                ApiError(
                    f"batch {batch_id} returned two different lines for {op!r}; neither was "
                    "stored (`inert batches show` lists the anomaly); run again to ask anew",
                    code="conflicting_lines",
                )
            )
        line = collected.lines.get(op.key)
        if line is not None:
            if is_success(line):
                return False, Success(line.body)
            retryable, error = line_failure(line, batch_id)
            if stop and isinstance(error, CancelledRequestError):
                return False, Failure(error)
            return retryable, Failure(error)
        if collected.incomplete is not None:
            return False, Failure(ApiError(collected.incomplete, code="incomplete_output"))
        if collected.status == "missing":
            # The server does not know the batch (404: another project or another server
            # than the one that made it): it cannot be collected, so its lines go again.
            return True, Failure(
                ApiError(
                    f"the batch {batch_id} no longer exists, and every resubmission of this "
                    "line failed too",
                    code="batch_missing",
                )
            )
        if collected.status == "lost":
            return True, Failure(
                ApiError(
                    f"the output of batch {batch_id} expired before it was downloaded, and "
                    "every resubmission of this line failed too",
                    code="output_expired",
                )
            )
        if stop or collected.cancel == "during":
            return False, Failure(
                CancelledRequestError(f"batch {batch_id} was cancelled before this line ran")
            )
        if collected.status in CANCEL_STATUSES:
            # Cancelled before this run found it: running the requests again asks anew.
            return True, Failure(
                CancelledRequestError(f"batch {batch_id} was cancelled before this line ran")
            )
        if collected.status == "expired":
            return True, Failure(ExpiredError(f"batch {batch_id} expired before this line ran"))
        return not collected.doubtful, Failure(
            ApiError(
                f"batch {batch_id} ({collected.status}) returned no line for {op!r} in its "
                "output or error file",
                code="missing_line",
            )
        )

    # --- submitting -------------------------------------------------------------------

    async def _submit(
        self, plan: ShardPlan, attempt: int, parent_id: int | None, report: ReportBuilder
    ) -> ShardRecord | RequestError:
        """Journal, upload and create one batch; the error of its ops when it was not made."""
        store = self._batch_store
        run_id = self._ensure_run()
        endpoint = self._journal.batch_endpoint(plan.endpoint)
        if endpoint is None:
            served = self._journal.remote(plan.endpoint).endpoints()
            return ApiError(
                f"the Batch API does not serve {plan.endpoint}; it serves "
                f"{', '.join(served)}; run such requests with ImmediateRunner",
                code="unsupported_endpoint",
            )
        index = store.next_shard_index(run_id)
        record = store.intend_shard(
            run_id=run_id,
            shard=index,
            attempt=attempt,
            endpoint=plan.endpoint,
            model=plan.model,
            custom_ids=[op.key for op in plan.ops],
            tokens=plan.tokens,
            parent_id=parent_id,
        )
        cancelled = CancelledRequestError("the run was cancelled before this line was submitted")
        if self._stop_requested():
            store.transition(record.id, ("intended",), "abandoned", error="cancelled before upload")
            return cancelled
        try:
            uploaded = await self._journal.upload(record, plan, f"inert-{run_id}-{index}.jsonl")
        except CallFailed as failure:
            store.transition(
                record.id, ("intended",), "failed", error=f"upload failed: {failure.error.message}"
            )
            return failure.error
        moved = store.mark_uploaded(record.id, uploaded)
        if moved is None:
            return cancelled  # abandoned meanwhile by a cancel in another process
        record = moved
        if self._stop_requested():
            store.transition(record.id, ("uploaded",), "abandoned", error="cancelled before create")
            return cancelled
        metadata = {
            **self._metadata,
            "inert_run": run_id,
            "inert_shard": str(index),
            "inert_digest": record.digest,
        }
        try:
            batch = await self._journal.create(record, endpoint, metadata, plan)
        except CallFailed as failure:
            if failure.definite:
                store.transition(
                    record.id,
                    ("uploaded",),
                    "failed",
                    error=f"create refused: {failure.error.message}",
                )
                return failure.error
            # Left 'uploaded': a later run looks for the batch again before submitting.
            return amended(
                failure.error,
                "the shard stays journaled, and a rerun checks whether the batch exists "
                "before submitting again",
            )
        moved = store.mark_created(record.id, batch.id, batch.status)
        if moved is None:
            # Abandoned meanwhile (a cancel elsewhere), yet the batch exists: journal it so
            # it is collected; its first poll cancels it, as the run was asked to stop.
            moved = store.mark_created(record.id, batch.id, batch.status, expect=("abandoned",))
        report.batches_created += 1
        return moved if moved is not None else store.shard(record.id)
