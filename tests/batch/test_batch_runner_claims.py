"""The batch runner's paths, fast and in one process, against the emulator.

Claims against another run's shard: a shard another run holds is journaled here by
hand (:meth:`Store.claim_shards` under that run's id, as its process would have), so
no second process and no lease has to run out: the run that needs the same lines
waits for it, with a pause that grows like the poll interval, takes it over at once
when the holder's process is known to have ended, or stops waiting when it is
cancelled. ``_claim`` is wrapped to record each pause it was called with (and to stop
a wait that would never end).

What the runner says and journals at each step: each test drives one path of a run
(unsupported endpoint, a line too large, a resubmission, a cancel between two steps,
a failed upload, collection or lookup, a re-attached batch, an output that expired)
and checks the exact error each op gets, the lines the progress display is given
(``ProgressView.log`` recorded, the display itself off), the log records and what the
journal keeps: the texts a user reads to know what happened to lines that may have
been paid for. One or two small batches each, on the emulator at ``time_scale`` 0.05.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import Any

import httpx2
import openai
import pytest
from returns.result import Failure, Result
from tests.billing import assert_billed_once

from inert import BatchRunner, Op, Request, Store, call
from inert._claims import ShardIntent
from inert._json import JSON
from inert._runners._batch import jsonl_line
from inert._runners._batch._progress import ProgressView
from inert._runners._batch._runner import STALL_LINES
from inert._store import ShardRecord
from inert.emulator import Emulator, Faults
from inert.emulator._tokens import prompt_tokens
from inert.errors import (
    ApiError,
    CancelledRequestError,
    ExpiredError,
    RateLimitError,
    RequestError,
)
from inert.openai import CHAT_COMPLETIONS
from inert.testing import op_of
from inert.testing._strategies import chat_completion

from ._support import MODEL, Words, ask
from ._transport import LossyTransport, lossy_client
from .conftest import TIME_SCALE

LONG_LEASE = 3600.0
"""The holder's lease: it never runs out during a test."""


def fast(client: openai.AsyncOpenAI, store: Store, **settings: Any) -> BatchRunner:
    """A batch runner that polls every few milliseconds and shows no progress."""
    return BatchRunner(
        client, store=store, poll_interval=0.01, poll_interval_max=0.05, progress=False, **settings
    )


def ended_pid() -> int:
    """The pid of a process that has ended (and was reaped)."""
    child = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    return int(child.stdout)


@pytest.fixture
def live_pid() -> Iterator[int]:
    """The pid of a process that runs for the whole test (then is ended)."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        yield child.pid
    finally:
        child.kill()
        child.wait()


def held_by(store: Store, run_id: str, requests: Sequence[Request[Words]], **process: Any) -> None:
    """Journal one shard of ``requests`` held by ``run_id`` (not sent), as its process would."""
    store.begin_run(run_id, {}, **process)
    store.claim_shards(
        run_id=run_id,
        keys=[op_of(r).key for r in requests],
        plan=lambda free: [ShardIntent(CHAT_COMPLETIONS, MODEL, list(free))],
        lease=LONG_LEASE,
        now=store.clock(),
    )


def record_waits(
    runner: BatchRunner,
    monkeypatch: pytest.MonkeyPatch,
    on_call: Callable[[int], None] = lambda _: None,
) -> list[float | None]:
    """The ``wait`` of each ``_claim`` call, in order; ``on_call(n)`` runs before the n-th."""
    waits: list[float | None] = []
    claim = runner._claim

    async def recorded(rnd: Any, ops: Any, wait: float | None = None) -> None:
        waits.append(wait)
        if len(waits) > 20:
            raise AssertionError(f"still waiting after {waits}")
        on_call(len(waits))
        await claim(rnd, ops, wait)

    monkeypatch.setattr(runner, "_claim", recorded)
    return waits


async def test_a_shard_of_a_run_whose_process_ended_is_taken_over_at_once(
    client: openai.AsyncOpenAI,
    store: Store,
    emu: Emulator,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Same host, no such process: its leases end now, and the lines are claimed again
    with no pause; its unsent shard has no batch, so they are submitted once."""
    requests = [ask("held one"), ask("held two")]
    held_by(store, "run_dead", requests, host=socket.gethostname(), pid=ended_pid())
    runner = fast(client, store)
    waits = record_waits(runner, monkeypatch)
    with caplog.at_level(logging.INFO, logger="inert.batch"):
        results = await runner.run_all(requests)
    assert [None, 0.0, None] == waits
    assert 2 == len(results)
    assert all(isinstance(r, Words) for r in results)
    assert ["run run_dead ended without giving up its shards: taking them"] == [
        r.getMessage() for r in caplog.records if "ended without" in r.getMessage()
    ]
    assert_billed_once(emu, [op_of(r).key for r in requests])
    assert 1 == runner.report.batches_created


