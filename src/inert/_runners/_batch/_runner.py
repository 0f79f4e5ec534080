"""``BatchRunner``: each engine round becomes batch jobs, journaled for resume.

Each provider's ops go through that provider's batch API (OpenAI's Batch API,
Anthropic's Message Batches; :mod:`._remote`), in parallel, by the same steps.

One round (one ``_send`` call) goes through these steps, each journaled in the
:class:`~inert.Store` before or after its side effect:

1. ops already in the store are cache hits (``BaseRunner`` does that);
2. the round's ops are *claimed* in the store (:mod:`inert._claims`): ops in a
   shard another live run holds are waited for (their answers are read from the
   store when that run has them); shards of runs that ended or died (their lease
   expired) are taken over and re-attached: created ones are polled and downloaded;
   ones journaled without a batch id are looked up in ``batches.list`` by their
   metadata (run, shard, digest of custom ids); lines of shards whose output expired
   are submitted again;
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

import asyncio
import logging
import os
import socket
import sys
import uuid
from collections.abc import Callable, Collection, Coroutine, Mapping, Sequence
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, ClassVar, Final, Literal, TypeVar

import attrs
from returns.result import Failure, Result, Success

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
from inert._request import Request
from inert._runner import BaseRunner, Sent
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
from inert._runners._batch._phases import Phases
from inert._runners._batch._progress import ProgressView
from inert._store import (
    ATTACHED_STATES,
    LOST_STATE,
    UNSENT_STATES,
    ShardIntent,
    ShardRecord,
    Store,
    StoreError,
)

if TYPE_CHECKING:
    from anthropic import AsyncAnthropic
    from openai import AsyncOpenAI

logger = logging.getLogger("inert.batch")

T = TypeVar("T")

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


def _keeper(by_key: Mapping[str, Op[Any]]) -> Callable[[str, JSON], bool]:
    """Whether an answer may be stored: not when its op's decoder rejects it as no answer."""

    def keep(cid: str, body: JSON) -> bool:
        op = by_key.get(cid)
        return op is None or rejected_by_decoder(op, body) is None

    return keep


@attrs.define
class _Round:
    """What the shards of one round share: where outcomes go, the report, the queue."""

    outcomes: dict[str, Sent]
    """Bare outcomes (the raw body, or the RequestError): the engine takes them without
    a wrapper, and a round of 50,000 ops keeps 50,000 fewer objects."""
    report: ReportBuilder
    view: ProgressView
    capacity: Capacity

    def fail(self, ops: Sequence[Op[Any]], error: RequestError) -> None:
        for op in ops:
            self.outcomes[op.key] = error


def _bare(outcome: RawOutcome) -> Sent:
    """The outcome without its wrapper."""
    if isinstance(outcome, Success):
        body: JSON = outcome.unwrap()
        return body
    error: RequestError = outcome.failure()
    return error


@attrs.define
class _Run:
    """One ``run_all`` of a batch runner: its journal id once it has one."""

    run_id: str | None = None


