"""``BatchJournal`` against a scripted batch API: what each answer makes of the journal.

Unit-level: the journal's remote is a stand-in whose batches, files and errors the
test scripts (no emulator, no HTTP), and the store is a fresh SQLite file. Each test
pins what one kind of answer leaves in the store (the shard's state, its error text,
the answers kept) and what the caller gets back: a failed batch with its errors, a
batch that vanished, an output file that expired or reads short, a cancellation seen
while polling, a batch found again on resume.
"""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, BinaryIO

import httpx2
import openai
import pytest
from openai.types import Batch
from openai.types.batch_request_counts import BatchRequestCounts

from inert import Store
from inert._errors import ApiError
from inert._providers import Provider
from inert._runners._batch._http import Backoff, CallFailed
from inert._runners._batch._journal import DOWNLOAD_ROUNDS, BatchJournal
from inert._runners._batch._lines import ShardPlan
from inert._runners._batch._output import LineMatcher
from inert._runners._batch._phases import Phases
from inert._runners._batch._progress import ProgressView
from inert._runners._batch._remote import INLINE, RemoteBatches
from inert._store import ShardRecord

ENDPOINT = "/v1/chat/completions"


def not_found() -> openai.APIStatusError:
    request = httpx2.Request("GET", "https://api.example/v1/files/x/content")
    response = httpx2.Response(404, request=request, json={"error": {"message": "No such File"}})
    return openai.NotFoundError("No such File", response=response, body=None)


def refused(status: int = 400) -> openai.APIStatusError:
    request = httpx2.Request("POST", "https://api.example/v1/batches/b/cancel")
    body = {"error": {"message": "cannot cancel", "code": "bad"}}
    response = httpx2.Response(status, request=request, json=body)
    return openai.APIStatusError("cannot cancel", response=response, body=body)


def batch(
    batch_id: str,
    status: str,
    counts: tuple[int, int, int] | None = (0, 0, 0),
    **fields: Any,
) -> Batch:
    values: dict[str, Any] = {
        "id": batch_id,
        "status": status,
        "endpoint": ENDPOINT,
        "output_file_id": None,
        "error_file_id": None,
        "errors": None,
        "request_counts": None
        if counts is None
        else BatchRequestCounts(completed=counts[0], failed=counts[1], total=counts[2]),
    }
    values.update(fields)
    return Batch.model_construct(**values)


def answer_line(cid: str, n: int = 1) -> str:
    body = {"id": f"chatcmpl-{cid}", "object": "chat.completion", "n": n}
    return json.dumps(
        {
            "id": f"batch_req_{cid}",
            "custom_id": cid,
            "response": {"status_code": 200, "request_id": "r", "body": body},
            "error": None,
        }
    )


def error_line(cid: str) -> str:
    body = {"error": {"message": "bad", "type": "invalid_request_error", "code": None}}
    return json.dumps(
        {
            "id": f"batch_req_{cid}",
            "custom_id": cid,
            "response": {"status_code": 400, "request_id": "r", "body": body},
            "error": None,
        }
    )


def body_of(cid: str, n: int = 1) -> dict[str, Any]:
    return {"id": f"chatcmpl-{cid}", "object": "chat.completion", "n": n}


class Scripted(RemoteBatches):
    """A batch API that answers as the test scripted it (one try per call)."""

    provider: Provider = "openai"
    uploads = False

    def __init__(self) -> None:
        self.polls: dict[str, list[Batch | BaseException]] = {}
        self.files: dict[str, list[bytes | BinaryIO | BaseException]] = {}
        self.cancels: dict[str, Batch | BaseException] = {}
        self.found: dict[int, Batch] = {}
        self.scan_failure: BaseException | None = None
        self.creates: list[Batch | BaseException] = []
        self.created_with: list[tuple[ShardRecord, ShardPlan, str, Mapping[str, str]]] = []
        self.upload_failures: list[CallFailed] = []
        self.uploaded_with: list[tuple[ShardPlan, str, Backoff, Phases]] = []
        self.calls: list[str] = []

    def batch_endpoint(self, endpoint: str) -> str | None:
        return endpoint if endpoint == ENDPOINT else None

    def endpoints(self) -> Sequence[str]:
        return (ENDPOINT,)

    async def upload(
        self,
        plan: ShardPlan,
        filename: str,
        backoff: Backoff,
        lost: Callable[[CallFailed], Awaitable[None]],
        phases: Phases,
    ) -> str:
        self.calls.append(f"upload {filename}")
        self.uploaded_with.append((plan, filename, backoff, phases))
        for failure in self.upload_failures:
            await lost(failure)
        return "file-uploaded"

    async def create(
        self, record: ShardRecord, plan: ShardPlan, endpoint: str, metadata: Mapping[str, str]
    ) -> Batch:
        self.calls.append(f"create {record.id}")
        self.created_with.append((record, plan, endpoint, metadata))
        got = self.creates.pop(0)
        if isinstance(got, BaseException):
            raise got
        return got

    async def retrieve(self, batch_id: str) -> Batch:
        self.calls.append(f"retrieve {batch_id}")
        answers = self.polls[batch_id]
        got = answers.pop(0) if len(answers) > 1 else answers[0]
        if isinstance(got, BaseException):
            raise got
        return got

    async def download(self, file_id: str) -> bytes | BinaryIO:
        self.calls.append(f"download {file_id}")
        answers = self.files[file_id]
        got = answers.pop(0) if len(answers) > 1 else answers[0]
        if isinstance(got, BaseException):
            raise got
        return got

    async def cancel(self, batch_id: str) -> Batch:
        self.calls.append(f"cancel {batch_id}")
        got = self.cancels[batch_id]
        if isinstance(got, BaseException):
            raise got
        return got

    async def scan(self, records: Sequence[ShardRecord]) -> dict[int, Batch]:
        self.calls.append(f"scan {sorted(r.id for r in records)}")
        if self.scan_failure is not None:
            raise self.scan_failure
        return {r.id: self.found[r.id] for r in records if r.id in self.found}


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store(tmp_path / "journal.sqlite3") as opened:
        yield opened


@pytest.fixture
def remote() -> Scripted:
    return Scripted()


@pytest.fixture
def journal(store: Store, remote: Scripted) -> BatchJournal:
    made = BatchJournal(None, store, poll_interval=0.001, poll_interval_max=0.002)
    made.remotes["openai"] = remote
    return made


def shard(store: Store, ids: Sequence[str], batch_id: str | None = "batch_1") -> ShardRecord:
    store.begin_run("run_a", {})
    record = store.intend_shard(
        run_id="run_a",
        shard=store.next_shard_index("run_a"),
        attempt=1,
        endpoint=ENDPOINT,
        model="m",
        custom_ids=list(ids),
    )
    if batch_id is None:
        return record
    created = store.mark_created(record.id, batch_id, "validating")
    assert created is not None
    return created


def run(coroutine: Awaitable[Any]) -> Any:
    async def main() -> Any:
        return await coroutine

    return asyncio.run(main())


# --- single calls ------------------------------------------------------------------------


def test_an_endpoint_without_a_client_fails_for_good_naming_the_client(store: Store) -> None:
    journal = BatchJournal(None, store)
    with pytest.raises(CallFailed) as raised:
        journal.remote("/v1/messages")
    failure = raised.value
    assert isinstance(failure.error, ApiError)
    assert (True, None, "missing_client") == (failure.definite, failure.status, failure.error.code)
    assert failure.error.message.startswith(
        "batches of /v1/messages go to Anthropic's batch API, but no Anthropic client was "
        "given; give one: "
    )
    assert journal.batch_endpoint("/v1/messages") is None
    assert {} == journal.remotes


def test_the_journal_serves_the_endpoints_of_its_clients(
    journal: BatchJournal, store: Store
) -> None:
    record = shard(store, ["a"])
    assert journal.serves(record)
    assert ENDPOINT == journal.batch_endpoint(ENDPOINT)
    assert journal.batch_endpoint("/v1/messages") is None
    assert (0.001, 0.002) == (journal.poll_interval, journal.poll_interval_max)
    assert Backoff(0.001, 0.002, 8) == journal._calls
    assert Backoff(0.001, 0.002, 20) == journal._polls