async def test_a_live_holder_is_waited_for_with_a_growing_pause(
    client: openai.AsyncOpenAI, store: Store, emu: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A holder on another host may be alive: the run waits, the pause growing by half
    up to poll_interval_max, until the holder gives its shard up (here at the 7th claim)."""
    requests = [ask("live one")]
    held_by(store, "run_live", requests, host="another-host", pid=1)
    runner = fast(client, store)

    def give_up(call: int) -> None:
        if call == 7:
            store.release_leases(owner="run_live")

    waits = record_waits(runner, monkeypatch, give_up)
    results = await runner.run_all(requests)
    assert [None, 0.01, 0.015, 0.0225, 0.03375, 0.05, 0.05, None] == pytest.approx(waits)
    assert isinstance(results[0], Words)
    assert_billed_once(emu, [op_of(r).key for r in requests])


async def test_a_live_holder_on_this_host_is_waited_for(
    client: openai.AsyncOpenAI,
    store: Store,
    emu: Emulator,
    monkeypatch: pytest.MonkeyPatch,
    live_pid: int,
) -> None:
    """A holder whose process exists (a child of this test) is not taken for gone."""
    requests = [ask("live here")]
    held_by(store, "run_here", requests, host=socket.gethostname(), pid=live_pid)
    runner = fast(client, store)

    def give_up(call: int) -> None:
        if call == 3:
            store.release_leases(owner="run_here")

    waits = record_waits(runner, monkeypatch, give_up)
    results = await runner.run_all(requests)
    assert [None, 0.01, 0.015, None] == pytest.approx(waits)
    assert isinstance(results[0], Words)
    assert_billed_once(emu, [op_of(r).key for r in requests])


async def test_a_run_cancelled_while_it_waits_fails_those_lines_and_sends_nothing(
    client: openai.AsyncOpenAI, store: Store, emu: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    requests = [ask("wait one"), ask("wait two")]
    held_by(store, "run_live", requests, host="another-host", pid=1)
    runner = fast(client, store)

    def cancel(call: int) -> None:
        if call == 3:
            runner._cancel_requested = True

    waits = record_waits(runner, monkeypatch, cancel)
    results = await runner.run_all_settled(requests)
    assert [None, 0.01, 0.015] == pytest.approx(waits)
    errors = [r.failure() for r in results if isinstance(r, Failure)]
    assert 2 == len(errors)
    assert all(type(e) is CancelledRequestError for e in errors)
    assert {"the run was cancelled while it waited for another run's batch"} == {
        e.message for e in errors
    }
    assert 0 == runner.report.batches_created
    assert_billed_once(emu, [])


ENDPOINTS_SERVED = (
    "/v1/responses, /v1/chat/completions, /v1/embeddings, /v1/completions, /v1/moderations"
)


@pytest.fixture
def shown(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every line given to the progress display's log, in order (shown or not)."""
    lines: list[str] = []
    monkeypatch.setattr(ProgressView, "log", lambda self, message: lines.append(message))
    return lines


def failures(results: list[Result[Any, RequestError]]) -> list[RequestError]:
    return [r.failure() for r in results if isinstance(r, Failure)]


def described(error: RequestError) -> tuple[str, str, str | None]:
    return type(error).__name__, error.message, getattr(error, "code", None)


async def test_a_run_journals_its_process_and_sends_its_metadata(
    client: openai.AsyncOpenAI, store: Store, emu: Emulator
) -> None:
    """The run row names this host and process; the batch carries the user's metadata
    and inert's three pairs; the input file is named after the run and shard."""
    runner = fast(client, store, metadata={"team": "lexicon"})
    results = await runner.run_all([ask("meta one"), ask("meta two")])
    assert 2 == len(results)
    run_id = runner.run_id
    assert run_id is not None
    assert (socket.gethostname(), os.getpid()) == store.run_process(run_id)
    (record,) = store.shards()
    assert (run_id, 0, 1, None, None) == (
        record.run_id,
        record.shard,
        record.attempt,
        record.parent_id,
        record.owner,
    )
    assert record.batch_id is not None
    batch = await client.batches.retrieve(record.batch_id)
    assert {
        "team": "lexicon",
        "inert_run": run_id,
        "inert_shard": "0",
        "inert_digest": record.digest,
    } == batch.metadata
    uploaded = await client.files.retrieve(batch.input_file_id)
    assert f"inert-{run_id}-0.jsonl" == uploaded.filename
    assert 1 == runner.report.batches_created
    assert all(runner._phases.seconds[p] > 0 for p in ("journal", "jsonl", "upload", "create"))


async def test_ops_of_an_endpoint_the_batch_api_does_not_serve_fail_before_anything_is_sent(
    client: openai.AsyncOpenAI, store: Store, emu: Emulator
) -> None:
    def decode(raw: object) -> object:
        raise AssertionError(f"decoded {raw!r}")

    images: Request[object] = call(
        Op(endpoint="/v1/images/generations", body={"prompt": "a cat"}, decode=decode)
    )
    runner = fast(client, store)
    results = await runner.run_all_settled([images, ask("served")])
    (error,) = failures(results)
    assert (
        "ApiError",
        f"the Batch API does not serve /v1/images/generations; it serves {ENDPOINTS_SERVED}; "
        "run such requests with ImmediateRunner",
        "unsupported_endpoint",
    ) == described(error)
    assert [1] == [r.size for r in store.shards()]  # only the served op went


async def test_a_line_larger_than_max_bytes_per_batch_fails_and_is_never_sent(
    client: openai.AsyncOpenAI, store: Store, emu: Emulator
) -> None:
    request = ask("too large")
    runner = fast(client, store, max_bytes_per_batch=50)
    results = await runner.run_all_settled([request])
    (error,) = failures(results)
    assert (
        "ApiError",
        f"the batch line of {op_of(request)!r} is larger than max_bytes_per_batch "
        "(50 bytes); raise the limit or shorten the request",
        "line_too_large",
    ) == described(error)
    assert [] == store.shards()
    assert_billed_once(emu, [])


async def test_a_resubmission_is_shown_logged_journaled_and_counted(
    client: openai.AsyncOpenAI,
    store: Store,
    emu: Emulator,
    shown: list[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Every line expires at every attempt: with max_attempts=3 each line goes three times."""
    emu.set_faults(Faults(line_expired=1.0))
    requests = [ask("expiring one"), ask("expiring two")]
    runner = fast(client, store, max_attempts=3)
    with caplog.at_level(logging.INFO, logger="inert.batch"):
        results = await runner.run_all_settled(requests)
    first, second, third = store.shards()
    errors = failures(results)
    assert 2 == len(errors)
    assert all(type(e) is ExpiredError for e in errors)
    assert all(e.message.startswith(f"batch {third.batch_id}: ") for e in errors)
    assert [(1, None), (2, first.id), (3, second.id)] == [
        (r.attempt, r.parent_id) for r in (first, second, third)
    ]
    assert [
        f"resubmitted 2 lines of batch {first.batch_id} (completed), attempt 2",
        f"resubmitted 2 lines of batch {second.batch_id} (completed), attempt 3",
    ] == shown
    assert [
        f"resubmitting 2 lines of batch {first.batch_id}",
        f"resubmitting 2 lines of batch {second.batch_id}",
    ] == [r.getMessage() for r in caplog.records if r.name == "inert.batch"]
    assert (4, 3) == (runner.report.retries, runner.report.batches_created)


async def test_a_cancel_between_upload_and_create_abandons_the_shard(
    client: openai.AsyncOpenAI, store: Store, emu: Emulator, wire: LossyTransport
) -> None:
    runner = fast(client, store)
    wire.on_answer("POST", "/v1/files", lambda _: setattr(runner, "_cancel_requested", True))
    results = await runner.run_all_settled([ask("between")])
    (error,) = failures(results)
    assert (
        "CancelledRequestError",
        "the run was cancelled before this line was submitted",
        None,
    ) == described(error)
    (record,) = store.shards()
    assert ("abandoned", "cancelled before create", None) == (
        record.state,
        record.error,
        record.batch_id,
    )
    assert 0 == runner.report.batches_created


async def test_a_cancel_before_the_upload_abandons_the_intended_shard(
    client: openai.AsyncOpenAI, store: Store, emu: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = fast(client, store)
    submit = runner._submit

    async def cancelled_first(*args: Any, **kwargs: Any) -> Any:
        runner._cancel_requested = True
        return await submit(*args, **kwargs)

    monkeypatch.setattr(runner, "_submit", cancelled_first)
    results = await runner.run_all_settled([ask("before upload")])
    (error,) = failures(results)
    assert (
        "CancelledRequestError",
        "the run was cancelled before this line was submitted",
        None,
    ) == described(error)
    (record,) = store.shards()
    assert ("abandoned", "cancelled before upload", None) == (
        record.state,
        record.error,
        record.input_file_id,
    )
    assert_billed_once(emu, [])


async def test_a_run_cancelled_before_its_first_submission_sends_nothing(
    client: openai.AsyncOpenAI, store: Store, emu: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = fast(client, store)
    claim = runner._claim

    async def cancelled_first(*args: Any, **kwargs: Any) -> None:
        runner._cancel_requested = True
        await claim(*args, **kwargs)

    monkeypatch.setattr(runner, "_claim", cancelled_first)
    results = await runner.run_all_settled([ask("never sent")])
    (error,) = failures(results)
    assert (
        "CancelledRequestError",
        "the run was cancelled before this line was submitted",
        None,
    ) == described(error)
    (record,) = store.shards()
    assert (None, 0) == (record.input_file_id, runner.report.batches_created)


async def test_an_upload_that_keeps_failing_fails_its_lines_and_the_shard(
    client: openai.AsyncOpenAI, store: Store, emu: Emulator, wire: LossyTransport
) -> None:
    wire.lose("POST", "/v1/files", how="html", times=10**6)
    runner = fast(client, store)
    results = await runner.run_all_settled([ask("no upload")])
    (error,) = failures(results)
    (record,) = store.shards()
    assert ("failed", f"upload failed: {error.message}") == (record.state, record.error)
    assert 0 == runner.report.batches_created


async def test_a_collected_shard_gives_its_place_in_the_queue_back(
    client: openai.AsyncOpenAI, store: Store, emu: Emulator
) -> None:
    """With a known enqueued-token limit of one line, two lines go as two shards, one in
    the model's queue at a time: once the first is collected, its place is given back and
    the second goes (were it kept, the second would wait for it forever)."""
    requests = [ask("first of two in turn"), ask("second of two in turn")]
    one_line = max(len(jsonl_line(op_of(r)).encode()) for r in requests)
    runner = fast(client, store, enqueued_token_limit=one_line)
    results = await asyncio.wait_for(runner.run_all(requests), 120)
    assert all(isinstance(r, Words) for r in results)
    first, second = store.shards()
    assert (1, 1, 2) == (first.size, second.size, runner.report.batches_created)
    assert_billed_once(emu, [op_of(r).key for r in requests])


async def test_a_shard_that_was_never_made_gives_its_place_in_the_queue_back(
    client: openai.AsyncOpenAI, store: Store, emu: Emulator
) -> None:
    """As above, but the first upload is refused for good (a 400): that shard's place in
    the queue is given back too, so the second is submitted and answered."""
    requests = [ask("first in the queue"), ask("second in the queue")]
    one_line = max(len(jsonl_line(op_of(r)).encode()) for r in requests)
    emu.inject("files.create", "not_json", status=400)
    runner = fast(client, store, enqueued_token_limit=one_line)
    results = await asyncio.wait_for(runner.run_all_settled(requests), 120)
    (error,) = failures(results)
    refused, answered = store.shards()
    assert (1, 1) == (refused.size, answered.size)
    assert ("failed", f"upload failed: {error.message}") == (refused.state, refused.error)
    assert ("downloaded", 1) == (answered.state, runner.report.batches_created)
    assert [answered.batch_id] == emu.batch_ids()
    (key,) = store.shard_custom_ids(answered.id)
    assert_billed_once(emu, [key])


async def test_a_batch_cancelled_elsewhere_before_its_first_poll_fails_its_lines(
    client: openai.AsyncOpenAI, store: Store, emu: Emulator, wire: LossyTransport
) -> None:
    """Someone else (the dashboard, another process) cancels the batch this run has just
    created, before its first poll: that cancel happened during this run, so its lines
    fail as cancelled and are not submitted again."""
    wire.on_answer("POST", "/v1/batches", lambda answer: emu.cancel_batch(answer.json()["id"]))
    request = ask("cancelled elsewhere at once")
    runner = fast(client, store)
    results = await runner.run_all_settled([request])
    (error,) = failures(results)
    (record,) = store.shards()
    assert (
        "CancelledRequestError",
        f"batch {record.batch_id}: the line was cancelled: This request was cancelled "
        "before it ran.",
        None,
    ) == described(error)
    assert (1, 0) == (runner.report.batches_created, runner.report.retries)
    assert_billed_once(emu, [], unanswered=[op_of(request).key])


async def test_a_stop_asked_while_the_batch_is_created_cancels_it_at_its_first_poll(
    client: openai.AsyncOpenAI, store: Store, emu: Emulator, wire: LossyTransport
) -> None:
    """The run is asked to stop while its create is on the wire: the batch exists, so it is
    journaled, and the first poll cancels it (batches validate for 0.3 s here, so none of
    its lines runs first); its lines fail as cancelled and are not submitted again."""
    emu.set_time_scale(2.0)
    request = ask("stopped during create")
    runner = fast(client, store)
    wire.on_answer("POST", "/v1/batches", lambda _: setattr(runner, "_cancel_requested", True))
    results = await runner.run_all_settled([request])
    (error,) = failures(results)
    (record,) = store.shards()
    assert (
        "CancelledRequestError",
        f"batch {record.batch_id}: the line was cancelled: This request was cancelled "
        "before it ran.",
        None,
    ) == described(error)
    assert ("downloaded", "cancelled", 0) == (record.state, record.remote_status, record.completed)
    assert (1, 0) == (runner.report.batches_created, runner.report.retries)
    assert_billed_once(emu, [], unanswered=[op_of(request).key])


async def test_an_answer_its_decoder_calls_no_answer_is_not_stored(
    client: openai.AsyncOpenAI, store: Store, emu: Emulator
) -> None:
    """The op's decoder says the body is no answer (it raises an ApiError): the line was
    paid, but the body is not stored as the op's answer, and the op fails with that error."""

    def no_answer(raw: JSON) -> JSON:
        raise ApiError("this body is no answer", status=200)

    op: Op[JSON] = Op(
        endpoint=CHAT_COMPLETIONS,
        body={"model": MODEL, "messages": [{"role": "user", "content": "no answer"}]},
        decode=no_answer,
    )
    runner = fast(client, store)
    results = await runner.run_all_settled([call(op)])
    (error,) = failures(results)
    assert ("ApiError", "this body is no answer", None) == described(error)
    assert {} == dict(store.get_responses([op.key]))
    assert_billed_once(emu, [op.key])


async def test_a_create_that_keeps_failing_leaves_the_shard_uploaded_for_a_rerun(
    client: openai.AsyncOpenAI, store: Store, emu: Emulator
) -> None:
    """Every try of the create answers 429 (a refusal of the moment, not for good): no
    batch exists, each line fails with the last answer and a note that the shard stays
    journaled, and the shard stays uploaded, so a rerun looks for its batch before
    submitting it again."""
    emu.inject("batches.create", "rate_limit", count=8)
    runner = fast(client, store)
    results = await runner.run_all_settled([ask("create limited")])
    (error,) = failures(results)
    assert (RateLimitError, 429) == (type(error), getattr(error, "status", None))
    assert (
        "creating the batch: HTTP 429: Rate limit reached for requests (emulated). Please try "
        "again shortly.; the shard stays journaled, and a rerun checks whether the batch "
        "exists before submitting again"
    ) == error.message
    (record,) = store.shards()
    assert ("uploaded", None, None) == (record.state, record.batch_id, record.error)
    assert (0, []) == (runner.report.batches_created, emu.batch_ids())
    assert_billed_once(emu, [])


async def test_a_create_the_server_refuses_fails_its_lines_and_the_shard(
    client: openai.AsyncOpenAI, store: Store, emu: Emulator, wire: LossyTransport
) -> None:
    """The input file expired between its upload and the create: the server refuses the
    create for good (a 400 names the file), so no batch exists. Each line fails with that
    refusal, the shard is journaled as failed with it (a later run does not look for its
    batch), and nothing is billed."""
    wire.on_answer("POST", "/v1/files", lambda _: emu.expire_files("batch"))
    request = ask("create refused")
    runner = fast(client, store)
    results = await runner.run_all_settled([request])
    (error,) = failures(results)
    (record,) = store.shards()
    assert (
        "ApiError",
        f"creating the batch: HTTP 400: No such File object: {record.input_file_id}",
        "invalid_value",
    ) == described(error)
    assert 400 == getattr(error, "status", None)
    assert ("failed", f"create refused: {error.message}") == (record.state, record.error)
    assert (None, None) == (record.batch_id, record.owner)
    assert (0, []) == (runner.report.batches_created, emu.batch_ids())
    assert_billed_once(emu, [])


async def test_a_batch_that_cannot_be_polled_stays_in_the_journal(
    client: openai.AsyncOpenAI, store: Store, emu: Emulator, wire: LossyTransport
) -> None:
    wire.lose("GET", "/v1/batches/[^/]+", how="html", times=10**6)
    runner = fast(client, store)
    results = await runner.run_all_settled([ask("unpolled")])
    (error,) = failures(results)
    (record,) = store.shards()
    assert error.message.endswith(
        f"; could not collect batch {record.batch_id}; it stays in the journal of "
        f"{store.path}: run again (or `inert batches resume`) to collect it"
    )
    assert "created" == record.state
    assert (None, 1) == (record.owner, runner.report.batches_created)


async def test_unsent_shards_that_cannot_be_looked_up_send_nothing(
    client: openai.AsyncOpenAI, store: Store, emu: Emulator, wire: LossyTransport
) -> None:
    """A dead run's shard journaled without a batch id may have a batch: when the lookup
    fails, its lines fail instead of being submitted (and maybe paid) twice."""
    requests = [ask("unsent one"), ask("unsent two")]
    store.begin_run("run_dead", {}, host=socket.gethostname(), pid=ended_pid())
    store.claim_shards(
        run_id="run_dead",
        keys=[op_of(r).key for r in requests],
        plan=lambda free: [ShardIntent(CHAT_COMPLETIONS, MODEL, list(free))],
        lease=3600.0,
        now=store.clock(),
    )
    wire.lose("GET", "/v1/batches", how="html", times=10**6)
    runner = fast(client, store)
    results = await runner.run_all_settled(requests)
    errors = failures(results)
    assert 2 == len(errors)
    assert all(
        e.message.endswith(
            "; the batches of earlier shards carrying these requests could not be looked "
            "up, so nothing was submitted for them; run again"
        )
        for e in errors
    )
    assert 1 == len(store.shards())
    assert 0 == runner.report.batches_created
    assert_billed_once(emu, [])


async def test_a_batch_left_by_a_cancelled_run_is_re_attached_and_shown(
    client: openai.AsyncOpenAI,
    store: Store,
    emu: Emulator,
    wire: LossyTransport,
    shown: list[str],
) -> None:
    requests = [ask("left one"), ask("left two")]
    created = asyncio.Event()
    wire.on_answer("POST", "/v1/batches", lambda _: created.set())
    first = fast(client, store)
    task = asyncio.create_task(first.run_all(requests))
    await created.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    second = fast(client, store)
    results = await second.run_all(requests)
    assert all(isinstance(r, Words) for r in results)
    (record,) = store.shards()
    assert [f"re-attached batch {record.batch_id} of an earlier run (2 lines)"] == shown
    assert 0 == second.report.batches_created
    assert_billed_once(emu, [op_of(r).key for r in requests])


async def test_an_output_that_expired_before_download_is_abandoned_with_its_reason(
    client: openai.AsyncOpenAI, store: Store, emu: Emulator, wire: LossyTransport, shown: list[str]
) -> None:
    wire.on_answer(
        "GET",
        "/v1/batches/[^/]+",
        lambda _: emu.expire_files("batch_output"),
        when=lambda answer: bool(answer.json().get("status") == "completed"),
    )
    runner = fast(client, store)
    results = await runner.run_all([ask("expired output")])
    assert isinstance(results[0], Words)
    first, second = store.shards()
    assert (
        "abandoned",
        "its output or error file expired before it was downloaded; its unanswered lines "
        "were submitted again",
    ) == (first.state, first.error)
    assert [f"resubmitted 1 lines of batch {first.batch_id} (lost), attempt 2"] == shown
    assert (first.id, 2) == (second.parent_id, second.attempt)


# --- the enqueued-token limit ----------------------------------------------------------


@pytest.fixture
def full() -> Iterator[Emulator]:
    """An emulator whose gpt-4o-mini queue holds no request at all: every batch is refused."""
    with Emulator(time_scale=0.05, seed=0, enqueued_token_limit=1) as emu:
        yield emu


@pytest.fixture
async def full_client(full: Emulator, wire: LossyTransport) -> AsyncIterator[openai.AsyncOpenAI]:
    async with lossy_client(full.base_url, wire) as sdk:
        yield sdk


def refused(batch_id: str | None, lines: int) -> str:
    return (
        f"batch {batch_id} refused for the enqueued-token limit of {MODEL}; waiting for the "
        f"queue, then submitting its {lines} lines again"
    )


async def test_a_line_refused_every_time_fails_after_the_limit_of_refusals(
    full_client: openai.AsyncOpenAI,
    store: Store,
    full: Emulator,
    wire: LossyTransport,
    shown: list[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """With nothing else of the run queued, the 21st refusal of the same line ends it
    (a run that goes on past 25 batches is cancelled, so a miscount fails, not hangs)."""
    runner = fast(full_client, store)
    wire.on_answer(
        "POST",
        "/v1/batches",
        lambda _: setattr(runner, "_cancel_requested", True),
        when=lambda _: len(store.shards()) > 25,
    )
    with caplog.at_level(logging.INFO, logger="inert.batch"):
        results = await runner.run_all_settled([ask("never fits")])
    (error,) = failures(results)
    records = store.shards()
    assert 21 == len(records)
    assert (
        "ApiError",
        f"batch {records[-1].batch_id} was refused for the enqueued-token limit of {MODEL} "
        "21 times with nothing of this run queued: the queue is held by other work, or these "
        "lines alone exceed the limit; wait and run again, or raise the limit",
        "token_limit_exceeded",
    ) == described(error)
    assert [refused(r.batch_id, 1) for r in records[:-1]] == shown
    assert [
        f"batch {r.batch_id} was refused for the enqueued-token limit; waiting for capacity"
        for r in records[:-1]
    ] == [r.getMessage() for r in caplog.records if r.name == "inert.batch"]
    assert [r.id for r in records[:-1]] == [r.parent_id for r in records[1:]]
    assert {1} == {r.attempt for r in records}
    assert 0 == runner.report.retries


async def test_a_batch_refused_while_another_of_the_run_is_queued_goes_again_whole(
    store: Store, wire: LossyTransport, shown: list[str]
) -> None:
    """The server's enqueued-token limit (not told to the runner) holds either pair of
    these four lines but not both: of the two shards of two lines submitted together, the
    one created second is refused while the other is queued (batches take a second here).
    Not alone in the queue, it waits for the other to finish and goes again whole:
    halving is for a shard refused with nothing else of the run queued."""
    requests = [ask(f"queued together {i}") for i in range(4)]
    tokens = [prompt_tokens(CHAT_COMPLETIONS, op_of(r).body) for r in requests]
    limit = max(tokens[0] + tokens[1], tokens[2] + tokens[3])
    with Emulator(time_scale=1.0, seed=0, enqueued_token_limit=limit) as emu:
        async with lossy_client(emu.base_url, wire) as sdk:
            runner = fast(sdk, store, max_requests_per_batch=2)
            results = await runner.run_all(requests)
        assert all(isinstance(r, Words) for r in results)
        first, second, again = store.shards()
        turned_away = first if first.state == "failed" else second
        assert [2, 2, 2] == [first.size, second.size, again.size]
        assert (turned_away.id, 1) == (again.parent_id, again.attempt)
        assert [refused(turned_away.batch_id, 2)] == shown
        assert_billed_once(emu, [op_of(r).key for r in requests])


async def test_a_refusal_while_another_batch_of_the_run_is_queued_is_not_counted(
    store: Store, wire: LossyTransport
) -> None:
    """A line larger than the server's enqueued-token limit (not told to the runner) is
    first refused while a small batch of the same run is queued (batches take a second
    at first): that refusal is not counted, since the queue was not this line's alone.
    Once the small batch is done, the line is refused with nothing else queued, and the
    21st such refusal ends it: 22 batches for the large line in all."""
    small, large = ask("a small line"), ask("a large line: " + "many words " * 200)
    limit = prompt_tokens(CHAT_COMPLETIONS, op_of(small).body)
    with Emulator(time_scale=1.0, seed=0, enqueued_token_limit=limit) as emu:
        wire.on_answer(
            "GET",
            "/v1/batches/[^/]+",
            lambda _: emu.set_time_scale(0.05),
            when=lambda answer: bool(answer.json().get("status") == "failed"),
        )
        async with lossy_client(emu.base_url, wire) as sdk:
            runner = fast(sdk, store, max_requests_per_batch=1)
            wire.on_answer(
                "POST",
                "/v1/batches",
                lambda _: setattr(runner, "_cancel_requested", True),
                when=lambda _: len(store.shards()) > 30,
            )
            results = await runner.run_all_settled([small, large])
        assert isinstance(results[0].unwrap(), Words)
        (error,) = failures(results)
        key = op_of(large).key
        tries = [r for r in store.shards() if key in store.shard_custom_ids(r.id)]
        assert 22 == len(tries)
        assert (
            "ApiError",
            f"batch {tries[-1].batch_id} was refused for the enqueued-token limit of {MODEL} "
            "21 times with nothing of this run queued: the queue is held by other work, or "
            "these lines alone exceed the limit; wait and run again, or raise the limit",
            "token_limit_exceeded",
        ) == described(error)
        assert_billed_once(emu, [op_of(small).key])


@pytest.mark.parametrize(("lines", "halves"), [(2, [1, 1]), (3, [2, 1])])
async def test_lines_refused_alone_are_split_in_halves(
    full_client: openai.AsyncOpenAI,
    store: Store,
    full: Emulator,
    wire: LossyTransport,
    shown: list[str],
    lines: int,
    halves: list[int],
) -> None:
    """Refused with nothing else queued, a shard goes again as two halves (of an odd
    number of lines, one half has a line more); the run is cancelled once both are
    created, since they would be refused forever."""
    runner = fast(full_client, store)
    wire.on_answer(
        "POST",
        "/v1/batches",
        lambda _: setattr(runner, "_cancel_requested", True),
        when=lambda _: len(store.shards()) >= 3,
    )
    results = await runner.run_all_settled([ask(f"half {i}") for i in range(lines)])
    assert lines == len(failures(results))
    first, *rest = store.shards()
    assert (lines, halves) == (first.size, sorted((r.size for r in rest), reverse=True))
    assert [first.id, first.id] == [r.parent_id for r in rest]
    assert refused(first.batch_id, lines) == shown[0]


async def test_a_run_cancelled_while_its_refused_batch_waits_fails_its_lines(
    full_client: openai.AsyncOpenAI,
    store: Store,
    full: Emulator,
    wire: LossyTransport,
    shown: list[str],
) -> None:
    runner = fast(full_client, store)
    wire.on_answer(
        "GET",
        "/v1/batches/[^/]+",
        lambda _: setattr(runner, "_cancel_requested", True),
        when=lambda answer: bool(answer.json().get("status") == "failed"),
    )
    results = await runner.run_all_settled([ask("cancelled waiting")])
    (error,) = failures(results)
    assert (
        "CancelledRequestError",
        "the run was cancelled while waiting for capacity",
        None,
    ) == described(error)
    assert 1 == len(store.shards())
    assert [] == shown


# --- a shard that moves while this run uploads or creates it ---------------------------


async def test_a_shard_taken_over_during_its_upload_is_left_to_the_run_that_took_it(
    client: openai.AsyncOpenAI, store: Store, emu: Emulator, wire: LossyTransport
) -> None:
    """This run's lease ran out while it uploaded, and another run claimed the shard:
    this run journals nothing more for it and creates no batch (that run submits it)."""
    request = ask("taken during upload")
    runner = fast(client, store)

    def take_over(_: object) -> None:
        assert runner.run_id is not None
        store.expire_leases(owner=runner.run_id, now=store.clock())
        store.begin_run("run_other", {}, host="another-host", pid=1)
        store.claim_shards(
            run_id="run_other",
            keys=[op_of(request).key],
            plan=lambda free: [],
            lease=LONG_LEASE,
            now=store.clock(),
        )

    wire.on_answer("POST", "/v1/files", take_over)
    results = await runner.run_all_settled([request])
    (error,) = failures(results)
    (record,) = store.shards()
    assert (
        "ApiError",
        f"another run took shard {record.id} over while this run uploaded it (this run's "
        "lease of 60 s ran out): that run submits it",
        "shard_taken_over",
    ) == described(error)
    assert ("intended", "run_other", None) == (record.state, record.owner, record.batch_id)
    assert 0 == runner.report.batches_created


async def test_a_shard_abandoned_during_its_upload_is_not_created(
    client: openai.AsyncOpenAI, store: Store, emu: Emulator, wire: LossyTransport
) -> None:
    """A cancel in another process abandoned the shard while this run uploaded it."""
    runner = fast(client, store)

    def abandon(_: object) -> None:
        (record,) = store.shards()
        store.transition(record.id, ("intended",), "abandoned", error="cancelled elsewhere")

    wire.on_answer("POST", "/v1/files", abandon)
    results = await runner.run_all_settled([ask("abandoned during upload")])
    (error,) = failures(results)
    assert (
        "CancelledRequestError",
        "the run was cancelled before this line was submitted",
        None,
    ) == described(error)
    (record,) = store.shards()
    assert ("abandoned", "cancelled elsewhere", None) == (
        record.state,
        record.error,
        record.batch_id,
    )
    assert 0 == runner.report.batches_created


async def test_a_batch_created_for_a_shard_abandoned_meanwhile_is_still_journaled(
    client: openai.AsyncOpenAI, store: Store, emu: Emulator, wire: LossyTransport
) -> None:
    """The batch exists and will be paid: it is journaled whatever became of the shard,
    and collected, never submitted again."""
    request = ask("abandoned during create")
    runner = fast(client, store)

    def abandon(_: object) -> None:
        (record,) = store.shards()
        store.transition(record.id, ("uploaded",), "abandoned", error="cancelled elsewhere")

    wire.on_answer("POST", "/v1/batches", abandon)
    results = await runner.run_all_settled([request])
    (record,) = store.shards()
    assert record.batch_id is not None
    assert 1 == runner.report.batches_created
    assert isinstance(results[0].unwrap(), Words)
    assert "downloaded" == record.state
    assert_billed_once(emu, [op_of(request).key])


@pytest.mark.parametrize("found_by_holder", [False, True], ids=["unsent", "found"])
async def test_a_batch_created_for_a_shard_taken_over_meanwhile_is_journaled_for_its_holder(
    client: openai.AsyncOpenAI,
    store: Store,
    emu: Emulator,
    wire: LossyTransport,
    found_by_holder: bool,
) -> None:
    """This run's lease ran out while it created the batch, and another run claimed the
    uploaded shard: the batch exists and will be paid, so it is journaled on that shard,
    which stays the other run's: this run stores the answers it collects but leaves the
    shard to its holder, which never submits it again. When the holder has already found
    the batch and journaled it (``found``), this run collects the shard as it is now."""
    request = ask("taken during create")
    runner = fast(client, store)

    def take_over(answer: httpx2.Response) -> None:
        assert runner.run_id is not None
        store.expire_leases(owner=runner.run_id, now=store.clock())
        store.begin_run("run_other", {}, host="another-host", pid=1)
        store.claim_shards(
            run_id="run_other",
            keys=[op_of(request).key],
            plan=lambda free: [],
            lease=LONG_LEASE,
            now=store.clock(),
        )
        if found_by_holder:
            (record,) = store.shards()
            batch = answer.json()
            store.mark_created(record.id, batch["id"], batch["status"], held_by="run_other")

    wire.on_answer("POST", "/v1/batches", take_over)
    results = await runner.run_all_settled([request])
    (record,) = store.shards()
    assert [record.batch_id] == emu.batch_ids()
    assert ("run_other", 1) == (record.owner, runner.report.batches_created)
    assert "created" == record.state  # closed by its holder, not by this run
    assert isinstance(results[0].unwrap(), Words)  # this run still stores what it paid for
    assert_billed_once(emu, [op_of(request).key])


async def test_lines_another_run_answers_while_this_one_waits_are_cache_hits(
    client: openai.AsyncOpenAI, store: Store, emu: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The holder stored the answer (as its collection does): this run takes it from the
    store, counts it a cache hit and sends nothing."""
    request = ask("answered elsewhere")
    held_by(store, "run_live", [request], host="another-host", pid=1)
    runner = fast(client, store)
    answer = Words(words=["stored", "elsewhere"])

    def answer_it(call: int) -> None:
        if call == 3:
            body = chat_completion(answer, model=MODEL)
            store.put_responses([(op_of(request), body)], source="batch")

    waits = record_waits(runner, monkeypatch, answer_it)
    assert [answer] == await runner.run_all([request])
    assert [None, 0.01, 0.015] == pytest.approx(waits)
    assert (1, 0) == (runner.report.cache_hits, runner.report.batches_created)
    assert_billed_once(emu, [])


async def leave_a_batch(
    client: openai.AsyncOpenAI,
    store: Store,
    wire: LossyTransport,
    requests: Sequence[Request[Words]],
) -> ShardRecord:
    """A run that created a batch for ``requests`` and stopped (its task cancelled) before
    collecting it, as a killed process leaves it: the shard, journaled ``created``."""
    created = asyncio.Event()
    wire.on_answer("POST", "/v1/batches", lambda _: created.set())
    task = asyncio.create_task(fast(client, store).run_all(requests))
    await created.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    (record,) = store.shards()
    return record


async def test_a_re_attached_batch_stores_every_line_of_its_shard(
    client: openai.AsyncOpenAI, store: Store, emu: Emulator, wire: LossyTransport
) -> None:
    """The new run asks for one of the shard's two lines: the other line's answer, paid
    for too, is stored all the same, so asking for it later sends nothing."""
    one, two = ask("kept one"), ask("kept two")
    await leave_a_batch(client, store, wire, [one, two])
    first = fast(client, store)
    (answer,) = await first.run_all([one])
    assert isinstance(answer, Words)
    assert op_of(two).key in store.get_responses([op_of(two).key])
    later = fast(client, store)
    assert isinstance((await later.run_all([two]))[0], Words)
    assert (0, 0, 1) == (
        first.report.batches_created,
        later.report.batches_created,
        later.report.cache_hits,
    )
    assert_billed_once(emu, [op_of(one).key, op_of(two).key])


async def test_lines_of_a_re_attached_batch_go_again_in_shards_of_this_runs_size(
    client: openai.AsyncOpenAI, store: Store, emu: Emulator, wire: LossyTransport
) -> None:
    """An earlier run left a batch of two lines, both of which expire. This run, with
    shards of one line, collects it and submits each line again in a shard of its own."""
    emu.set_faults(Faults(line_expired=1.0))
    requests = [ask("left and expired one"), ask("left and expired two")]
    left = await leave_a_batch(client, store, wire, requests)
    emu.set_faults(Faults())
    runner = fast(client, store, max_requests_per_batch=1)
    results = await runner.run_all(requests)
    assert all(isinstance(r, Words) for r in results)
    first, *again = store.shards()
    assert (left.id, 2) == (first.id, first.size)
    assert [(1, left.id, 2)] * 2 == [(r.size, r.parent_id, r.attempt) for r in again]
    assert_billed_once(emu, [op_of(r).key for r in requests])


async def test_lines_of_a_re_attached_batch_keep_its_stall_count_when_split(
    client: openai.AsyncOpenAI, store: Store, emu: Emulator, wire: LossyTransport
) -> None:
    """As above, but the lines keep expiring: the left batch counts as an attempt of two
    lines that answered none, so each line, now in a shard of its own, gets the 6 tries
    that bring the count to STALL_LINES (8), not 8 tries more."""
    emu.set_faults(Faults(line_expired=1.0))
    requests = [ask("left and stalled one"), ask("left and stalled two")]
    left = await leave_a_batch(client, store, wire, requests)
    runner = fast(client, store, max_requests_per_batch=1)
    results = await runner.run_all_settled(requests)
    assert [ExpiredError, ExpiredError] == [type(e) for e in failures(results)]
    first, *again = store.shards()
    assert (left.id, 2, 12) == (first.id, first.size, len(again))
    assert {1} == {r.size for r in again}
    assert_billed_once(emu, [])


@pytest.mark.parametrize("lines", [2, STALL_LINES])
async def test_a_batch_cancelled_before_this_run_found_it_is_asked_anew(
    client: openai.AsyncOpenAI, store: Store, emu: Emulator, wire: LossyTransport, lines: int
) -> None:
    """A killed run's batch, cancelled by `inert batches cancel` before this run: its
    unanswered lines are submitted again (this run was not cancelled), all answered. That
    attempt does not count towards the stall: STALL_LINES lines unanswered by it still go
    again."""
    requests = [ask(f"cancelled {i}") for i in range(lines)]
    emu.set_time_scale(4.0)  # the batch runs for seconds: the cancel finds it running
    await leave_a_batch(client, store, wire, requests)
    emu.set_time_scale(TIME_SCALE)  # the batches submitted again run at the usual pace
    cancelled = await fast(client, store).cancel_all()
    assert 1 == len(cancelled)
    runner = fast(client, store)
    results = await runner.run_all(requests)
    assert all(isinstance(r, Words) for r in results)
    first, *again = store.shards()
    assert first.remote_status in ("cancelling", "cancelled")
    assert all(r.parent_id == first.id for r in again)


@pytest.mark.parametrize("lines", [1, STALL_LINES])
async def test_lines_of_a_batch_the_server_does_not_have_are_asked_anew(
    client: openai.AsyncOpenAI, store: Store, emu: Emulator, lines: int
) -> None:
    """A run that ended journaled a batch the server does not know (one of another
    account, say): this run finds it missing and asks its lines anew, all answered. That
    attempt never ran, so it does not count towards the stall, even for STALL_LINES
    lines."""
    requests = [ask(f"never there {i}") for i in range(lines)]
    held_by(store, "run_ended", requests, host=socket.gethostname(), pid=ended_pid())
    (record,) = store.shards()
    store.mark_created(record.id, "batch_not_at_this_server", "in_progress")
    runner = fast(client, store)
    results = await runner.run_all(requests)
    assert all(isinstance(r, Words) for r in results)
    first, *again = store.shards()
    assert ("failed", "missing") == (first.state, first.remote_status)
    assert {first.id} == {r.parent_id for r in again}
    assert_billed_once(emu, [op_of(r).key for r in requests])


# --- how long resubmission goes on ------------------------------------------------------


async def test_a_lone_line_that_never_runs_gets_stall_lines_tries(
    client: openai.AsyncOpenAI, store: Store, emu: Emulator
) -> None:
    """Each attempt ran and answered nothing: the resubmissions stop after STALL_LINES
    lines without an answer (8 tries of one line), well before max_attempts."""
    emu.set_faults(Faults(line_expired=1.0))
    runner = fast(client, store, max_attempts=20)
    results = await runner.run_all_settled([ask("always expires")])
    (error,) = failures(results)
    assert type(error) is ExpiredError
    assert 8 == len(store.shards())
    assert 7 == runner.report.retries


OTHER_BODY: dict[str, Any] = {
    "model": MODEL,
    "messages": [{"role": "user", "content": "another client's work " * 60}],
}
"""Another client's request, large enough to fill the enqueued-token limit of
:func:`queue_filler` alone."""


def queue_filler(emu: Emulator, time_scale: float) -> Callable[[object], None]:
    """``on_answer`` action: another client submits a batch of :data:`OTHER_BODY`, whose
    run lasts as at ``time_scale`` (this run's batches stay at 0.05)."""

    def fill(_: object) -> None:
        emu.set_time_scale(time_scale)
        with openai.OpenAI(base_url=emu.base_url, api_key="sk-other") as other:
            line = {"custom_id": "other", "method": "POST", "url": CHAT_COMPLETIONS}
            content = json.dumps({**line, "body": OTHER_BODY}).encode()
            uploaded = other.files.create(file=("other.jsonl", content), purpose="batch")
            other.batches.create(
                input_file_id=uploaded.id, endpoint=CHAT_COMPLETIONS, completion_window="24h"
            )
        emu.set_time_scale(0.05)

    return fill


@pytest.mark.parametrize(
    ("time_scale", "ran", "turned_away"),
    [(0.5, 8, None), (1000.0, 1, 21)],
    ids=["for-a-while", "for-good"],
)
async def test_tries_refused_after_a_try_that_answered_nothing_are_counted_apart(
    store: Store, wire: LossyTransport, time_scale: float, ran: int, turned_away: int | None
) -> None:
    """Every line expires unanswered. After this run's first try, another client's batch
    fills the server's enqueued-token limit, so the next tries are refused (they never
    ran). For a while: the tries that ran still stop at STALL_LINES lines without an
    answer (8), counted across the refusals. For good: the line fails at its 21st
    refusal with nothing of this run queued, counted from the first refusal."""
    request = ask("expires, then waits for the queue")
    limit = prompt_tokens(CHAT_COMPLETIONS, OTHER_BODY)
    assert prompt_tokens(CHAT_COMPLETIONS, op_of(request).body) < limit
    with Emulator(
        time_scale=0.05, seed=0, enqueued_token_limit=limit, faults=Faults(line_expired=1.0)
    ) as emu:
        wire.on_answer(
            "GET",
            "/v1/batches/[^/]+",
            queue_filler(emu, time_scale),
            when=lambda answer: bool(answer.json().get("status") == "completed"),
        )
        async with lossy_client(emu.base_url, wire) as sdk:
            runner = fast(sdk, store, max_attempts=20)
            wire.on_answer(
                "POST",
                "/v1/batches",
                lambda _: setattr(runner, "_cancel_requested", True),
                when=lambda _: len(store.shards()) > 40,
            )
            results = await runner.run_all_settled([request])
        (error,) = failures(results)
        records = store.shards()
        refused_tries = [r for r in records if "token_limit_exceeded" in (r.error or "")]
        assert ran == len(records) - len(refused_tries)
        if turned_away is None:
            assert type(error) is ExpiredError
            assert refused_tries  # the queue was full for some tries
        else:
            assert ("ApiError", "token_limit_exceeded") == (
                type(error).__name__,
                getattr(error, "code", None),
            )
            assert turned_away == len(refused_tries)
        assert_billed_once(emu, [])  # every line of both clients expired unanswered


async def test_a_line_left_unanswered_by_an_attempt_that_answered_another_gets_stall_lines_tries(
    store: Store, wire: LossyTransport
) -> None:
    """The first attempt answers one of two lines (with the emulator's seed 2, half the
    lines expiring: the other one expires), then every line expires: that attempt
    answered, so the stall count starts afresh and the unanswered line gets STALL_LINES
    (8) more tries on its own."""
    with Emulator(time_scale=0.05, seed=2, faults=Faults(line_expired=0.5)) as emu:
        wire.on_answer("POST", "/v1/batches", lambda _: emu.set_faults(Faults(line_expired=1.0)))
        async with lossy_client(emu.base_url, wire) as sdk:
            runner = fast(sdk, store, max_attempts=20)
            results = await runner.run_all_settled([ask("answered one"), ask("stalled two")])
        (error,) = failures(results)
        assert type(error) is ExpiredError
        first, *again = store.shards()
        assert (2, 1, 1) == (first.size, first.completed, first.failed)
        assert (8, {1}) == (len(again), {r.size for r in again})


async def test_a_line_whose_output_keeps_expiring_goes_again_up_to_max_attempts(
    client: openai.AsyncOpenAI, store: Store, emu: Emulator, wire: LossyTransport
) -> None:
    """An output that expired before download says nothing about the line: it does not
    count towards the stall, only max_attempts ends it."""
    wire.on_answer(
        "GET",
        "/v1/batches/[^/]+",
        lambda _: emu.expire_files("batch_output"),
        when=lambda answer: bool(answer.json().get("status") == "completed"),
        times=10**6,
    )
    runner = fast(client, store, max_attempts=10)
    results = await runner.run_all_settled([ask("output always expires")])
    (error,) = failures(results)
    assert ("ApiError", "output_expired") == (type(error).__name__, getattr(error, "code", None))
    records = store.shards()
    assert 10 == len(records)
    assert {"abandoned"} == {r.state for r in records[:-1]}


async def test_a_resubmitted_shard_is_held_by_the_run_with_its_lease_and_tokens(
    client: openai.AsyncOpenAI, store: Store, emu: Emulator, wire: LossyTransport
) -> None:
    """The shard journaled for lines submitted again is this run's, under a fresh lease
    (no other run takes it while it runs), and carries the lines' token estimate."""
    emu.set_faults(Faults(line_expired=1.0))
    runner = fast(client, store, max_attempts=2)
    seen: list[ShardRecord] = []
    before = store.clock()

    def look(_: object) -> None:
        records = store.shards()
        if len(records) == 2:
            seen.append(records[1])

    wire.on_answer("POST", "/v1/files", look, times=2)
    await runner.run_all_settled([ask("held again one"), ask("held again two")])
    first, second = store.shards()
    (held,) = seen
    assert runner.run_id == held.owner
    assert held.lease_expires_at is not None
    assert before + 60 <= held.lease_expires_at <= store.clock() + 60
    assert 0 < first.tokens == second.tokens


async def test_a_line_to_submit_again_stays_claimed_until_its_new_shard_takes_it(
    client: openai.AsyncOpenAI,
    store: Store,
    emu: Emulator,
    wire: LossyTransport,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The line expired in its first batch and goes again: when its new shard is about to
    be journaled, another run asking for the same line finds it held, so it cannot submit
    it meanwhile (it would be paid twice)."""
    request = ask("claimed while it goes again")
    emu.set_faults(Faults(line_expired=1.0))
    wire.on_answer("POST", "/v1/batches", lambda _: emu.set_faults(Faults()))
    runner = fast(client, store)
    submit = runner._submit
    seen: list[tuple[int, int]] = []

    async def look_then_submit(*args: Any, **kwargs: Any) -> Any:
        if args[2] is not None:  # a parent: the line goes again
            store.begin_run("run_other", {}, host="another-host", pid=1)
            claim = store.claim_shards(
                run_id="run_other",
                keys=[op_of(request).key],
                plan=lambda free: (
                    [ShardIntent(CHAT_COMPLETIONS, MODEL, list(free))] if free else []
                ),
                lease=LONG_LEASE,
                now=store.clock(),
            )
            seen.append((len(claim.records), len(claim.held)))
        return await submit(*args, **kwargs)

    monkeypatch.setattr(runner, "_submit", look_then_submit)
    (answer,) = await runner.run_all([request])
    assert isinstance(answer, Words)
    assert [(0, 1)] == seen
    assert_billed_once(emu, [op_of(request).key])


async def test_a_cancelled_run_leaves_alone_a_shard_another_run_took_over(
    client: openai.AsyncOpenAI, store: Store, emu: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The run is cancelled after another run took its shard over (its lease ran out):
    it abandons only what it still holds, so the other run's shard stays as it is."""
    request = ask("taken then cancelled")
    runner = fast(client, store)
    submit = runner._submit

    async def taken_then_cancelled(*args: Any, **kwargs: Any) -> Any:
        assert runner.run_id is not None
        store.expire_leases(owner=runner.run_id, now=store.clock())
        store.begin_run("run_other", {}, host="another-host", pid=1)
        store.claim_shards(
            run_id="run_other",
            keys=[op_of(request).key],
            plan=lambda free: [],
            lease=LONG_LEASE,
            now=store.clock(),
        )
        runner._cancel_requested = True
        return await submit(*args, **kwargs)

    monkeypatch.setattr(runner, "_submit", taken_then_cancelled)
    results = await runner.run_all_settled([request])
    assert [CancelledRequestError] == [type(e) for e in failures(results)]
    (record,) = store.shards()
    assert ("intended", "run_other", None) == (record.state, record.owner, record.error)