def _process_gone(host: str | None, pid: int | None) -> bool:
    """Whether a run's process is known to have ended (same host, no such process).

    Only ever shortens a wait: a process that may be alive (another host, a pid
    that exists, no way to tell) counts as alive, and its leases run out by time.
    """
    if host != socket.gethostname() or pid is None or pid == os.getpid() or os.name != "posix":
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False
    return False


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
        lease: seconds a run holds the shards it submits or resumes without renewing
            them; a live run renews its leases every ``lease / 4`` seconds. Another
            run on the same store (any process, any runner) waits for a held shard
            and takes over only one whose lease ran out (its run died), so no line
            is paid twice. On the same host, a run whose process has ended is known
            gone at once.

    Many runs may share one store: see "Many runs, one store" in docs/runners.md.
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
        lease: float = 60.0,
    ) -> None:
        gpt, claude = clients_of("BatchRunner", client, openai, anthropic)
        if not isinstance(store, Store):
            raise TypeError(
                f"BatchRunner needs store=Store(path) for its journal; got {type(store).__name__}"
            )
        _positive("poll_interval", poll_interval)
        _positive("poll_interval_max", poll_interval_max)
        _positive("lease", lease)
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
        self._phases = Phases()  # seconds per phase of every run (benchmarks/batch_path.py)
        self._journal = BatchJournal(
            gpt,
            store,
            anthropic=claude,
            poll_interval=poll_interval,
            poll_interval_max=poll_interval_max,
            phases=self._phases,
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
        self._lease = float(lease)
        self._run_id: str | None = None
        self._run_ids: list[str] = []
        self._cancel_requested = False
        # The run of the calling task: concurrent run_all calls on one runner are
        # separate runs (separate owners), exactly as runs in two processes are.
        self._current: ContextVar[_Run | None] = ContextVar("inert_batch_run", default=None)

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

    @property
    def lease(self) -> float:
        """Seconds a run holds its shards between two renewals of the lease."""
        return self._lease

    async def run_all_settled(
        self, requests: Sequence[Request[T]]
    ) -> list[Result[T, RequestError]]:
        """Run requests together; one ``Success(value)`` or ``Failure(error)`` each.

        The run holds leases on the shards it submits or resumes, renews them while it
        runs, and gives them up when it ends, however it ends.
        """
        run = _Run()
        token = self._current.set(run)
        heartbeat = asyncio.create_task(self._heartbeat(run))
        try:
            return await super().run_all_settled(requests)
        finally:
            heartbeat.cancel()
            await asyncio.gather(heartbeat, return_exceptions=True)
            if run.run_id is not None:
                self._end_run(run.run_id)
            self._current.reset(token)

    async def _heartbeat(self, run: _Run) -> None:
        """Renew the run's leases every ``lease / 4`` seconds while it runs."""
        while True:
            await asyncio.sleep(self._lease / 4)
            if run.run_id is None:
                continue
            try:
                store = self._batch_store
                store.renew_leases(owner=run.run_id, lease=self._lease, now=store.clock())
            except StoreError as error:  # the next beat tries again; the run goes on
                logger.warning("could not renew the leases of run %s: %s", run.run_id, error)

    def _end_run(self, run_id: str) -> None:
        """Give up the run's leases: its pending shards are free for the next run to take."""
        try:
            self._batch_store.release_leases(owner=run_id)
        except StoreError as error:  # the leases then simply run out
            logger.warning("could not release the leases of run %s: %s", run_id, error)

    def _begin_run(self) -> None:
        self._run_id = None
        self._cancel_requested = False

    def _run(self) -> _Run:
        run = self._current.get()
        if run is None:  # a round outside run_all_settled (tests driving _send)
            run = _Run()
            self._current.set(run)
        return run

    def _ensure_run(self) -> str:
        run = self._run()
        if run.run_id is None:
            run.run_id = f"run_{uuid.uuid4().hex[:20]}"
            self._run_id = run.run_id
            self._run_ids.append(run.run_id)
            self._batch_store.begin_run(
                run.run_id, self._metadata, host=socket.gethostname(), pid=os.getpid()
            )
        return run.run_id

    def _stop_requested(self) -> bool:
        """Whether this run was asked to stop: by :meth:`cancel` or, in the journal, by anyone."""
        if self._cancel_requested:
            return True
        run_id = self._run().run_id
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

    async def _send(self, ops: Sequence[Op[Any]], report: ReportBuilder) -> Mapping[str, Sent]:
        if len(self._journal.remotes) < len(PROVIDERS):
            # Before anything of the round is sent (the engine's rounds call no check).
            check_clients("BatchRunner", {op.endpoint for op in ops}, self._journal.remotes)
        capacity = Capacity(
            self._limits, first_wait=self._poll_interval, max_wait=self._poll_interval_max
        )
        with ProgressView(self._progress, round_number=report.rounds) as view:
            rnd = _Round({}, report, view, capacity)
            served: list[Op[Any]] = []
            for op in ops:
                if self._journal.batch_endpoint(op.endpoint) is None:
                    supported = self._journal.remote(op.endpoint).endpoints()
                    rnd.fail(
                        [op],
                        ApiError(
                            f"the Batch API does not serve {op.endpoint}; it serves "
                            f"{', '.join(supported)}; run such requests with ImmediateRunner",
                            code="unsupported_endpoint",
                        ),
                    )
                else:
                    served.append(op)
            if served:
                await self._claim(rnd, served)
        return rnd.outcomes

    async def _claim(self, rnd: _Round, ops: list[Op[Any]], wait: float | None = None) -> None:
        """Claim the lines of ``ops`` and carry each to its end (see :mod:`inert._claims`).

        Lines in new shards are submitted; shards taken over are resumed; lines that
        another live run holds are waited for: after ``wait`` seconds (growing like
        the poll interval) they are claimed again, and then they are answered (that
        run stored them), still held, or free (that run ended without them).
        """
        store = self._batch_store
        if wait is not None:
            await asyncio.sleep(wait)
            if self._stop_requested():
                rnd.fail(
                    ops,
                    CancelledRequestError(
                        "the run was cancelled while it waited for another run's batch"
                    ),
                )
                return
        run_id = self._ensure_run()
        by_key = {op.key: op for op in ops}
        plans: list[ShardPlan] = []
        too_large: list[Op[Any]] = []

        def planner(keys: Sequence[str]) -> list[ShardIntent]:
            with self._phases.timing("jsonl"):
                made, large = self._plan([by_key[key] for key in keys], rnd.capacity)
            plans[:] = made
            too_large[:] = large
            return [
                ShardIntent(p.endpoint, p.model, [op.key for op in p.ops], p.tokens) for p in made
            ]

        with self._phases.timing("journal"):
            claim = store.claim_shards(
                run_id=run_id, keys=list(by_key), plan=planner, lease=self._lease, now=store.clock()
            )
        for key, body in claim.answered.items():
            rnd.outcomes[key] = body
        if claim.answered:  # stored by another run meanwhile: cache hits, not sent by this one
            rnd.report.answered_elsewhere(claim.answered)
        for op in too_large:
            rnd.fail(
                [op],
                ApiError(
                    f"the batch line of {op!r} is larger than max_bytes_per_batch "
                    f"({self._max_bytes:,} bytes); raise the limit or shorten the request",
                    code="line_too_large",
                ),
            )
        under: dict[int, list[Op[Any]]] = {}
        for key, shard_id in claim.shard_of.items():
            under.setdefault(shard_id, []).append(by_key[key])
        jobs: list[Coroutine[Any, Any, None]] = []
        again: list[Op[Any]] = []
        unsent = [r for r in claim.taken if r.state in UNSENT_STATES]
        unresolved: set[int] = set()
        if unsent:
            try:
                await self._journal.resolve_unsent(unsent, held_by=run_id)
            except CallFailed as failure:
                # Whether their batches exist is unknown: submitting again could pay twice.
                error = amended(
                    failure.error,
                    "the batches of earlier shards carrying these requests could not be "
                    "looked up, so nothing was submitted for them; run again",
                )
                for record in unsent:
                    rnd.fail(under.get(record.id, []), error)
                    unresolved.add(record.id)
        for taken in claim.taken:
            if taken.id in unresolved:
                continue
            record = store.shard(taken.id)
            mine = under.get(record.id, [])
            if record.state in ATTACHED_STATES and self._journal.serves(record):
                rnd.capacity.hold(record.model, record.tokens)
                rnd.view.log(
                    f"re-attached batch {record.batch_id} of an earlier run ({len(mine)} lines)"
                )
                known = store.shard_custom_ids(record.id)
                jobs.append(
                    self._drive(rnd, mine, record.attempt, record=record, known=known, adopted=True)
                )
            else:
                again.extend(mine)  # no batch was found for it: its lines are claimed anew
        for record, plan in zip(claim.records, plans, strict=True):
            jobs.append(self._drive(rnd, plan.ops, 1, plan=plan, intended=record))
        waiting = [op for held in claim.held for op in under.get(held.id, [])]
        if waiting:
            now = store.clock()
            gone = False
            for owner in {held.owner for held in claim.held if held.owner is not None}:
                process = store.run_process(owner)
                if process is not None and _process_gone(*process):
                    logger.info("run %s ended without giving up its shards: taking them", owner)
                    store.expire_leases(owner=owner, now=now)
                    gone = True
            if wait is None:
                rnd.view.log(
                    f"waiting for {len(claim.held)} batches of other runs on this store "
                    f"({len(waiting)} lines)"
                )
            pause = (
                0.0
                if gone
                else self._poll_interval
                if wait is None
                else min(max(wait, self._poll_interval) * 1.5, self._poll_interval_max)
            )
            jobs.append(self._claim(rnd, waiting, pause))
        if again:
            jobs.append(self._claim(rnd, again))
        await gather_tasks(jobs)

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
        known: Collection[str] | None = None,
        adopted: bool = False,
        parent_id: int | None = None,
        stalled: int = 0,
        refusals: int = 0,
        intended: ShardRecord | None = None,
    ) -> None:
        """Carry one shard through submission, collection and its resubmissions.

        ``intended``: the shard as the claim journaled it (for the first submission
        of ``plan``). Once the lines of a collected shard are decided, its claims on
        them are released (those resubmitted move to the new shard first).
        """
        store = self._batch_store
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
                    made = await self._submit(
                        plan, attempt, parent_id, rnd.report, intended=intended
                    )
                except BaseException:
                    await rnd.capacity.release(plan.model, plan.tokens)
                    raise
                if isinstance(made, RequestError):
                    await rnd.capacity.release(plan.model, plan.tokens)
                    rnd.fail(ops, made)
                    return
                record, known, adopted, intended = made, None, False, None
            by_key = {op.key: op for op in ops}
            try:
                collected = await self._journal.collect(
                    record,
                    rnd.view,
                    known=by_key if known is None else known,
                    adopted=adopted,
                    should_cancel=self._stop_requested,
                    keep=_keeper(by_key),
                    owner=self._run().run_id,
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
                    rnd.outcomes[op.key] = _bare(outcome)
            if not retry:
                store.release_claims(record.id)
                return
            if answered:
                stalled = 0
            elif collected.cancel != "before" and collected.status not in ("lost", "missing"):
                # Only an attempt that ran and answered nothing says the lines do not go
                # through; one cancelled before this run, or whose output expired, does not.
                stalled += len(ops)
            if attempt >= self._max_attempts or stalled >= STALL_LINES:
                for op, outcome in retry:
                    rnd.outcomes[op.key] = _bare(outcome)
                store.release_claims(record.id)
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
                store.transition(
                    record.id,
                    (LOST_STATE,),
                    "abandoned",
                    error="its output or error file expired before it was downloaded; its "
                    "unanswered lines were submitted again",
                )
            # The lines to submit again stay claimed until their new shard takes them.
            store.release_claims(record.id, keep=[op.key for op, _ in retry])
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
        self,
        plan: ShardPlan,
        attempt: int,
        parent_id: int | None,
        report: ReportBuilder,
        *,
        intended: ShardRecord | None = None,
    ) -> ShardRecord | RequestError:
        """Journal (unless the claim did), upload and create one batch; the error of its
        ops when it was not made. Every journal step holds only while the run holds the
        shard's lease."""
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
        if intended is not None:
            record, index = intended, intended.shard
        else:
            with self._phases.timing("journal"):
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
                    owner=run_id,
                    lease_expires_at=self._batch_store.clock() + self._lease,
                )
        cancelled = CancelledRequestError("the run was cancelled before this line was submitted")
        if self._stop_requested():
            store.transition(
                record.id,
                ("intended",),
                "abandoned",
                held_by=run_id,
                error="cancelled before upload",
            )
            return cancelled
        try:
            uploaded = await self._journal.upload(record, plan, f"inert-{run_id}-{index}.jsonl")
        except CallFailed as failure:
            store.transition(
                record.id, ("intended",), "failed", error=f"upload failed: {failure.error.message}"
            )
            return failure.error
        moved = store.mark_uploaded(record.id, uploaded, held_by=run_id)
        if moved is None:
            if store.shard(record.id).owner not in (None, run_id):
                return ApiError(
                    f"another run took shard {record.id} over while this run uploaded it "
                    f"(this run's lease of {self._lease:g} s ran out): that run submits it",
                    code="shard_taken_over",
                )
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
            with self._phases.timing("create"):
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
        moved = store.mark_created(record.id, batch.id, batch.status, held_by=run_id)
        if moved is None:
            # Abandoned meanwhile (a cancel elsewhere), or taken over by another run after
            # this one's lease ran out, yet the batch exists: journal it, whoever holds the
            # shard, so it is collected (never submitted again); if the run was asked to
            # stop, its first poll cancels it.
            moved = store.mark_created(
                record.id, batch.id, batch.status, expect=("uploaded", "abandoned")
            )
        report.batches_created += 1
        return moved if moved is not None else store.shard(record.id)