def test_inline_requests_upload_nothing(journal: BatchJournal, store: Store) -> None:
    record = shard(store, ["a"], batch_id=None)
    plan: Any = type("Plan", (), {"endpoint": ENDPOINT})()  # only the endpoint is read
    assert INLINE == run(journal.upload(record, plan, "x.jsonl"))


def test_a_batch_or_file_that_no_longer_exists_is_none(
    journal: BatchJournal, remote: Scripted
) -> None:
    remote.polls["gone"] = [not_found()]
    remote.files["file-gone"] = [not_found()]
    remote.files["file-ok"] = [b"data"]
    assert run(journal.retrieve("gone", endpoint=ENDPOINT)) is None
    assert run(journal.download("file-gone", endpoint=ENDPOINT)) is None
    assert b"" == run(journal.download(None, endpoint=ENDPOINT))
    assert b"data" == run(journal.download("file-ok", endpoint=ENDPOINT))
    assert ["retrieve gone", "download file-gone", "download file-ok"] == remote.calls


def test_a_refused_poll_fails_for_good(journal: BatchJournal, remote: Scripted) -> None:
    remote.polls["b"] = [refused(400)]
    remote.files["f"] = [refused(403)]
    with pytest.raises(CallFailed) as polled:
        run(journal.retrieve("b", endpoint=ENDPOINT))
    assert "polling batch b: HTTP 400: cannot cancel" == polled.value.error.message
    with pytest.raises(CallFailed) as downloaded:
        run(journal.download("f", endpoint=ENDPOINT))
    assert "downloading file f: HTTP 403: cannot cancel" == downloaded.value.error.message


# --- polling -----------------------------------------------------------------------------


def test_polling_records_each_new_status_until_the_batch_ends(
    journal: BatchJournal, store: Store, remote: Scripted
) -> None:
    record = shard(store, ["a", "b"])
    remote.polls["batch_1"] = [
        batch("batch_1", "validating"),
        batch("batch_1", "in_progress", (1, 0, 2)),
        batch("batch_1", "in_progress", (1, 1, 2)),
        batch("batch_1", "completed", (1, 1, 2)),
    ]
    polled = run(journal.poll(record))
    assert polled.batch is not None
    assert ("completed", "validating", False) == (
        polled.batch.status,
        polled.first_status,
        polled.cancel_seen,
    )
    assert 4 == remote.calls.count("retrieve batch_1")
    now = store.shard(record.id)
    assert ("created", "completed", 1, 1) == (
        now.state,
        now.remote_status,
        now.completed,
        now.failed,
    )


def test_a_cancellation_seen_while_polling_is_journaled(
    journal: BatchJournal, store: Store, remote: Scripted
) -> None:
    record = shard(store, ["a"])
    remote.polls["batch_1"] = [
        batch("batch_1", "in_progress"),
        batch("batch_1", "cancelling"),
        batch("batch_1", "cancelled", (0, 0, 1)),
    ]
    polled = run(journal.poll(record))
    assert (True, "in_progress") == (polled.cancel_seen, polled.first_status)
    assert ("cancelling", "cancelled") == (
        store.shard(record.id).state,
        store.shard(record.id).remote_status,
    )


def test_a_shard_another_process_cancels_counts_as_cancelled(
    journal: BatchJournal, store: Store, remote: Scripted
) -> None:
    record = shard(store, ["a"])
    store.transition(record.id, ("created",), "cancelling")
    remote.polls["batch_1"] = [batch("batch_1", "completed", (1, 0, 1))]
    assert run(journal.poll(record)).cancel_seen


def test_a_run_told_to_stop_cancels_its_batch_while_polling(
    journal: BatchJournal, store: Store, remote: Scripted
) -> None:
    record = shard(store, ["a"])
    remote.polls["batch_1"] = [
        batch("batch_1", "in_progress"),
        batch("batch_1", "cancelled", (0, 0, 1)),
    ]
    remote.cancels["batch_1"] = batch("batch_1", "cancelling")
    asked: list[bool] = []

    def should_cancel() -> bool:
        asked.append(True)
        return True

    polled = run(journal.poll(record, should_cancel=should_cancel))
    assert polled.cancel_seen
    assert ["retrieve batch_1", "cancel batch_1", "retrieve batch_1"] == remote.calls
    assert [True] == asked  # not asked again once the batch is cancelling
    assert "cancelling" == store.shard(record.id).state


def test_a_finished_batch_is_never_cancelled(
    journal: BatchJournal, store: Store, remote: Scripted
) -> None:
    record = shard(store, ["a"])
    remote.polls["batch_1"] = [batch("batch_1", "completed", (1, 0, 1))]
    polled = run(journal.poll(record, should_cancel=lambda: True))
    assert not polled.cancel_seen
    assert ["retrieve batch_1"] == remote.calls


# --- collecting --------------------------------------------------------------------------


def test_a_completed_batch_stores_its_answers_and_closes_the_shard(
    journal: BatchJournal, store: Store, remote: Scripted
) -> None:
    record = shard(store, ["a", "b", "c"])
    remote.polls["batch_1"] = [
        batch(
            "batch_1",
            "completed",
            (2, 1, 3),
            output_file_id="file-out",
            error_file_id="file-err",
        )
    ]
    stray = answer_line("zz")
    remote.files["file-out"] = [f"{answer_line('a')}\n{answer_line('b', 2)}\n{stray}\n".encode()]
    remote.files["file-err"] = [f"{error_line('c')}\n".encode()]
    collected = run(journal.collect(record, known={"a", "b", "c"}))
    assert ("batch_1", "completed", None, None) == (
        collected.batch_id,
        collected.status,
        collected.cancel,
        collected.incomplete,
    )
    assert {"a", "b", "c"} == set(collected.lines)
    assert {"a": body_of("a"), "b": body_of("b", 2)} == dict(store.get_responses(["a", "b", "c"]))
    now = store.shard(record.id)
    assert ("downloaded", "completed", 2, 1, "file-out", "file-err") == (
        now.state,
        now.remote_status,
        now.completed,
        now.failed,
        now.output_file_id,
        now.error_file_id,
    )
    (anomaly,) = store.anomalies(record.id)
    assert "zz" == anomaly[1]


def test_answers_the_decoder_refuses_are_not_stored(
    journal: BatchJournal, store: Store, remote: Scripted
) -> None:
    record = shard(store, ["a", "b"])
    remote.polls["batch_1"] = [batch("batch_1", "completed", (2, 0, 2), output_file_id="o")]
    remote.files["o"] = [f"{answer_line('a')}\n{answer_line('b')}\n".encode()]
    run(journal.collect(record, keep=lambda cid, body: cid == "a"))
    assert {"a": body_of("a")} == dict(store.get_responses(["a", "b"]))


def test_a_failed_batch_fails_its_shard_with_the_first_five_errors(
    journal: BatchJournal, store: Store, remote: Scripted
) -> None:
    record = shard(store, ["a"])
    errors = [{"line": i, "code": "invalid", "message": f"problem {i}"} for i in range(1, 7)]
    remote.polls["batch_1"] = [
        batch(
            "batch_1",
            "failed",
            (0, 0, 0),
            errors=type("Errors", (), {"data": [type("E", (), e)() for e in errors]})(),
            error_file_id="file-err",
        )
    ]
    collected = run(journal.collect(record))
    message = "; ".join(f"line {i}: invalid: problem {i}" for i in range(1, 6))
    assert ("failed", message, "invalid") == (
        collected.status,
        collected.batch_error,
        collected.batch_error_code,
    )
    now = store.shard(record.id)
    assert ("failed", "failed", message, "file-err", None) == (
        now.state,
        now.remote_status,
        now.error,
        now.error_file_id,
        now.output_file_id,
    )


def test_a_failed_batch_without_errors_says_so(
    journal: BatchJournal, store: Store, remote: Scripted
) -> None:
    record = shard(store, ["a"])
    line_less = type("E", (), {"line": None, "code": None, "message": "too big"})()
    remote.polls["batch_1"] = [batch("batch_1", "failed", None)]
    remote.polls["batch_2"] = [
        batch("batch_2", "failed", None, errors=type("Errors", (), {"data": [line_less]})())
    ]
    collected = run(journal.collect(record))
    assert ("the batch failed without an error message", None) == (
        collected.batch_error,
        collected.batch_error_code,
    )
    assert (0, 0) == (store.shard(record.id).completed, store.shard(record.id).failed)
    other = shard(store, ["b"], batch_id="batch_2")
    assert "too big" == run(journal.collect(other)).batch_error


