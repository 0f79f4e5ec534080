"""``BatchJournal``: remote batch operations that keep the store's journal in step.

Shared by the runner and ``inert batches``: upload a shard's input file, create its
batch (at most one per shard), find a batch by its metadata, poll it, download and
store its answers, cancel it, resume every pending shard. Every call goes through
:mod:`._http` (no SDK retries; our own, typed) to the shard's provider's batch API,
behind :mod:`._remote` (OpenAI's Batch API, Anthropic's Message Batches). Every
journal change is a compare-and-set on the state last seen.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Collection, Coroutine, Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from typing import TYPE_CHECKING, Any, BinaryIO, Final

import attrs
from openai.types import Batch

from inert._errors import ApiError
from inert._gc import paused_gc
from inert._json import JSON
from inert._providers import CLIENTS, NAMES, Provider, provider_of
from inert._runners._batch._http import Backoff, CallFailed, retrying
from inert._runners._batch._lines import TERMINAL_STATUSES, ShardPlan
from inert._runners._batch._output import (
    Collected,
    LineMatcher,
    ParsedFile,
    is_success,
    parse_output_file,
)
from inert._runners._batch._phases import Phases
from inert._runners._batch._progress import QUIET, ProgressView
from inert._runners._batch._remote import INLINE, OpenAIBatches, RemoteBatches, Undecided
from inert._store import ATTACHED_STATES, LOST_STATE, UNSENT_STATES, ShardRecord, Store

if TYPE_CHECKING:
    import anthropic
    import openai

logger = logging.getLogger("inert.batch")

CALL_TRIES: Final = 8
"""Tries of one upload, create, download, list or cancel before it fails for good."""
POLL_TRIES: Final = 20
"""Consecutive failed polls of one batch before collecting it fails for this run."""
DOWNLOAD_ROUNDS: Final = 5
"""Downloads of an output file that reads shorter than the batch's counts say."""
CANCEL_STATUSES: Final = frozenset({"cancelling", "cancelled"})


@attrs.frozen
class Polled:
    """A poll that reached the end: the batch (``None``: it no longer exists) and what was seen."""

    batch: Batch | None
    first_status: str | None
    cancel_seen: bool