def test_a_batch_that_vanished_fails_its_shard(
    journal: BatchJournal, store: Store, remote: Scripted
) -> None:
    record = shard(store, ["a"])
    remote.polls["batch_1"] = [not_found()]
    collected = run(journal.collect(record))
    assert ("batch_1", "missing", {}) == (collected.batch_id, collected.status, collected.lines)
    now = store.shard(record.id)
    assert ("failed", "missing", "the batch batch_1 no longer exists") == (
        now.state,
        now.remote_status,
        now.error,
    )


@pytest.mark.parametrize("gone", ["output", "error"])
def test_an_expired_file_loses_the_shard_and_keeps_what_was_read(
    journal: BatchJournal, store: Store, remote: Scripted, gone: str
) -> None:
    record = shard(store, ["a", "b"])
    remote.polls["batch_1"] = [
        batch("batch_1", "completed", (1, 1, 2), output_file_id="o", error_file_id="e")
    ]
    remote.files["o"] = [not_found()] if gone == "output" else [f"{answer_line('a')}\n".encode()]
    remote.files["e"] = [not_found()] if gone == "error" else [f"{error_line('b')}\n".encode()]
    collected = run(journal.collect(record))
    message = (
        f"the {gone} file of batch batch_1 expired before it was downloaded (404 No such "
        "File object): its answers are gone; a run of the same requests submits the "
        "unanswered lines again"
    )
    assert "lost" == collected.status
    now = store.shard(record.id)
    assert ("lost", message) == (now.state, now.error)
    kept = {} if gone == "output" else {"a": body_of("a")}
    assert kept == dict(store.get_responses(["a", "b"]))


def test_an_output_that_reads_short_is_downloaded_again(
    journal: BatchJournal, store: Store, remote: Scripted
) -> None:
    record = shard(store, ["a", "b"])
    remote.polls["batch_1"] = [batch("batch_1", "completed", (2, 0, 2), output_file_id="o")]
    whole = f"{answer_line('a')}\n{answer_line('b')}\n".encode()
    remote.files["o"] = [f"{answer_line('a')}\n".encode(), whole]
    collected = run(journal.collect(record))
    assert (None, "completed") == (collected.incomplete, collected.status)
    assert 2 == remote.calls.count("download o")
    assert "downloaded" == store.shard(record.id).state


def test_an_output_that_stays_short_keeps_the_shard_open(
    journal: BatchJournal, store: Store, remote: Scripted
) -> None:
    record = shard(store, ["a", "b"])
    remote.polls["batch_1"] = [batch("batch_1", "completed", (2, 0, 2), output_file_id="o")]
    remote.files["o"] = [f"{answer_line('a')}\n".encode()]
    collected = run(journal.collect(record))
    assert DOWNLOAD_ROUNDS == remote.calls.count("download o") == 5
    assert (
        "the output of batch batch_1 read short after 5 downloads (fewer lines than the 2 it "
        "reports completed); the answers it did give are stored, and the batch stays in the "
        "journal: run again, or `inert batches resume`, to collect the rest"
    ) == collected.incomplete
    assert {"a": body_of("a")} == dict(store.get_responses(["a", "b"]))
    now = store.shard(record.id)
    assert ("created", "completed", 2, 0) == (
        now.state,
        now.remote_status,
        now.completed,
        now.failed,
    )


def test_a_short_error_file_is_believed(
    journal: BatchJournal, store: Store, remote: Scripted
) -> None:
    record = shard(store, ["a", "b", "c"])
    remote.polls["batch_1"] = [
        batch("batch_1", "completed", (1, 2, 3), output_file_id="o", error_file_id="e")
    ]
    remote.files["o"] = [f"{answer_line('a')}\n".encode()]
    remote.files["e"] = [f"{error_line('b')}\n".encode()]
    collected = run(journal.collect(record))
    assert collected.incomplete is None
    assert 5 == remote.calls.count("download e")
    assert "downloaded" == store.shard(record.id).state


def test_completed_lines_without_an_output_file_are_never_resubmitted(
    journal: BatchJournal, store: Store, remote: Scripted
) -> None:
    record = shard(store, ["a"])
    remote.polls["batch_1"] = [batch("batch_1", "completed", (1, 0, 1))]
    collected = run(journal.collect(record))
    assert (
        "batch batch_1 reports 1 completed lines but has no output file; they are not "
        "submitted again (they were paid): the batch stays in the journal, and `inert "
        "batches abandon` gives its lines up to a rerun"
    ) == collected.incomplete
    assert "created" == store.shard(record.id).state


def test_a_cancelled_batch_is_collected_with_when_it_was_cancelled(
    journal: BatchJournal, store: Store, remote: Scripted
) -> None:
    record = shard(store, ["a"])
    remote.polls["batch_1"] = [batch("batch_1", "cancelled", (0, 0, 1))]
    assert "before" == run(journal.collect(record)).cancel  # adopted, cancelled at first sight
    other = shard(store, ["b"], batch_id="batch_2")
    remote.polls["batch_2"] = [batch("batch_2", "cancelled", (0, 0, 1))]
    assert "during" == run(journal.collect(other, adopted=False)).cancel
    third = shard(store, ["c"], batch_id="batch_3")
    remote.polls["batch_3"] = [batch("batch_3", "in_progress"), batch("batch_3", "cancelled")]
    assert "during" == run(journal.collect(third)).cancel


# --- cancelling and resuming -------------------------------------------------------------


def test_cancelling_a_batch_journals_it_cancelling(
    journal: BatchJournal, store: Store, remote: Scripted
) -> None:
    record = shard(store, ["a"])
    remote.cancels["batch_1"] = batch("batch_1", "cancelling", (1, 0, 1))
    got = run(journal.cancel_remote(record))
    assert got is not None
    now = store.shard(record.id)
    assert ("cancelling", "cancelling", 1) == (now.state, now.remote_status, now.completed)


def test_cancelling_a_batch_that_vanished_fails_the_shard(
    journal: BatchJournal, store: Store, remote: Scripted
) -> None:
    record = shard(store, ["a"])
    remote.cancels["batch_1"] = not_found()
    assert run(journal.cancel_remote(record)) is None
    now = store.shard(record.id)
    assert ("failed", "the batch no longer exists") == (now.state, now.error)


def test_a_refused_cancel_reads_the_batch_instead(
    journal: BatchJournal, store: Store, remote: Scripted
) -> None:
    record = shard(store, ["a"])
    remote.cancels["batch_1"] = refused(400)
    remote.polls["batch_1"] = [batch("batch_1", "completed", (1, 0, 1))]
    assert run(journal.cancel_remote(record)) is None
    now = store.shard(record.id)
    assert ("created", "completed", 1) == (now.state, now.remote_status, now.completed)


def test_a_batch_that_ended_is_not_cancelled(
    journal: BatchJournal, store: Store, remote: Scripted
) -> None:
    record = shard(store, ["a"])
    remote.cancels["batch_1"] = batch("batch_1", "completed", (1, 0, 1))
    assert run(journal.cancel_remote(record)) is None
    assert ("created", "completed") == (
        store.shard(record.id).state,
        store.shard(record.id).remote_status,
    )


def test_unsent_shards_are_found_again_or_abandoned(
    journal: BatchJournal, store: Store, remote: Scripted
) -> None:
    found = shard(store, ["a"], batch_id=None)
    lost = shard(store, ["b"], batch_id=None)
    sent = shard(store, ["c"], batch_id="batch_c")
    store.mark_uploaded(lost.id, "file-b")
    remote.found[found.id] = batch("batch_found", "in_progress")
    attached = run(journal.resolve_unsent([found, store.shard(lost.id), sent]))
    assert [found.id] == [r.id for r in attached]
    assert [f"scan {sorted([found.id, lost.id])}"] == remote.calls
    assert ("created", "batch_found", "in_progress") == (
        attached[0].state,
        attached[0].batch_id,
        attached[0].remote_status,
    )
    gone = store.shard(lost.id)
    assert ("abandoned", "no remote batch was found for this shard on resume") == (
        gone.state,
        gone.error,
    )
    assert [] == run(journal.resolve_unsent([sent]))


def test_cancel_marks_the_runs_and_cancels_their_batches(
    journal: BatchJournal, store: Store, remote: Scripted
) -> None:
    one = shard(store, ["a"], batch_id="batch_1")
    unsent = shard(store, ["b"], batch_id=None)
    remote.cancels["batch_1"] = batch("batch_1", "cancelling")
    assert ["batch_1"] == run(journal.cancel(run_ids=["run_a"]))
    assert store.cancel_requested("run_a")
    assert ("cancelling", "abandoned") == (store.shard(one.id).state, store.shard(unsent.id).state)


def test_cancel_by_batch_id_leaves_the_run_alone(
    journal: BatchJournal, store: Store, remote: Scripted
) -> None:
    one = shard(store, ["a"], batch_id="batch_1")
    two = shard(store, ["b"], batch_id="batch_2")
    remote.cancels["batch_2"] = batch("batch_2", "cancelling")
    assert ["batch_2"] == run(journal.cancel(batch_ids=["batch_2"]))
    assert not store.cancel_requested("run_a")
    assert ("created", "cancelling") == (store.shard(one.id).state, store.shard(two.id).state)


def test_resume_collects_every_pending_shard_nobody_holds(
    journal: BatchJournal, store: Store, remote: Scripted
) -> None:
    free = shard(store, ["a"], batch_id="batch_1")
    store.begin_run("run_b", {})
    held = store.intend_shard(
        run_id="run_b",
        shard=0,
        attempt=1,
        endpoint=ENDPOINT,
        model="m",
        custom_ids=["b"],
        owner="run_b",
        lease_expires_at=4e9,
    )
    store.mark_created(held.id, "batch_2", "validating")
    remote.polls["batch_1"] = [batch("batch_1", "completed", (1, 0, 1), output_file_id="o")]
    remote.files["o"] = [f"{answer_line('a')}\n".encode()]
    collected = run(journal.resume())
    assert ["batch_1"] == [c.batch_id for c in collected]
    assert ("downloaded", "created") == (store.shard(free.id).state, store.shard(held.id).state)
    assert "retrieve batch_2" not in remote.calls


def shard_of_run(store: Store, run: str, ids: Sequence[str], batch_id: str) -> ShardRecord:
    store.begin_run(run, {})
    record = store.intend_shard(
        run_id=run,
        shard=store.next_shard_index(run),
        attempt=1,
        endpoint=ENDPOINT,
        model="m",
        custom_ids=list(ids),
    )
    created = store.mark_created(record.id, batch_id, "validating")
    assert created is not None
    return created


def test_resume_of_one_run_leaves_the_other_runs_alone(
    journal: BatchJournal, store: Store, remote: Scripted
) -> None:
    mine = shard_of_run(store, "run_a", ["a"], "batch_a")
    other = shard_of_run(store, "run_b", ["b"], "batch_b")
    unsent_other = store.intend_shard(
        run_id="run_b", shard=5, attempt=1, endpoint=ENDPOINT, model="m", custom_ids=["c"]
    )
    remote.polls["batch_a"] = [batch("batch_a", "completed", (1, 0, 1), output_file_id="o")]
    remote.files["o"] = [f"{answer_line('a')}\n".encode()]
    collected = run(journal.resume(run_id="run_a"))
    assert ["batch_a"] == [c.batch_id for c in collected]
    assert ("downloaded", "created", "intended") == (
        store.shard(mine.id).state,
        store.shard(other.id).state,
        store.shard(unsent_other.id).state,
    )
    assert [] == [call for call in remote.calls if "batch_b" in call or "scan" in call]


def test_cancel_of_one_run_leaves_the_other_runs_alone(
    journal: BatchJournal, store: Store, remote: Scripted
) -> None:
    mine = shard_of_run(store, "run_a", ["a"], "batch_a")
    other = shard_of_run(store, "run_b", ["b"], "batch_b")
    remote.cancels["batch_a"] = batch("batch_a", "cancelling")
    assert ["batch_a"] == run(journal.cancel(run_ids=["run_a"]))
    assert (True, False) == (store.cancel_requested("run_a"), store.cancel_requested("run_b"))
    assert ("cancelling", "created") == (store.shard(mine.id).state, store.shard(other.id).state)
    assert ["cancel batch_a"] == remote.calls


def test_cancel_of_every_run_cancels_every_batch(
    journal: BatchJournal, store: Store, remote: Scripted
) -> None:
    shard_of_run(store, "run_a", ["a"], "batch_a")
    shard_of_run(store, "run_b", ["b"], "batch_b")
    remote.cancels["batch_a"] = batch("batch_a", "cancelling")
    remote.cancels["batch_b"] = batch("batch_b", "cancelling")
    assert ["batch_a", "batch_b"] == sorted(run(journal.cancel()))
    assert store.cancel_requested("run_a")
    assert store.cancel_requested("run_b")


# --- the clients, uploading and creating ---------------------------------------------------


def test_a_journal_made_of_clients_serves_their_batch_apis(store: Store) -> None:
    import anthropic

    from inert._runners._batch._remote import OpenAIBatches
    from inert._runners._batch._remote_anthropic import AnthropicBatches

    phases = Phases()
    journal = BatchJournal(
        openai.AsyncOpenAI(api_key="sk-test", base_url="http://127.0.0.1:9/v1"),
        store,
        anthropic=anthropic.AsyncAnthropic(api_key="sk-ant-test", base_url="http://127.0.0.1:9"),
        phases=phases,
    )
    assert ["openai", "anthropic"] == list(journal.remotes)
    assert isinstance(journal.remotes["openai"], OpenAIBatches)
    assert isinstance(journal.remotes["anthropic"], AnthropicBatches)
    assert journal.phases is phases
    assert journal.store is store
    assert "/v1/messages" == journal.batch_endpoint("/v1/messages")
    alone = BatchJournal(None, store)
    assert isinstance(alone.phases, Phases)
    assert (5.0, 60.0) == (alone.poll_interval, alone.poll_interval_max)
    assert Backoff(5.0, 60.0, 8) == alone._calls
    assert Backoff(5.0, 60.0, 20) == alone._polls
    only_anthropic = BatchJournal(None, store, anthropic=anthropic.AsyncAnthropic(api_key="k"))
    assert ["anthropic"] == list(only_anthropic.remotes)


def plan_of(endpoint: str = ENDPOINT) -> ShardPlan:
    return ShardPlan(endpoint, "m", [], 0, 0)


def test_an_upload_whose_answer_may_be_lost_is_noted(
    journal: BatchJournal, store: Store, remote: Scripted
) -> None:
    record = shard(store, ["a"], batch_id=None)
    remote.uploads = True

    def failure(status: int | None) -> CallFailed:
        return CallFailed(ApiError(f"HTTP {status}"), definite=False, status=status)

    remote.upload_failures = [failure(500), failure(429), failure(None), failure(499)]
    plan = plan_of()
    assert "file-uploaded" == run(journal.upload(record, plan, "shard-1.jsonl"))
    assert [(plan, "shard-1.jsonl", journal._calls, journal.phases)] == remote.uploaded_with
    notes = [detail for _, _, detail in store.anomalies(record.id)]
    assert [
        "an upload lost its answer (HTTP 500); a file named shard-1.jsonl may be left unused "
        "at the server (files cost nothing)",
        "an upload lost its answer (HTTP None); a file named shard-1.jsonl may be left unused "
        "at the server (files cost nothing)",
    ] == notes
    assert [None, None] == [cid for _, cid, _ in store.anomalies(record.id)]
    assert journal.phases.seconds["upload"] > 0


def uploaded(store: Store, ids: Sequence[str]) -> ShardRecord:
    record = shard(store, ids, batch_id=None)
    moved = store.mark_uploaded(record.id, "file-in")
    assert moved is not None
    return moved


def test_a_create_goes_to_the_remote_with_its_metadata(
    journal: BatchJournal, store: Store, remote: Scripted
) -> None:
    record = uploaded(store, ["a"])
    plan = plan_of()
    remote.creates = [batch("batch_new", "validating")]
    made = run(journal.create(record, "/v1/chat/completions", {"inert_run": "run_a"}, plan))
    assert "batch_new" == made.id
    assert [(record, plan, "/v1/chat/completions", {"inert_run": "run_a"})] == remote.created_with
    assert [f"create {record.id}"] == remote.calls