class BatchJournal:
    """Remote batch operations that keep the store's journal in step.

    Args:
        client: the user's OpenAI client (or ``None``); its calls here go without SDK
            retries.
        store: the store holding the journal and the answers.
        anthropic: the user's Anthropic client, for Message Batches, likewise.
        poll_interval: the first pause between polls and between retried calls.
        poll_interval_max: the longest such pause.
        phases: where the time of each phase is added up (see :mod:`._phases`).
    """

    def __init__(
        self,
        client: openai.AsyncOpenAI | None,
        store: Store,
        *,
        anthropic: anthropic.AsyncAnthropic | None = None,
        poll_interval: float = 5.0,
        poll_interval_max: float = 60.0,
        phases: Phases | None = None,
    ) -> None:
        self.remotes: dict[Provider, RemoteBatches] = {}
        if client is not None:
            self.remotes["openai"] = OpenAIBatches(client)
        if anthropic is not None:
            # Imported here: the anthropic SDK is slow to import, and only its users need it.
            from inert._runners._batch._remote_anthropic import AnthropicBatches

            self.remotes["anthropic"] = AnthropicBatches(anthropic, store)
        self.store = store
        self.phases = Phases() if phases is None else phases
        self.poll_interval = poll_interval
        self.poll_interval_max = poll_interval_max
        self._calls = Backoff(poll_interval, poll_interval_max, CALL_TRIES)
        self._polls = Backoff(poll_interval, poll_interval_max, POLL_TRIES)

    # --- single calls -----------------------------------------------------------------

    def remote(self, endpoint: str) -> RemoteBatches:
        """The batch API of the provider serving ``endpoint``.

        Raises:
            CallFailed: no client of that provider was given (definite).
        """
        provider = provider_of(endpoint)
        remote = self.remotes.get(provider)
        if remote is None:
            raise CallFailed(
                ApiError(
                    f"batches of {endpoint} go to {NAMES[provider]}'s batch API, but no "
                    f"{NAMES[provider]} client was given; give one: {CLIENTS[provider]}",
                    code="missing_client",
                ),
                definite=True,
                status=None,
            )
        return remote

    def serves(self, record: ShardRecord) -> bool:
        """Whether the journal has the client of the shard's provider."""
        return provider_of(record.endpoint) in self.remotes

    def batch_endpoint(self, endpoint: str) -> str | None:
        """The batch endpoint for ops of ``endpoint``; ``None`` when no batch API serves it."""
        remote = self.remotes.get(provider_of(endpoint))
        return None if remote is None else remote.batch_endpoint(endpoint)

    async def upload(self, record: ShardRecord, plan: ShardPlan, filename: str) -> str:
        """Upload a shard's input file, streamed from a private temporary file; its id.

        A try whose answer was lost may have left a file at the server; it costs
        nothing, and the journal notes it. Message Batches take their requests inline
        in the create: nothing is uploaded, and the journal notes ``inline``.
        """
        remote = self.remote(plan.endpoint)
        if not remote.uploads:
            return INLINE

        async def lost(failure: CallFailed) -> None:
            if failure.status is None or failure.status >= 500:
                self.store.note(
                    record.id,
                    f"an upload lost its answer ({failure.error.message}); a file named "
                    f"{filename} may be left unused at the server (files cost nothing)",
                )

        with self.phases.timing("upload"):
            return await remote.upload(plan, filename, self._calls, lost, self.phases)

    async def create(
        self, record: ShardRecord, endpoint: str, metadata: Mapping[str, str], plan: ShardPlan
    ) -> Batch:
        """Create a shard's batch: at most one, however many answers are lost.

        After a try that may have created the batch (a 5xx, a dropped connection, a
        body that is not JSON), the batch is looked up (by its metadata, or for a
        Message Batch as :mod:`._remote` says) before trying again; a 429 is a
        refusal, so nothing is looked up. When the look-up cannot decide, nothing is
        created again (:class:`~._remote.Undecided` is raised).
        """
        assert record.input_file_id is not None
        remote = self.remote(record.endpoint)
        what = "creating the batch"

        async def once() -> Batch:
            return await remote.create(record, plan, endpoint, metadata)

        async def look(failure: CallFailed) -> Batch | None:
            if failure.status == 429:
                return None
            try:
                found = await self.find_remote([record])
            except Undecided:
                raise
            except CallFailed:
                return None
            batch = found.get(record.id)
            if batch is not None:
                logger.info("the create of shard %s lost its answer; found %s", record.id, batch.id)
            return batch

        return await retrying(what, once, self._calls, before_retry=look)

    async def retrieve(
        self, batch_id: str, backoff: Backoff | None = None, *, endpoint: str
    ) -> Batch | None:
        """The batch as the server sees it now (``None``: it does not exist)."""
        what = f"polling batch {batch_id}"
        remote = self.remote(endpoint)

        async def once() -> Batch:
            return await remote.retrieve(batch_id)

        try:
            return await retrying(what, once, backoff or self._polls)
        except CallFailed as failure:
            if failure.status == 404:
                return None
            raise

    async def download(self, file_id: str | None, *, endpoint: str) -> bytes | BinaryIO | None:
        """A file's bytes, or a rewound private temporary file holding them (the caller
        closes it: see :meth:`._remote.RemoteBatches.download`); ``b""`` for no file,
        ``None`` when it expired (404 "No such File").

        A Message Batch's results come as Batch API output lines (:mod:`._remote`).
        """
        if file_id is None:
            return b""
        what = f"downloading file {file_id}"
        remote = self.remote(endpoint)

        async def once() -> bytes | BinaryIO:
            return await remote.download(file_id)

        try:
            return await retrying(what, once, self._calls)
        except CallFailed as failure:
            if failure.status == 404:
                return None
            raise

    async def cancel_remote(self, record: ShardRecord) -> Batch | None:
        """Cancel a shard's batch and journal it ``cancelling`` (``None``: nothing to cancel)."""
        assert record.batch_id is not None
        batch_id = record.batch_id
        what = f"cancelling batch {batch_id}"
        remote = self.remote(record.endpoint)

        async def once() -> Batch:
            return await remote.cancel(batch_id)

        try:
            batch = await retrying(what, once, self._calls)
        except CallFailed as failure:
            if failure.status == 404:
                self.store.transition(
                    record.id, ATTACHED_STATES, "failed", error="the batch no longer exists"
                )
                return None
            if failure.definite:  # already finished or cancelling: nothing to cancel
                current = await self.retrieve(batch_id, self._calls, endpoint=record.endpoint)
                if current is not None:
                    self._seen(record, current)
                return None
            raise
        if batch.status in TERMINAL_STATUSES:  # a Message Batch that ended: nothing to cancel
            self._seen(record, batch)
            return None
        self.store.transition(record.id, ("created",), "cancelling")
        self._seen(record, batch)
        return batch

    def _seen(self, record: ShardRecord, batch: Batch) -> None:
        counts = batch.request_counts
        self.store.mark_remote(
            record.id,
            batch.status,
            counts.completed if counts is not None else 0,
            counts.failed if counts is not None else 0,
        )

    # --- finding batches --------------------------------------------------------------

    async def find_remote(self, records: Sequence[ShardRecord]) -> dict[int, Batch]:
        """Batches created for journaled shards whose batch id was never journaled.

        An OpenAI batch is matched by the metadata inert puts on every batch (its
        run, shard number and digest of custom ids); a Message Batch, which has no
        metadata, as :mod:`._remote` says. Shards of a provider without a client
        are not looked up.

        Raises:
            CallFailed: a listing failed; :class:`~._remote.Undecided` when several
                Message Batches may be a shard's.
        """
        found: dict[int, Batch] = {}
        for provider, remote in self.remotes.items():
            mine = [r for r in records if provider_of(r.endpoint) == provider]
            if not mine:
                continue

            async def scan(
                remote: RemoteBatches = remote, mine: list[ShardRecord] = mine
            ) -> dict[int, Batch]:
                return await remote.scan(mine)

            found.update(await retrying("listing batches", scan, self._calls))
        return found

    async def resolve_unsent(
        self, records: Sequence[ShardRecord], *, held_by: str | None = None
    ) -> list[ShardRecord]:
        """Re-attach unsent shards whose batch exists remotely; abandon the others.

        With ``held_by``, a shard is abandoned only while that owner holds it (a found
        batch is journaled whoever holds the shard: it exists, and must be collected).
        Returns the shards now attached (state ``created``).

        Raises:
            CallFailed: the batches could not be listed; nothing was changed.
        """
        unsent = [r for r in records if r.state in UNSENT_STATES and self.serves(r)]
        if not unsent:
            return []
        found = await self.find_remote(unsent)
        attached: list[ShardRecord] = []
        for record in unsent:
            batch = found.get(record.id)
            if batch is None:
                self.store.transition(
                    record.id,
                    (record.state,),
                    "abandoned",
                    held_by=held_by,
                    error="no remote batch was found for this shard on resume",
                )
                continue
            logger.info("re-attached shard %s to batch %s", record.id, batch.id)
            moved = self.store.mark_created(
                record.id, batch.id, batch.status, expect=(record.state,)
            )
            if moved is not None:
                attached.append(moved)
        return attached

    # --- polling and collecting -------------------------------------------------------

    async def poll(
        self,
        record: ShardRecord,
        view: ProgressView = QUIET,
        should_cancel: Callable[[], bool] | None = None,
    ) -> Polled:
        """Poll a shard's batch with backoff until it is terminal.

        Each poll also reads the journal: a shard marked ``cancelling`` by another
        process counts as cancelled, and when ``should_cancel()`` says the run was
        asked to stop, the batch is cancelled here.
        """
        assert record.batch_id is not None
        interval = self.poll_interval
        last = record.remote_status
        first: str | None = None
        cancel_seen = False
        while True:
            batch = await self.retrieve(record.batch_id, endpoint=record.endpoint)
            if batch is None:
                return Polled(None, first, cancel_seen)
            if first is None:
                first = batch.status
            view.show(record, batch)
            if batch.status != last:
                self._seen(record, batch)
                last = batch.status
            state = self.store.shard(record.id).state
            if batch.status in CANCEL_STATUSES:
                cancel_seen = True
                if state == "created":
                    self.store.transition(record.id, ("created",), "cancelling")
            elif state == "cancelling":
                cancel_seen = True
            elif (
                should_cancel is not None
                and batch.status not in TERMINAL_STATUSES
                and should_cancel()
            ):
                cancel_seen = True
                await self.cancel_remote(self.store.shard(record.id))
            if batch.status in TERMINAL_STATUSES:
                return Polled(batch, first, cancel_seen)
            await asyncio.sleep(interval)
            interval = min(interval * 1.5, self.poll_interval_max)

    async def collect(
        self,
        record: ShardRecord,
        view: ProgressView = QUIET,
        *,
        known: Iterable[str] | None = None,
        adopted: bool = True,
        should_cancel: Callable[[], bool] | None = None,
        keep: Callable[[str, JSON], bool] | None = None,
        owner: str | None = None,
    ) -> Collected:
        """Wait for a shard's batch, download its files and store its answers.

        Every successful line of the shard is stored (even one no current op asked
        for: it was paid) in the same transaction that closes the shard. The output
        is checked against the batch's counts first: one that reads short (a cut
        download, an HTML page) is downloaded again, and if it stays short the shard
        stays open for a later collection — the lines it did give are stored, and
        nothing the server completed is ever resubmitted.

        Args:
            known: the shard's custom ids, if the caller has them (a set or the keys of
                a mapping are used as they are).
            adopted: the shard comes from the journal rather than from this run (a
                cancellation seen at the first poll then predates this run).
            should_cancel: asks whether the run was told to stop (see :meth:`poll`).
            keep: ``keep(custom_id, body)`` says whether an answer may be stored (the
                runner asks the op's decoder, :func:`inert._answers.rejected_by_decoder`).
            owner: the run holding the shard: the shard is closed only while it does
                (its answers are stored in any case).
        """
        store = self.store
        assert record.batch_id is not None
        polled = await self.poll(record, view, should_cancel)
        batch = polled.batch
        if batch is None:
            store.finish_shard(
                record,
                held_by=owner,
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
        cancel: str | None = None
        if batch.status in CANCEL_STATUSES or polled.cancel_seen:
            before = adopted and (
                record.state == "cancelling" or polled.first_status in CANCEL_STATUSES
            )
            cancel = "before" if before else "during"
        counts = batch.request_counts
        completed = counts.completed if counts is not None else 0
        failed = counts.failed if counts is not None else 0
        if batch.status == "failed":
            errors = batch.errors.data if batch.errors is not None and batch.errors.data else []
            message = "; ".join(
                (f"line {e.line}: " if e.line is not None else "")
                + (f"{e.code}: " if e.code else "")
                + (e.message or "")
                for e in errors[:5]
            )
            message = message or "the batch failed without an error message"
            code = errors[0].code if errors else None
            store.finish_shard(
                record,
                held_by=owner,
                state="failed",
                remote_status="failed",
                answers=(),
                completed=completed,
                failed=failed,
                output_file_id=None,
                error_file_id=batch.error_file_id,
                error=message,
            )
            return Collected(batch.id, "failed", {}, batch_error=message, batch_error_code=code)
        ids: Collection[str]
        if isinstance(known, AbstractSet | Mapping):
            ids = known  # already a fast membership test: no copy of a large shard's ids
        else:
            with self.phases.timing("journal"):
                ids = set(store.shard_custom_ids(record.id) if known is None else known)
        with self.phases.timing("collect"):
            # The output's lines are matched as it is read (that also counts them).
            matcher = LineMatcher(batch.id, ids)
            output = await self._read(batch, batch.output_file_id, matcher, completed, "output")
            errors_file = await self._read(
                batch,
                batch.error_file_id,
                LineMatcher(batch.id, ids),
                failed if batch.status == "completed" else 0,
                "error",
            )
            with paused_gc():  # per-line work over acyclic data (and a decode per answer)
                if output is None:
                    matcher = LineMatcher(batch.id, ids)
                if errors_file is not None:
                    matcher.add(errors_file[0])
                matched = matcher.matched()
                answers = [
                    (cid, line.body)
                    for cid, line in matched.lines.items()
                    if is_success(line) and (keep is None or keep(cid, line.body))
                ]
        doubtful = output is not None and bool(output[0].malformed)

        def finish(state: str, error: str | None = None) -> None:
            """Close the shard with what this collection matched."""
            store.finish_shard(
                record,
                held_by=owner,
                state=state,
                remote_status=batch.status,
                answers=answers,
                completed=completed,
                failed=failed,
                output_file_id=batch.output_file_id,
                error_file_id=batch.error_file_id,
                anomalies=matched.anomalies,
                error=error,
            )

        if output is None or errors_file is None:
            gone = "output" if output is None else "error"
            message = (
                f"the {gone} file of batch {batch.id} expired before it was downloaded "
                "(404 No such File object): its answers are gone; a run of the same "
                "requests submits the unanswered lines again"
            )
            logger.warning("%s", message)
            finish(LOST_STATE, error=message)
            return Collected(
                batch.id, "lost", matched.lines, matched.conflicts, cancel=cancel, doubtful=doubtful
            )
        short = output[1]
        if short is not None:
            store.store_answers(record, answers)
            store.mark_remote(record.id, batch.status, completed, failed)
            return Collected(
                batch.id,
                batch.status,
                matched.lines,
                matched.conflicts,
                cancel=cancel,
                incomplete=short,
                doubtful=doubtful,
            )
        for odd_id, detail in matched.anomalies:
            logger.warning("anomaly in shard %s (custom_id %s): %s", record.id, odd_id, detail)
        with self.phases.timing("store write"):
            finish("downloaded")
        return Collected(
            batch.id,
            batch.status,
            matched.lines,
            matched.conflicts,
            cancel=cancel,
            doubtful=doubtful,
        )

    async def _read(
        self, batch: Batch, file_id: str | None, matcher: LineMatcher, expected: int, kind: str
    ) -> tuple[ParsedFile, str | None] | None:
        """Download and parse one file of a batch, again while it reads short.

        Returns ``None`` when the file expired, else the parsed file and, for an
        output file that still reads short after :data:`DOWNLOAD_ROUNDS` downloads,
        a message saying so. A short error file is believed after those rounds (its
        lines never carry a paid answer). ``matcher`` (new, of the shard's ids) holds
        the lines of the file returned, matched.
        """
        parsed = ParsedFile([], [], [])
        if file_id is None:
            # No file at all, nothing to download again. When the batch reports completed
            # lines yet has no output file, those lines were paid: they are not submitted
            # again; the shard stays for a later collection (or `inert batches abandon`).
            if kind == "output" and expected > 0:
                return parsed, (
                    f"batch {batch.id} reports {expected} completed lines but has no output "
                    "file; they are not submitted again (they were paid): the batch stays in "
                    "the journal, and `inert batches abandon` gives its lines up to a rerun"
                )
            return parsed, None
        for round_ in range(1, DOWNLOAD_ROUNDS + 1):
            data = await self.download(file_id, endpoint=batch.endpoint)
            if data is None:
                return None
            if isinstance(data, bytes):
                parsed = parse_output_file(data)
            else:
                with data:  # read line by line: a large output is never held whole
                    parsed = parse_output_file(data)
            matcher.clear()
            matcher.add(parsed)
            readable = matcher.ids_seen + len(parsed.malformed)
            if readable >= expected:
                return parsed, None
            logger.warning(
                "the %s file of batch %s read %d lines where its counts say %d (download %d of %d)",
                kind,
                batch.id,
                readable,
                expected,
                round_,
                DOWNLOAD_ROUNDS,
            )
        if kind == "error":
            return parsed, None
        return parsed, (
            f"the output of batch {batch.id} read short after {DOWNLOAD_ROUNDS} downloads "
            f"(fewer lines than the {expected} it reports completed); the answers it did "
            "give are stored, and the batch stays in the journal: run again, or `inert "
            "batches resume`, to collect the rest"
        )

    # --- cancelling and resuming ------------------------------------------------------

    async def cancel(
        self, *, run_ids: Iterable[str] | None = None, batch_ids: Iterable[str] | None = None
    ) -> list[str]:
        """Cancel the remote batches of unfinished journal shards; return their batch ids.

        Only shards of ``run_ids`` (or with ``batch_ids``) when given, else every one.
        Without ``batch_ids``, the runs themselves are marked cancelled first, so a
        live run in any process submits nothing more; shards journaled without a
        batch id are looked up remotely. A cancelled shard stays pending: its
        partial output (paid lines) is collected later.
        """
        store = self.store
        runs = None if run_ids is None else set(run_ids)
        ids = None if batch_ids is None else set(batch_ids)
        if ids is None:
            store.request_cancel(runs)
        records = [
            r
            for r in store.shards(states=(*UNSENT_STATES, *ATTACHED_STATES))
            if (runs is None or r.run_id in runs)
            and (ids is None or r.batch_id in ids)
            and self.serves(r)
        ]
        considered = {r.id for r in records if r.state != "cancelling"}
        if ids is None:
            await self.resolve_unsent(records)
        for record in store.shards(states=("created",)):
            if record.id in considered:
                await self.cancel_remote(record)
        # A live run that saw its cancellation may have cancelled some of them itself.
        return [
            r.batch_id
            for r in store.shards(states=("cancelling",))
            if r.id in considered and r.batch_id is not None
        ]

    async def resume(
        self, *, run_id: str | None = None, view: ProgressView = QUIET
    ) -> list[Collected]:
        """Collect every pending shard (of one run, if given) into the store.

        A shard a live run holds (its lease) is left to that run.
        """
        now = self.store.clock()
        pending = [
            r
            for r in self.store.shards(run_id=run_id, states=(*UNSENT_STATES, *ATTACHED_STATES))
            if not r.leased(now)
        ]
        await self.resolve_unsent(pending)
        attached = [
            r
            for r in self.store.shards(run_id=run_id, states=ATTACHED_STATES)
            if self.serves(r) and not r.leased(now)
        ]
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