def test_a_create_whose_answer_was_lost_is_found_and_not_made_again(
    journal: BatchJournal, store: Store, remote: Scripted, caplog: pytest.LogCaptureFixture
) -> None:
    record = uploaded(store, ["a"])
    remote.creates = [refused(500), batch("batch_twice", "validating")]
    remote.found[record.id] = batch("batch_found", "validating")
    with caplog.at_level("INFO", logger="inert.batch"):
        made = run(journal.create(record, ENDPOINT, {}, plan_of()))
    assert "batch_found" == made.id
    assert [f"create {record.id}", f"scan [{record.id}]"] == remote.calls
    assert [f"the create of shard {record.id} lost its answer; found batch_found"] == [
        r.getMessage() for r in caplog.records if r.name == "inert.batch"
    ]


def test_a_create_refused_for_its_rate_is_tried_again_without_a_look_up(
    journal: BatchJournal, store: Store, remote: Scripted
) -> None:
    record = uploaded(store, ["a"])
    remote.creates = [refused(429), batch("batch_new", "validating")]
    remote.found[record.id] = batch("batch_found", "validating")
    assert "batch_new" == run(journal.create(record, ENDPOINT, {}, plan_of())).id
    assert [f"create {record.id}", f"create {record.id}"] == remote.calls


def test_a_create_lost_with_nothing_found_is_tried_again(
    journal: BatchJournal, store: Store, remote: Scripted
) -> None:
    record = uploaded(store, ["a"])
    remote.creates = [refused(502), batch("batch_new", "validating")]
    assert "batch_new" == run(journal.create(record, ENDPOINT, {}, plan_of())).id
    assert [f"create {record.id}", f"scan [{record.id}]", f"create {record.id}"] == remote.calls


def test_a_create_whose_look_up_fails_is_tried_again(
    journal: BatchJournal, store: Store, remote: Scripted
) -> None:
    record = uploaded(store, ["a"])
    remote.creates = [refused(500), batch("batch_new", "validating")]
    remote.scan_failure = refused(400)  # the listing is refused for good
    assert "batch_new" == run(journal.create(record, ENDPOINT, {}, plan_of())).id
    assert [f"create {record.id}", f"scan [{record.id}]", f"create {record.id}"] == remote.calls


def test_a_create_whose_look_up_cannot_decide_is_not_tried_again(
    journal: BatchJournal, store: Store, remote: Scripted
) -> None:
    from inert._runners._batch._remote import Undecided

    record = uploaded(store, ["a"])
    remote.creates = [refused(500), batch("batch_new", "validating")]
    remote.scan_failure = Undecided(ApiError("two batches may be it"), definite=True, status=None)
    with pytest.raises(Undecided):
        run(journal.create(record, ENDPOINT, {}, plan_of()))
    assert [f"create {record.id}", f"scan [{record.id}]"] == remote.calls


def test_a_create_lost_every_time_fails_after_its_tries(
    journal: BatchJournal, store: Store, remote: Scripted
) -> None:
    record = uploaded(store, ["a"])
    remote.creates = [refused(500) for _ in range(9)]
    with pytest.raises(CallFailed) as raised:
        run(journal.create(record, ENDPOINT, {}, plan_of()))
    assert "creating the batch: HTTP 500: cannot cancel" == raised.value.error.message
    assert 8 == remote.calls.count(f"create {record.id}")


# --- finding batches of each provider, and unsent shards -----------------------------------

MESSAGES = "/v1/messages"


class ScriptedAnthropic(Scripted):
    """The stand-in batch API of the Message Batches provider."""

    provider: Provider = "anthropic"

    def batch_endpoint(self, endpoint: str) -> str | None:
        return endpoint if endpoint == MESSAGES else None

    def endpoints(self) -> Sequence[str]:
        return (MESSAGES,)


def unsent_shard(
    store: Store, ids: Sequence[str], endpoint: str, owner: str | None = None
) -> ShardRecord:
    store.begin_run("run_a", {})
    return store.intend_shard(
        run_id="run_a",
        shard=store.next_shard_index("run_a"),
        attempt=1,
        endpoint=endpoint,
        model="m",
        custom_ids=list(ids),
        owner=owner,
        lease_expires_at=None if owner is None else 4e9,
    )


def test_each_provider_is_asked_only_for_its_own_shards(
    journal: BatchJournal, store: Store, remote: Scripted
) -> None:
    messages = ScriptedAnthropic()
    journal.remotes["anthropic"] = messages
    first = unsent_shard(store, ["a"], MESSAGES)
    second = unsent_shard(store, ["b"], MESSAGES)
    messages.found[second.id] = batch("msgbatch_2", "in_progress")
    found = run(journal.find_remote([first, second]))
    assert {second.id: "msgbatch_2"} == {k: v.id for k, v in found.items()}
    assert [] == remote.calls  # no shard of OpenAI's: its batches are not listed
    assert [f"scan {sorted([first.id, second.id])}"] == messages.calls
    chat = unsent_shard(store, ["c"], ENDPOINT)
    remote.found[chat.id] = batch("batch_c", "in_progress")
    both = run(journal.find_remote([first, chat, second]))
    assert {second.id: "msgbatch_2", chat.id: "batch_c"} == {k: v.id for k, v in both.items()}
    assert [f"scan [{chat.id}]"] == remote.calls


def test_a_failed_listing_is_tried_again_then_fails(
    journal: BatchJournal, store: Store, remote: Scripted
) -> None:
    record = unsent_shard(store, ["a"], ENDPOINT)
    remote.scan_failure = refused(503)
    with pytest.raises(CallFailed) as raised:
        run(journal.resolve_unsent([record]))
    assert "listing batches: HTTP 503: cannot cancel" == raised.value.error.message
    assert 8 == len(remote.calls)
    assert "intended" == store.shard(record.id).state  # nothing was changed


def test_unsent_shards_of_a_provider_without_a_client_are_left_alone(
    journal: BatchJournal, store: Store, remote: Scripted
) -> None:
    record = unsent_shard(store, ["a"], MESSAGES)
    assert [] == run(journal.resolve_unsent([record]))
    assert [] == remote.calls
    assert "intended" == store.shard(record.id).state


def test_an_unsent_shard_is_abandoned_only_while_its_owner_holds_it(
    journal: BatchJournal, store: Store, remote: Scripted
) -> None:
    mine = unsent_shard(store, ["a"], ENDPOINT, owner="run_mine")
    theirs = unsent_shard(store, ["b"], ENDPOINT, owner="run_theirs")
    found = unsent_shard(store, ["c"], ENDPOINT, owner="run_theirs")
    remote.found[found.id] = batch("batch_c", "validating")
    attached = run(journal.resolve_unsent([mine, theirs, found], held_by="run_mine"))
    assert [(found.id, "batch_c")] == [(r.id, r.batch_id) for r in attached]
    assert ("abandoned", "intended", "created") == (
        store.shard(mine.id).state,
        store.shard(theirs.id).state,
        store.shard(found.id).state,
    )


def test_an_uploaded_shard_found_again_keeps_its_file_and_status(
    journal: BatchJournal, store: Store, remote: Scripted, caplog: pytest.LogCaptureFixture
) -> None:
    record = unsent_shard(store, ["a"], ENDPOINT)
    moved = store.mark_uploaded(record.id, "file-a")
    assert moved is not None
    remote.found[record.id] = batch("batch_a", "in_progress")
    with caplog.at_level("INFO", logger="inert.batch"):
        (attached,) = run(journal.resolve_unsent([moved]))
    assert ("created", "batch_a", "in_progress", "file-a") == (
        attached.state,
        attached.batch_id,
        attached.remote_status,
        attached.input_file_id,
    )
    assert attached == store.shard(record.id)
    assert [f"re-attached shard {record.id} to batch batch_a"] == [
        r.getMessage() for r in caplog.records if r.name == "inert.batch"
    ]


def test_an_unsent_shard_that_moved_meanwhile_is_not_attached(
    journal: BatchJournal, store: Store, remote: Scripted
) -> None:
    stale = unsent_shard(store, ["a"], ENDPOINT)  # read while intended
    store.mark_uploaded(stale.id, "file-a")  # another process moved it on
    lost = unsent_shard(store, ["b"], ENDPOINT)
    store.mark_uploaded(lost.id, "file-b")
    remote.found[stale.id] = batch("batch_a", "in_progress")
    assert [] == run(journal.resolve_unsent([stale, lost]))
    assert ("uploaded", None) == (store.shard(stale.id).state, store.shard(stale.id).batch_id)
    assert "uploaded" == store.shard(lost.id).state  # read as intended: not abandoned


# --- what is left of the calls -----------------------------------------------------------


def test_a_refused_cancel_of_a_batch_that_is_gone_changes_nothing(
    journal: BatchJournal, store: Store, remote: Scripted
) -> None:
    record = shard(store, ["a"])
    remote.cancels["batch_1"] = refused(400)
    remote.polls["batch_1"] = [not_found()]
    assert run(journal.cancel_remote(record)) is None
    now = store.shard(record.id)
    assert ("created", "validating") == (now.state, now.remote_status)
    assert ["cancel batch_1", "retrieve batch_1"] == remote.calls


def test_a_refused_cancel_is_read_with_the_call_retries(
    journal: BatchJournal, store: Store, remote: Scripted
) -> None:
    record = shard(store, ["a"])
    remote.cancels["batch_1"] = refused(400)
    remote.polls["batch_1"] = [refused(500)]
    with pytest.raises(CallFailed):
        run(journal.cancel_remote(record))
    assert 8 == remote.calls.count("retrieve batch_1")  # CALL_TRIES, not POLL_TRIES


def test_a_cancel_that_fails_for_now_fails_the_call(
    journal: BatchJournal, store: Store, remote: Scripted
) -> None:
    record = shard(store, ["a"])
    remote.cancels["batch_1"] = refused(500)
    with pytest.raises(CallFailed) as raised:
        run(journal.cancel_remote(record))
    assert "cancelling batch batch_1: HTTP 500: cannot cancel" == raised.value.error.message
    assert 8 == remote.calls.count("cancel batch_1")
    assert "created" == store.shard(record.id).state


class Streamed(io.BytesIO):
    """A downloaded file the journal reads line by line and must close."""


def test_an_output_streamed_from_a_file_is_read_and_closed(
    journal: BatchJournal, store: Store, remote: Scripted
) -> None:
    record = shard(store, ["a", "b"])
    remote.polls["batch_1"] = [batch("batch_1", "completed", (2, 0, 2), output_file_id="o")]
    file = Streamed(f"{answer_line('a')}\n{answer_line('b')}\n".encode())
    remote.files["o"] = [file]  # a BinaryIO, as the remote may give for a large file
    collected = run(journal.collect(record))
    assert (None, {"a", "b"}) == (collected.incomplete, set(collected.lines))
    assert file.closed
    assert {"a": body_of("a"), "b": body_of("b")} == dict(store.get_responses(["a", "b"]))


def test_a_failed_collection_among_many_fails_the_resume(
    journal: BatchJournal, store: Store, remote: Scripted
) -> None:
    shard(store, ["a"], batch_id="batch_1")
    shard(store, ["b"], batch_id="batch_2")
    remote.polls["batch_1"] = [refused(400)]
    remote.polls["batch_2"] = [batch("batch_2", "in_progress")]
    with pytest.raises(CallFailed) as raised:
        run(journal.resume())
    assert "polling batch batch_1: HTTP 400: cannot cancel" == raised.value.error.message


# --- aimed at what mutation testing found unguarded ----------------------------------------


def test_a_batch_with_no_completed_line_and_no_output_file_is_closed(
    journal: BatchJournal, store: Store, remote: Scripted
) -> None:
    record = shard(store, ["a"])
    remote.polls["batch_1"] = [batch("batch_1", "completed", (0, 1, 1), error_file_id="e")]
    remote.files["e"] = [f"{error_line('a')}\n".encode()]
    collected = run(journal.collect(record))
    assert (None, "completed") == (collected.incomplete, collected.status)
    assert "downloaded" == store.shard(record.id).state
    cancelled = shard(store, ["b"], batch_id="batch_2")
    remote.polls["batch_2"] = [batch("batch_2", "cancelled", (0, 0, 1))]
    assert run(journal.collect(cancelled)).incomplete is None
    assert "downloaded" == store.shard(cancelled.id).state


def test_a_malformed_output_line_counts_as_read(
    journal: BatchJournal, store: Store, remote: Scripted
) -> None:
    record = shard(store, ["a", "b"])
    remote.polls["batch_1"] = [batch("batch_1", "completed", (2, 0, 2), output_file_id="o")]
    remote.files["o"] = [f'{answer_line("a")}\n{{"not": "a line"}}\n'.encode()]
    collected = run(journal.collect(record))
    assert (None, True) == (collected.incomplete, collected.doubtful)
    assert ["download o"] == [c for c in remote.calls if c.startswith("download")]
    assert "downloaded" == store.shard(record.id).state


def test_cancel_returns_only_the_batches_it_cancelled(
    journal: BatchJournal, store: Store, remote: Scripted
) -> None:
    already = shard(store, ["a"], batch_id="batch_1")
    store.transition(already.id, ("created",), "cancelling")
    ended = shard(store, ["b"], batch_id="batch_2")
    running = shard(store, ["c"], batch_id="batch_3")
    remote.cancels["batch_2"] = batch("batch_2", "completed", (1, 0, 1))
    remote.cancels["batch_3"] = batch("batch_3", "cancelling")
    assert ["batch_3"] == run(journal.cancel())
    assert ["cancel batch_2", "cancel batch_3"] == remote.calls
    assert ("cancelling", "created", "cancelling") == (
        store.shard(already.id).state,
        store.shard(ended.id).state,
        store.shard(running.id).state,
    )


def test_cancel_leaves_a_shard_that_was_not_pending_when_it_was_called(
    journal: BatchJournal, store: Store, remote: Scripted
) -> None:
    unsent = unsent_shard(store, ["a"], ENDPOINT)
    late = unsent_shard(store, ["b"], ENDPOINT)
    store.transition(late.id, ("intended",), "abandoned")
    scan = remote.scan

    async def scan_while_a_run_creates(records: Sequence[ShardRecord]) -> dict[int, Batch]:
        # Meanwhile a live run journals the batch its create made for the abandoned shard.
        store.mark_created(late.id, "batch_late", "validating", expect=("abandoned",))
        return await scan(records)

    remote.scan = scan_while_a_run_creates  # type: ignore[method-assign]
    assert [] == run(journal.cancel())
    assert ("abandoned", "created") == (store.shard(unsent.id).state, store.shard(late.id).state)
    assert [f"scan [{unsent.id}]"] == remote.calls


def test_resume_finds_unsent_shards_nobody_holds_and_collects_them(
    journal: BatchJournal, store: Store, remote: Scripted
) -> None:
    free = unsent_shard(store, ["a"], ENDPOINT)
    held = unsent_shard(store, ["b"], ENDPOINT, owner="run_live")
    remote.found[free.id] = batch("batch_1", "completed", (1, 0, 1), output_file_id="o")
    remote.found[held.id] = batch("batch_2", "completed", (1, 0, 1), output_file_id="o")
    remote.polls["batch_1"] = [batch("batch_1", "completed", (1, 0, 1), output_file_id="o")]
    remote.files["o"] = [f"{answer_line('a')}\n".encode()]
    collected = run(journal.resume())
    assert ["batch_1"] == [c.batch_id for c in collected]
    assert [f"scan [{free.id}]", "retrieve batch_1", "download o"] == remote.calls
    assert ("downloaded", "intended") == (store.shard(free.id).state, store.shard(held.id).state)


def test_resume_leaves_finished_shards_alone(
    journal: BatchJournal, store: Store, remote: Scripted
) -> None:
    done = shard(store, ["a"], batch_id="batch_1")
    remote.polls["batch_1"] = [batch("batch_1", "completed", (1, 0, 1), output_file_id="o")]
    remote.files["o"] = [f"{answer_line('a')}\n".encode()]
    run(journal.collect(done))
    remote.calls.clear()
    assert [] == run(journal.resume())
    assert [] == remote.calls


class Recording(ProgressView):
    """A progress display that notes each batch it is shown."""

    def __init__(self) -> None:
        super().__init__(False)
        self.shown: list[tuple[int, str, str]] = []

    def show(self, record: ShardRecord, batch: Batch) -> None:
        self.shown.append((record.id, batch.id, batch.status))


def test_resume_shows_each_poll_in_its_view(
    journal: BatchJournal, store: Store, remote: Scripted
) -> None:
    record = shard(store, ["a"])
    remote.polls["batch_1"] = [
        batch("batch_1", "in_progress"),
        batch("batch_1", "completed", (0, 0, 1)),
    ]
    view = Recording()
    run(journal.resume(view=view))
    assert [(record.id, "batch_1", "in_progress"), (record.id, "batch_1", "completed")] == (
        view.shown
    )


def test_a_collection_told_to_stop_cancels_its_batch(
    journal: BatchJournal, store: Store, remote: Scripted
) -> None:
    record = shard(store, ["a"])
    remote.polls["batch_1"] = [batch("batch_1", "in_progress"), batch("batch_1", "cancelled")]
    remote.cancels["batch_1"] = batch("batch_1", "cancelling")
    collected = run(journal.collect(record, should_cancel=lambda: True))
    assert "during" == collected.cancel
    assert "cancel batch_1" in remote.calls


def test_a_shard_another_run_holds_is_not_closed_by_this_one(
    journal: BatchJournal, store: Store, remote: Scripted
) -> None:
    store.begin_run("run_a", {})

    def held(batch_id: str, cid: str) -> ShardRecord:
        record = store.intend_shard(
            run_id="run_a",
            shard=store.next_shard_index("run_a"),
            attempt=1,
            endpoint=ENDPOINT,
            model="m",
            custom_ids=[cid],
            owner="run_other",
            lease_expires_at=4e9,
        )
        created = store.mark_created(record.id, batch_id, "validating")
        assert created is not None
        return created

    vanished = held("batch_1", "a")
    failed = held("batch_2", "b")
    done = held("batch_3", "c")
    remote.polls["batch_1"] = [not_found()]
    remote.polls["batch_2"] = [batch("batch_2", "failed", (0, 0, 1))]
    remote.polls["batch_3"] = [batch("batch_3", "completed", (1, 0, 1), output_file_id="o")]
    remote.files["o"] = [f"{answer_line('c')}\n".encode()]
    for record in (vanished, failed, done):
        run(journal.collect(record, owner="run_mine"))
    assert ["created"] * 3 == [store.shard(r.id).state for r in (vanished, failed, done)]
    assert {"c": body_of("c")} == dict(store.get_responses(["c"]))  # stored in any case
    for record in (vanished, failed, done):
        run(journal.collect(store.shard(record.id), owner="run_other"))
    assert ["failed", "failed", "downloaded"] == [
        store.shard(r.id).state for r in (vanished, failed, done)
    ]


def test_a_vanished_batch_leaves_no_counts(
    journal: BatchJournal, store: Store, remote: Scripted
) -> None:
    record = shard(store, ["a", "b"])
    store.mark_remote(record.id, "in_progress", 1, 1)
    remote.polls["batch_1"] = [not_found()]
    run(journal.collect(store.shard(record.id)))
    now = store.shard(record.id)
    assert ("failed", 0, 0, None, None) == (
        now.state,
        now.completed,
        now.failed,
        now.output_file_id,
        now.error_file_id,
    )


def test_a_batch_that_ended_while_another_process_cancels_it_was_cancelled_before(
    journal: BatchJournal, store: Store, remote: Scripted
) -> None:
    record = shard(store, ["a"])
    cancelling = store.transition(record.id, ("created",), "cancelling")
    assert cancelling is not None
    remote.polls["batch_1"] = [batch("batch_1", "completed", (1, 0, 1))]
    assert "before" == run(journal.collect(cancelling)).cancel
    other = shard(store, ["b"], batch_id="batch_2")
    journaled = store.transition(other.id, ("created",), "cancelling")
    assert journaled is not None
    remote.polls["batch_2"] = [batch("batch_2", "in_progress"), batch("batch_2", "cancelled")]
    assert "before" == run(journal.collect(journaled)).cancel
    assert "during" == run(journal.collect(journaled, adopted=False)).cancel


def test_each_short_download_is_logged(
    journal: BatchJournal, store: Store, remote: Scripted, caplog: pytest.LogCaptureFixture
) -> None:
    record = shard(store, ["a", "b"])
    remote.polls["batch_1"] = [batch("batch_1", "completed", (2, 0, 2), output_file_id="o")]
    whole = f"{answer_line('a')}\n{answer_line('b')}\n".encode()
    remote.files["o"] = [f"{answer_line('a')}\n".encode(), whole]
    with caplog.at_level("WARNING", logger="inert.batch"):
        run(journal.collect(record))
    assert [
        "the output file of batch batch_1 read 1 lines where its counts say 2 (download 1 of 5)"
    ] == [r.getMessage() for r in caplog.records if r.name == "inert.batch"]


def test_a_short_error_file_says_nothing_is_missing(
    journal: BatchJournal, remote: Scripted
) -> None:
    remote.files["e"] = [f"{error_line('b')}\n".encode()]
    ended = batch("batch_1", "completed", (0, 2, 2), error_file_id="e")
    matcher = LineMatcher("batch_1", {"b", "c"})
    read = run(journal._read(ended, "e", matcher, 2, "error"))
    assert read is not None
    assert ([], None) == (read[0].malformed, read[1])
    assert ["b"] == [line.custom_id for line in read[0].lines]
    assert ["b"] == list(matcher.matched().lines)
    assert DOWNLOAD_ROUNDS == remote.calls.count("download e")


def test_a_failed_batch_error_without_a_message_keeps_its_line_and_code(
    journal: BatchJournal, store: Store, remote: Scripted
) -> None:
    bare = type("E", (), {"line": 3, "code": "too_large", "message": None})()
    errors = type("Errors", (), {"data": [bare]})()
    record = shard(store, ["a"])
    remote.polls["batch_1"] = [batch("batch_1", "failed", None, errors=errors)]
    assert "line 3: too_large: " == run(journal.collect(record)).batch_error


def test_known_ids_given_as_a_list_are_the_ones_matched(
    journal: BatchJournal, store: Store, remote: Scripted
) -> None:
    record = shard(store, ["a", "b"])
    remote.polls["batch_1"] = [batch("batch_1", "completed", (1, 0, 2), output_file_id="o")]
    remote.files["o"] = [f"{answer_line('a')}\n{answer_line('b')}\n".encode()]
    collected = run(journal.collect(record, known=["a"]))
    assert {"a"} == set(collected.lines)
    assert {"a": body_of("a")} == dict(store.get_responses(["a", "b"]))
    assert ["b"] == [cid for _, cid, _ in store.anomalies(record.id)]


def test_the_error_file_of_an_unfinished_batch_is_read_once(
    journal: BatchJournal, store: Store, remote: Scripted, caplog: pytest.LogCaptureFixture
) -> None:
    record = shard(store, ["a", "b", "c"])
    remote.polls["batch_1"] = [
        batch("batch_1", "expired", (1, 2, 3), output_file_id="o", error_file_id="e")
    ]
    remote.files["o"] = [f"{answer_line('a')}\n".encode()]
    remote.files["e"] = [f"{error_line('b')}\n".encode()]  # one of the two failed lines
    assert run(journal.collect(record)).incomplete is None
    assert 1 == remote.calls.count("download e")
    other = shard(store, ["d"], batch_id="batch_2")
    remote.polls["batch_2"] = [batch("batch_2", "cancelled", (0, 0, 1), error_file_id="e2")]
    remote.files["e2"] = [b""]
    assert run(journal.collect(other)).incomplete is None
    assert 1 == remote.calls.count("download e2")
    short = shard(store, ["e", "f"], batch_id="batch_3")
    remote.polls["batch_3"] = [batch("batch_3", "completed", (0, 2, 2), error_file_id="e3")]
    remote.files["e3"] = [f"{error_line('e')}\n".encode()]
    with caplog.at_level("WARNING", logger="inert.batch"):
        assert run(journal.collect(short)).incomplete is None
    said = [r.getMessage() for r in caplog.records if r.name == "inert.batch"]
    assert 5 == len(said)
    assert (
        "the error file of batch batch_3 read 1 lines where its counts say 2 (download 5 of 5)"
        == (said[-1])
    )


def test_the_decoder_is_asked_with_each_answer_body(
    journal: BatchJournal, store: Store, remote: Scripted
) -> None:
    record = shard(store, ["a", "b"])
    remote.polls["batch_1"] = [batch("batch_1", "completed", (2, 0, 2), output_file_id="o")]
    remote.files["o"] = [f"{answer_line('a')}\n{answer_line('b', 2)}\n".encode()]
    asked: list[tuple[str, Any]] = []

    def keep(cid: str, body: Any) -> bool:
        asked.append((cid, body))
        return bool(body["n"] == 2)

    run(journal.collect(record, keep=keep))
    assert [("a", body_of("a")), ("b", body_of("b", 2))] == sorted(asked)
    assert {"b": body_of("b", 2)} == dict(store.get_responses(["a", "b"]))


MALFORMED = '{"not": "a line"}'


def test_a_lost_collection_says_what_it_matched(
    journal: BatchJournal, store: Store, remote: Scripted, caplog: pytest.LogCaptureFixture
) -> None:
    record = shard(store, ["a", "b"])
    remote.polls["batch_1"] = [
        batch("batch_1", "cancelled", (2, 1, 3), output_file_id="o", error_file_id="e")
    ]
    lines = [answer_line("a"), answer_line("a", 2), answer_line("b"), MALFORMED]
    remote.files["o"] = ["\n".join(lines).encode()]
    remote.files["e"] = [not_found()]
    with caplog.at_level("WARNING", logger="inert.batch"):
        collected = run(journal.collect(record))
    assert ("lost", frozenset({"a"}), "before", True, {"b"}) == (
        collected.status,
        collected.conflicts,
        collected.cancel,
        collected.doubtful,
        set(collected.lines),
    )
    assert [
        "the error file of batch batch_1 expired before it was downloaded (404 No such File "
        "object): its answers are gone; a run of the same requests submits the unanswered "
        "lines again"
    ] == [r.getMessage() for r in caplog.records if r.name == "inert.batch"]
    assert {"b": body_of("b")} == dict(store.get_responses(["a", "b"]))


def test_a_short_collection_says_what_it_matched(
    journal: BatchJournal, store: Store, remote: Scripted
) -> None:
    record = shard(store, ["a", "b", "c", "d"])
    remote.polls["batch_1"] = [batch("batch_1", "cancelled", (4, 0, 4), output_file_id="o")]
    lines = [answer_line("a"), answer_line("a", 2), answer_line("b"), MALFORMED]
    remote.files["o"] = ["\n".join(lines).encode()]
    collected = run(journal.collect(record))
    assert ("cancelled", frozenset({"a"}), "before", True, {"b"}) == (
        collected.status,
        collected.conflicts,
        collected.cancel,
        collected.doubtful,
        set(collected.lines),
    )
    assert collected.incomplete is not None
    assert {"b": body_of("b")} == dict(store.get_responses(["a", "b"]))
    now = store.shard(record.id)
    assert ("cancelling", "cancelled", 4, 0) == (
        now.state,
        now.remote_status,
        now.completed,
        now.failed,
    )


def test_a_whole_collection_says_what_it_matched(
    journal: BatchJournal, store: Store, remote: Scripted, caplog: pytest.LogCaptureFixture
) -> None:
    record = shard(store, ["a", "b", "c"])
    remote.polls["batch_1"] = [batch("batch_1", "cancelled", (2, 0, 3), output_file_id="o")]
    lines = [answer_line("a"), answer_line("a", 2), answer_line("b"), MALFORMED]
    remote.files["o"] = ["\n".join(lines).encode()]
    with caplog.at_level("WARNING", logger="inert.batch"):
        collected = run(journal.collect(record))
    assert ("cancelled", frozenset({"a"}), "before", True, {"b"}, None) == (
        collected.status,
        collected.conflicts,
        collected.cancel,
        collected.doubtful,
        set(collected.lines),
        collected.incomplete,
    )
    now = store.shard(record.id)
    assert ("downloaded", "cancelled", 2, 0, "o") == (
        now.state,
        now.remote_status,
        now.completed,
        now.failed,
        now.output_file_id,
    )
    anomalies = store.anomalies(record.id)
    assert [
        f"anomaly in shard {record.id} (custom_id {cid}): {detail}" for _, cid, detail in anomalies
    ] == [r.getMessage() for r in caplog.records if r.name == "inert.batch"]
    assert 2 == len(anomalies)  # the conflict and the malformed line


def test_a_batch_that_vanishes_while_polled_keeps_its_first_status(
    journal: BatchJournal, store: Store, remote: Scripted
) -> None:
    record = shard(store, ["a"])
    remote.polls["batch_1"] = [batch("batch_1", "in_progress"), not_found()]
    polled = run(journal.poll(record))
    assert (None, "in_progress", False) == (polled.batch, polled.first_status, polled.cancel_seen)


class Journaled(ProgressView):
    """A progress display that notes, at each poll, the counts the journal holds."""

    def __init__(self, store: Store) -> None:
        super().__init__(False)
        self.store = store
        self.seen: list[tuple[str | None, int]] = []

    def show(self, record: ShardRecord, batch: Batch) -> None:
        now = self.store.shard(record.id)
        self.seen.append((now.remote_status, now.completed))


def test_the_journal_is_written_only_when_the_status_changes(
    journal: BatchJournal, store: Store, remote: Scripted
) -> None:
    record = shard(store, ["a", "b"])
    store.mark_remote(record.id, "in_progress", 0, 0)
    remote.polls["batch_1"] = [
        batch("batch_1", "in_progress", (1, 0, 2)),
        batch("batch_1", "in_progress", (2, 0, 2)),
        batch("batch_1", "completed", (2, 0, 2)),
    ]
    view = Journaled(store)
    run(journal.poll(store.shard(record.id), view))
    assert [("in_progress", 0)] * 3 == view.seen
    assert ("completed", 2) == (
        store.shard(record.id).remote_status,
        store.shard(record.id).completed,
    )


def test_a_batch_without_counts_is_journaled_with_none_done(
    journal: BatchJournal, store: Store, remote: Scripted
) -> None:
    record = shard(store, ["a"])
    remote.polls["batch_1"] = [
        batch("batch_1", "in_progress", None),
        batch("batch_1", "failed", None),
    ]
    run(journal.poll(record))
    now = store.shard(record.id)
    assert ("failed", 0, 0) == (now.remote_status, now.completed, now.failed)


def test_polls_wait_longer_each_time_up_to_the_longest_pause(
    journal: BatchJournal, store: Store, remote: Scripted, monkeypatch: pytest.MonkeyPatch
) -> None:
    record = shard(store, ["a"])
    running: list[Batch | BaseException] = [batch("batch_1", "in_progress")] * 4
    remote.polls["batch_1"] = [*running, batch("batch_1", "completed", (1, 0, 1))]
    waits: list[float] = []
    sleep = asyncio.sleep

    async def noted(delay: float) -> None:
        waits.append(delay)
        await sleep(0)

    monkeypatch.setattr(asyncio, "sleep", noted)
    run(journal.poll(record))
    assert [0.001, 0.0015, 0.002, 0.002] == pytest.approx(waits)


def test_after_a_new_status_the_journal_waits_for_the_next_one(
    journal: BatchJournal, store: Store, remote: Scripted
) -> None:
    record = shard(store, ["a", "b"])  # journaled as validating
    remote.polls["batch_1"] = [
        batch("batch_1", "in_progress", (1, 0, 2)),
        batch("batch_1", "in_progress", (2, 0, 2)),
        batch("batch_1", "completed", (2, 0, 2)),
    ]
    view = Journaled(store)
    run(journal.poll(record, view))
    assert [("validating", 0), ("in_progress", 1), ("in_progress", 1)] == view.seen


def test_a_stop_asked_while_polling_counts_even_when_the_batch_ended_first(
    journal: BatchJournal, store: Store, remote: Scripted
) -> None:
    record = shard(store, ["a"])
    remote.polls["batch_1"] = [
        batch("batch_1", "in_progress"),
        batch("batch_1", "completed", (1, 0, 1)),
    ]
    remote.cancels["batch_1"] = batch("batch_1", "completed", (1, 0, 1))  # too late
    polled = run(journal.poll(record, should_cancel=lambda: True))
    assert polled.cancel_seen
    assert ["retrieve batch_1", "cancel batch_1", "retrieve batch_1"] == remote.calls
    assert "created" == store.shard(record.id).state
