"""The batch runner's settings and small helpers, exactly (no emulator, no batch sent).

Unit-level: which settings a ``BatchRunner`` refuses and the exact message, what it
keeps, how a failure is amended with a note without losing its status, code and
body, and which answers the runner may store. ``tests/batch/test_batch_runner.py``
runs the runner itself against the emulator.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest
from returns.result import Failure, Success

from inert import BatchRunner, Op, Store
from inert._engine import RawOutcome
from inert._errors import (
    ApiError,
    ConnectionFailedError,
    RateLimitError,
    RefusalError,
    RequestError,
)
from inert._json import JSON
from inert._pricing import DEFAULT_PRICES, Price
from inert._runners._batch._output import Collected, OutputLine
from inert._runners._batch._runner import (
    DEFAULT_MAX_ATTEMPTS,
    STALL_LINES,
    _bare,
    _keeper,
    _process_gone,
    _Run,
    amended,
)
from inert.anthropic import message
from inert.errors import MissingClientError, StoreError


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store(tmp_path / "units.sqlite3") as opened:
        yield opened


@pytest.fixture
def client() -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url="http://127.0.0.1:9/v1", api_key="sk-units")


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"poll_interval": 0}, "poll_interval must be a positive number; got 0"),
        ({"poll_interval": -1.5}, "poll_interval must be a positive number; got -1.5"),
        ({"poll_interval": True}, "poll_interval must be a positive number; got True"),
        ({"poll_interval": "5"}, "poll_interval must be a positive number; got '5'"),
        ({"poll_interval_max": 0.0}, "poll_interval_max must be a positive number; got 0.0"),
        ({"lease": 0}, "lease must be a positive number; got 0"),
        ({"lease": None}, "lease must be a positive number; got None"),
        (
            {"poll_interval": 5, "poll_interval_max": 1},
            "poll_interval_max (1) must be at least poll_interval (5)",
        ),
        (
            {"max_requests_per_batch": 50_001},
            "max_requests_per_batch must be an integer from 1 to 50,000; got 50001",
        ),
        (
            {"max_requests_per_batch": 0},
            "max_requests_per_batch must be an integer from 1 to 50,000; got 0",
        ),
        (
            {"max_requests_per_batch": 10.0},
            "max_requests_per_batch must be an integer from 1 to 50,000; got 10.0",
        ),
        (
            {"max_bytes_per_batch": 200 * 1024 * 1024 + 1},
            "max_bytes_per_batch must be an integer from 1 to 209,715,200; got 209715201",
        ),
        ({"max_attempts": 101}, "max_attempts must be an integer from 1 to 100; got 101"),
        ({"max_attempts": True}, "max_attempts must be an integer from 1 to 100; got True"),
        (
            {"completion_window": "1h"},
            "completion_window must be '24h' (the only window OpenAI accepts); got '1h'",
        ),
        (
            {"metadata": {f"k{i}": "v" for i in range(14)}},
            "metadata must be at most 13 pairs of strings (keys up to 64 characters, values "
            "up to 512); inert adds three pairs of its own",
        ),
        (
            {"metadata": {"k" * 65: "v"}},
            "metadata must be at most 13 pairs of strings (keys up to 64 characters, values "
            "up to 512); inert adds three pairs of its own",
        ),
        (
            {"metadata": {"k": "v" * 513}},
            "metadata must be at most 13 pairs of strings (keys up to 64 characters, values "
            "up to 512); inert adds three pairs of its own",
        ),
        (
            {"metadata": {"k": 1}},
            "metadata must be at most 13 pairs of strings (keys up to 64 characters, values "
            "up to 512); inert adds three pairs of its own",
        ),
        (
            {"metadata": {"inert_run": "x", "ok": "y", "inert_x": "z"}},
            "metadata keys starting with 'inert_' are reserved: ['inert_run', 'inert_x']",
        ),
    ],
)
def test_a_setting_out_of_range_is_refused_with_its_message(
    client: openai.AsyncOpenAI, store: Store, settings: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        BatchRunner(client, store=store, **settings)


def test_a_store_that_is_no_store_is_refused(client: openai.AsyncOpenAI, tmp_path: Path) -> None:
    not_a_store: Any = str(tmp_path / "x.sqlite3")  # what an untyped caller may pass
    with pytest.raises(
        TypeError, match=r"^BatchRunner needs store=Store\(path\) for its journal; got str$"
    ):
        BatchRunner(client, store=not_a_store)


def test_settings_at_their_limits_are_kept(client: openai.AsyncOpenAI, store: Store) -> None:
    runner = BatchRunner(
        client,
        store=store,
        poll_interval=2,
        poll_interval_max=2,
        max_requests_per_batch=50_000,
        max_bytes_per_batch=1,
        max_attempts=100,
        metadata={f"k{i}": "v" * 512 for i in range(12)} | {"k" * 64: "v"},
        lease=3,
        progress=False,
    )
    assert store is runner.store
    assert 3.0 == runner.lease
    assert isinstance(runner.lease, float)
    assert runner.run_id is None
    assert f"BatchRunner(store={store!r})" == repr(runner)
    assert (2, 2, 50_000, 1, 100) == (
        runner._poll_interval,
        runner._poll_interval_max,
        runner._max_requests,
        runner._max_bytes,
        runner._max_attempts,
    )
    assert 13 == len(runner._metadata)


def test_the_defaults(client: openai.AsyncOpenAI, store: Store) -> None:
    runner = BatchRunner(client, store=store, progress=False)
    assert (5.0, 60.0, 50_000, 200 * 1024 * 1024, 10, 60.0, {}) == (
        runner._poll_interval,
        runner._poll_interval_max,
        runner._max_requests,
        runner._max_bytes,
        runner._max_attempts,
        runner.lease,
        runner._metadata,
    )
    assert (10, 8) == (DEFAULT_MAX_ATTEMPTS, STALL_LINES)
    assert not runner._progress
    assert (5.0, 60.0) == (runner._journal.poll_interval, runner._journal.poll_interval_max)
    assert ["openai"] == list(runner._journal.remotes)


def test_a_note_is_added_to_a_failure_keeping_its_kind_and_details() -> None:
    body: JSON = {"error": {"message": "slow down"}}
    limited = amended(RateLimitError("limited", status=429, code="rate", body=body), "retried")
    assert isinstance(limited, RateLimitError)
    assert ("limited; retried", 429, "rate", body) == (
        limited.message,
        limited.status,
        limited.code,
        limited.body,
    )
    api = amended(ApiError("bad", status=400, code="invalid", body="text"), "in batch b")
    assert type(api) is ApiError
    assert ("bad; in batch b", 400, "invalid", "text") == (
        api.message,
        api.status,
        api.code,
        api.body,
    )
    dropped = amended(ConnectionFailedError("dropped"), "twice")
    assert type(dropped) is ConnectionFailedError
    assert "dropped; twice" == dropped.message
    other = amended(RefusalError("no", refusal="I won't"), "noted")
    assert type(other) is RequestError
    assert "no; noted" == other.message


def test_an_answer_is_kept_unless_its_decoder_says_it_is_no_answer() -> None:
    def strict(raw: JSON) -> JSON:
        if isinstance(raw, dict) and "error" in raw:
            raise ApiError("no answer", status=400)
        if raw == "broken":
            raise ValueError("a bug in the decoder")
        return raw

    op: Op[JSON] = Op(endpoint="/v1/chat/completions", body={"x": 1}, decode=strict)
    keep = _keeper({op.key: op})
    assert keep(op.key, {"ok": True})
    assert not keep(op.key, {"error": {"message": "x"}})
    assert keep(op.key, "broken")  # a bug in the decoder is not the server's: kept
    assert keep("unknown", {"error": {"message": "x"}})  # no op to ask: kept


def test_an_outcome_is_passed_on_without_its_wrapper() -> None:
    error = ApiError("bad", status=400)
    assert {"a": 1} == _bare(Success({"a": 1}))
    assert error is _bare(Failure(error))


# --- what a collected batch means for each of its ops -------------------------------

BATCH = "batch_u1"


def _as_is(raw: JSON) -> JSON:
    return raw


OP: Op[JSON] = Op(endpoint="/v1/chat/completions", body={"unit": "outcome"}, decode=_as_is)
ANSWER: JSON = {"id": "chatcmpl-1", "choices": []}


def _line(status: int | None, body: JSON = None, error: JSON = None) -> OutputLine:
    return OutputLine(OP.key, status, body, error)


def _collected(
    status: str = "completed", line: OutputLine | None = None, **fields: Any
) -> Collected:
    return Collected(BATCH, status, {} if line is None else {OP.key: line}, **fields)


Shown = tuple[bool, str, str, str | None]


def _shown(result: tuple[bool, RawOutcome]) -> Shown:
    """``(retryable, kind, message, code)`` of an outcome; a success shows its body."""
    retryable, outcome = result
    if isinstance(outcome, Success):
        return retryable, "Success", repr(outcome.unwrap()), None
    error: RequestError = outcome.failure()
    return retryable, type(error).__name__, error.message, getattr(error, "code", None)


NOT_RUN = f"batch {BATCH} was cancelled before this line ran"
NO_LINE = f"batch {BATCH} (completed) returned no line for {OP!r} in its output or error file"
OUTCOMES: list[tuple[str, Collected, bool, Shown]] = [
    (
        "a failed batch fails its lines for good, whatever line it has",
        _collected("failed", _line(200, ANSWER), batch_error="too big", batch_error_code="big"),
        False,
        (False, "ApiError", f"batch {BATCH} failed: too big", "big"),
    ),
    (
        "conflicting lines fail the op and are not resubmitted",
        _collected(line=None, conflicts=frozenset({OP.key})),
        False,
        (
            False,
            "ApiError",
            f"batch {BATCH} returned two different lines for {OP!r}; neither was stored "
            "(`inert batches show` lists the anomaly); run again to ask anew",
            "conflicting_lines",
        ),
    ),
    (
        "an answer",
        _collected(line=_line(200, ANSWER)),
        False,
        (False, "Success", repr(ANSWER), None),
    ),
    (
        "an answer, even when the run was asked to stop",
        _collected("cancelled", _line(200, ANSWER), cancel="during"),
        True,
        (False, "Success", repr(ANSWER), None),
    ),
    (
        "a line that failed with a 500 may go again",
        _collected(line=_line(500, {"error": {"message": "boom", "code": "server"}})),
        False,
        (True, "ApiError", f"batch {BATCH}: HTTP 500: boom", "server"),
    ),
    (
        "a line that failed with a 500 stays retryable when the run stops (the runner "
        "decides not to resubmit)",
        _collected(line=_line(500, {"error": {"message": "boom", "code": "server"}})),
        True,
        (True, "ApiError", f"batch {BATCH}: HTTP 500: boom", "server"),
    ),
    (
        "a line that failed with a 400 does not go again",
        _collected(line=_line(400, {"error": {"message": "bad", "code": "invalid"}})),
        False,
        (False, "ApiError", f"batch {BATCH}: HTTP 400: bad", "invalid"),
    ),
    (
        "a line the window cancelled may go again",
        _collected(line=_line(None, error={"code": "batch_cancelled", "message": "window"})),
        False,
        (True, "CancelledRequestError", f"batch {BATCH}: the line was cancelled: window", None),
    ),
    (
        "a line cancelled while the run was asked to stop is not offered again",
        _collected(line=_line(None, error={"code": "batch_cancelled", "message": "window"})),
        True,
        (False, "CancelledRequestError", f"batch {BATCH}: the line was cancelled: window", None),
    ),
    (
        "a line that expired when the run stops stays retryable",
        _collected(line=_line(None, error={"code": "batch_expired", "message": "late"})),
        True,
        (True, "ExpiredError", f"batch {BATCH}: the line expired before it ran: late", None),
    ),
    (
        "an output that could not be read in full: nothing is resubmitted",
        _collected("missing", incomplete="the output was cut"),
        True,
        (False, "ApiError", "the output was cut", "incomplete_output"),
    ),
    (
        "a batch the server no longer knows: its lines go again",
        _collected("missing"),
        True,
        (
            True,
            "ApiError",
            f"the batch {BATCH} no longer exists, and every resubmission of this line failed too",
            "batch_missing",
        ),
    ),
    (
        "a batch whose output expired before download: its lines go again",
        _collected("lost", cancel="during"),
        True,
        (
            True,
            "ApiError",
            f"the output of batch {BATCH} expired before it was downloaded, and every "
            "resubmission of this line failed too",
            "output_expired",
        ),
    ),
    (
        "no line when the run was asked to stop",
        _collected(),
        True,
        (False, "CancelledRequestError", NOT_RUN, None),
    ),
    (
        "no line of a batch cancelled while this run drove it",
        _collected("cancelled", cancel="during"),
        False,
        (False, "CancelledRequestError", NOT_RUN, None),
    ),
    (
        "no line of a batch cancelled before this run found it: asked anew",
        _collected("cancelled", cancel="before"),
        False,
        (True, "CancelledRequestError", NOT_RUN, None),
    ),
    (
        "no line of a batch still cancelling before this run found it: asked anew",
        _collected("cancelling"),
        False,
        (True, "CancelledRequestError", NOT_RUN, None),
    ),
    (
        "no line of an expired batch",
        _collected("expired"),
        False,
        (True, "ExpiredError", f"batch {BATCH} expired before this line ran", None),
    ),
    (
        "no line in a completed batch: asked again",
        _collected(),
        False,
        (True, "ApiError", NO_LINE, "missing_line"),
    ),
    (
        "no line in a completed batch with unmatched lines: it may have been paid",
        _collected(doubtful=True),
        False,
        (False, "ApiError", NO_LINE, "missing_line"),
    ),
]


@pytest.mark.parametrize(
    ("collected", "stop", "expected"),
    [case[1:] for case in OUTCOMES],
    ids=[case[0] for case in OUTCOMES],
)
def test_each_op_of_a_collected_batch_gets_its_outcome(
    client: openai.AsyncOpenAI, store: Store, collected: Collected, stop: bool, expected: Shown
) -> None:
    runner = BatchRunner(client, store=store, progress=False)
    assert expected == _shown(runner._outcome(OP, collected, stop))


def test_an_error_status_of_the_collected_outcome_keeps_its_status_and_body(
    client: openai.AsyncOpenAI, store: Store
) -> None:
    body: JSON = {"error": {"message": "slow down", "code": "rate_limit_exceeded"}}
    _, outcome = BatchRunner(client, store=store, progress=False)._outcome(
        OP, _collected(line=_line(429, body)), False
    )
    error = outcome.failure()
    assert isinstance(error, RateLimitError)
    assert (429, body) == (error.status, error.body)


# --- whether another run's process is gone ---------------------------------------------


def test_a_live_process_on_this_host_is_not_gone_and_is_left_alone() -> None:
    """Asking sends no signal that could end it (signal 0 only checks that it exists)."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        assert not _process_gone(socket.gethostname(), child.pid)
        assert child.poll() is None  # still running: not hung up on, not killed
    finally:
        child.kill()
        child.wait()


def test_a_process_that_cannot_be_asked_is_not_gone(monkeypatch: pytest.MonkeyPatch) -> None:
    """A process of another user (os.kill refuses with PermissionError) may be alive."""
    asked: list[tuple[int, int]] = []

    def refuse(pid: int, signal: int) -> None:
        asked.append((pid, signal))
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "kill", refuse)
    assert not _process_gone(socket.gethostname(), 4242)
    assert [(4242, 0)] == asked


def test_an_ended_process_is_asked_with_signal_zero(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[tuple[int, int]] = []

    def none_such(pid: int, signal: int) -> None:
        asked.append((pid, signal))
        raise ProcessLookupError(3, "No such process")

    monkeypatch.setattr(os, "kill", none_such)
    assert _process_gone(socket.gethostname(), 4242)
    assert [(4242, 0)] == asked


def test_other_hosts_own_process_and_no_pid_are_never_asked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    asked: list[tuple[int, int]] = []

    def none_such(pid: int, signal: int) -> None:
        asked.append((pid, signal))
        raise ProcessLookupError(3, "No such process")

    monkeypatch.setattr(os, "kill", none_such)
    host = socket.gethostname()
    assert not _process_gone("another-host", 4242)
    assert not _process_gone(None, 4242)
    assert not _process_gone(host, None)
    assert not _process_gone(host, os.getpid())
    assert [] == asked


def test_without_posix_signals_no_process_is_known_gone(monkeypatch: pytest.MonkeyPatch) -> None:
    """Elsewhere os.kill(pid, 0) would not merely ask (on Windows it ends the process)."""
    asked: list[tuple[int, int]] = []

    def none_such(pid: int, signal: int) -> None:
        asked.append((pid, signal))
        raise ProcessLookupError(3, "No such process")

    monkeypatch.setattr(os, "kill", none_such)
    monkeypatch.setattr(os, "name", "nt")
    assert not _process_gone(socket.gethostname(), 4242)
    assert [] == asked


# --- cancelling ----------------------------------------------------------------------


async def test_cancel_stops_this_runners_runs_only(
    client: openai.AsyncOpenAI, store: Store
) -> None:
    """Another run on the store (another process's, say) is not asked to stop."""
    runner = BatchRunner(client, store=store, progress=False)
    store.begin_run("run_other", {}, host="elsewhere", pid=1)
    mine = runner._ensure_run()
    assert not runner._stop_requested()
    assert [] == await runner.cancel()  # no shard journaled: no batch to cancel
    assert runner._cancel_requested
    assert runner._stop_requested()
    assert store.cancel_requested(mine)
    assert not store.cancel_requested("run_other")


async def test_cancel_before_any_run_stops_the_next_submission(
    client: openai.AsyncOpenAI, store: Store
) -> None:
    runner = BatchRunner(client, store=store, progress=False)
    assert [] == await runner.cancel()
    assert runner._stop_requested()
    assert runner.run_id is None


async def test_cancel_all_stops_every_run_of_the_store(
    client: openai.AsyncOpenAI, store: Store
) -> None:
    runner = BatchRunner(client, store=store, progress=False)
    store.begin_run("run_other", {}, host="elsewhere", pid=1)
    assert [] == await runner.cancel_all()
    assert runner._stop_requested()
    assert store.cancel_requested("run_other")
    assert runner.run_id is None  # it started no run of its own


async def test_a_cancel_recorded_in_the_journal_stops_the_run(
    client: openai.AsyncOpenAI, store: Store
) -> None:
    """``inert batches cancel`` in another process reaches a live run through the store."""
    runner = BatchRunner(client, store=store, progress=False)
    mine = runner._ensure_run()
    store.request_cancel([mine])
    assert runner._stop_requested()
    assert not runner._cancel_requested


# --- leases: the heartbeat and the end of a run -----------------------------------------


class _Stop(Exception):
    """Ends the heartbeat's loop in a test."""


async def test_the_heartbeat_renews_the_runs_leases_every_quarter_lease(
    client: openai.AsyncOpenAI,
    store: Store,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """No beat before the run has an id; a beat that fails is logged and the next one
    renews again."""
    runner = BatchRunner(client, store=store, progress=False, lease=8)
    run = _Run()
    delays: list[float] = []
    renewals: list[tuple[str, float, float]] = []
    real_sleep = asyncio.sleep

    async def sleep(delay: float) -> None:
        delays.append(delay)
        if len(delays) == 2:
            run.run_id = "run_beat"
        if len(delays) == 5:
            raise _Stop
        await real_sleep(0)

    def renew_leases(*, owner: str, lease: float, now: float) -> int:
        renewals.append((owner, lease, now))
        if len(renewals) == 2:
            raise StoreError("the disk is full")
        return 1

    monkeypatch.setattr(asyncio, "sleep", sleep)
    monkeypatch.setattr(store, "renew_leases", renew_leases)
    monkeypatch.setattr(store, "clock", lambda: 1000.0)
    with caplog.at_level(logging.WARNING, logger="inert.batch"), pytest.raises(_Stop):
        await runner._heartbeat(run)
    assert [2.0] * 5 == delays
    assert [("run_beat", 8.0, 1000.0)] * 3 == renewals
    assert ["could not renew the leases of run run_beat: the disk is full"] == [
        r.getMessage() for r in caplog.records
    ]


def test_the_end_of_a_run_gives_up_its_leases(
    client: openai.AsyncOpenAI,
    store: Store,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """And a store that refuses is only logged: the leases then run out by time."""
    runner = BatchRunner(client, store=store, progress=False)
    released: list[str] = []

    def release_leases(*, owner: str) -> int:
        released.append(owner)
        if owner == "run_refused":
            raise StoreError("the store is read-only")
        return 1

    monkeypatch.setattr(store, "release_leases", release_leases)
    with caplog.at_level(logging.WARNING, logger="inert.batch"):
        runner._end_run("run_ended")
        runner._end_run("run_refused")
    assert ["run_ended", "run_refused"] == released
    assert ["could not release the leases of run run_refused: the store is read-only"] == [
        r.getMessage() for r in caplog.records
    ]


# --- clients, display and the run's context ------------------------------------------


def test_a_runner_without_a_client_names_itself_in_the_fix(store: Store) -> None:
    with pytest.raises(TypeError) as raised:
        BatchRunner(store=store)
    assert (
        "BatchRunner needs a client: BatchRunner(openai.AsyncOpenAI(...)), or by provider "
        "BatchRunner(openai=..., anthropic=anthropic.AsyncAnthropic(...))"
    ) == str(raised.value)


def test_the_clients_go_to_their_providers(client: openai.AsyncOpenAI, store: Store) -> None:
    claude = anthropic.AsyncAnthropic(base_url="http://127.0.0.1:9", api_key="sk-ant-units")
    both = BatchRunner(openai=client, anthropic=claude, store=store, progress=False)
    assert ["anthropic", "openai"] == sorted(both._journal.remotes)
    alone = BatchRunner(anthropic=claude, store=store, progress=False)
    assert ["anthropic"] == list(alone._journal.remotes)
    by_name = BatchRunner(openai=client, store=store, progress=False)
    assert ["openai"] == list(by_name._journal.remotes)


def test_the_progress_display_is_what_was_asked_or_the_terminals(
    client: openai.AsyncOpenAI, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert BatchRunner(client, store=store, progress=True)._progress is True
    assert BatchRunner(client, store=store, progress=False)._progress is False
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    assert BatchRunner(client, store=store)._progress is True
    assert BatchRunner(client, store=store, progress=False)._progress is False
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False)
    assert BatchRunner(client, store=store)._progress is False
    assert BatchRunner(client, store=store, progress=True)._progress is True


def test_a_fresh_runner_has_no_run_and_no_cancel(client: openai.AsyncOpenAI, store: Store) -> None:
    runner = BatchRunner(client, store=store, progress=False)
    assert (None, [], False) == (runner.run_id, runner._run_ids, runner._cancel_requested)
    assert runner._current.get() is None
    assert not runner._stop_requested()


def test_each_run_gets_its_own_id_and_journal_row(client: openai.AsyncOpenAI, store: Store) -> None:
    runner = BatchRunner(client, store=store, progress=False, metadata={"team": "units"})
    first = runner._ensure_run()
    assert first == runner._ensure_run()  # the same run: the same id
    assert re.fullmatch(r"run_[0-9a-f]{20}", first)
    assert (socket.gethostname(), os.getpid()) == store.run_process(first)
    runner._current.set(None)  # as a new run_all_settled does
    second = runner._ensure_run()
    assert second != first
    assert [first, second] == runner._run_ids
    assert second == runner.run_id


async def test_requests_of_a_provider_without_a_client_fail_before_anything_is_sent(
    client: openai.AsyncOpenAI, store: Store
) -> None:
    """The client here listens nowhere: a call to it would fail otherwise."""
    runner = BatchRunner(client, store=store, progress=False)
    request = message(
        model="claude-sonnet-4-5", max_tokens=10, messages=[{"role": "user", "content": "hi"}]
    )
    with pytest.raises(MissingClientError) as raised:
        await runner.run_all([request])
    assert (
        "these requests call Anthropic (/v1/messages), but this BatchRunner has no Anthropic "
        "client; give it one: BatchRunner(..., anthropic=anthropic.AsyncAnthropic(...)); none "
        "of these calls was sent"
    ) == str(raised.value)
    assert [] == store.shards()


async def test_a_run_begins_with_no_id_and_no_cancel(
    client: openai.AsyncOpenAI, store: Store
) -> None:
    """A new run of a runner forgets the last run's id and its cancel (until it submits)."""
    runner = BatchRunner(client, store=store, progress=False)
    runner._ensure_run()
    runner._cancel_requested = True
    runner._begin_run()
    assert (None, False) == (runner.run_id, runner._cancel_requested)
    assert [] == await runner.run_all([])  # nothing to send: no run in the journal
    assert runner.run_id is None


def test_the_store_and_prices_go_to_the_base_runner(
    client: openai.AsyncOpenAI, store: Store
) -> None:
    """The base runner reads cache hits from the store and prices the report's costs."""
    prices = {"gpt-test": Price(input_per_million=1.0, output_per_million=2.0)}
    runner = BatchRunner(client, store=store, progress=False, prices=prices)
    assert store is runner._store
    assert prices is runner._prices
    assert DEFAULT_PRICES is BatchRunner(client, store=store, progress=False)._prices


def test_the_enqueued_token_limit_is_kept_for_the_rounds(
    client: openai.AsyncOpenAI, store: Store
) -> None:
    assert 1_000 == BatchRunner(client, store=store, enqueued_token_limit=1_000)._limits
    per_model = {"gpt-4o-mini": 500}
    assert per_model == BatchRunner(client, store=store, enqueued_token_limit=per_model)._limits
    assert BatchRunner(client, store=store)._limits is None


def test_the_journal_polls_and_times_as_the_runner_says(
    client: openai.AsyncOpenAI, store: Store
) -> None:
    """Its calls are paced by the runner's settings; its phases add up in the runner's."""
    runner = BatchRunner(client, store=store, poll_interval=2, poll_interval_max=7)
    assert (2, 7) == (runner._journal.poll_interval, runner._journal.poll_interval_max)
    assert runner._phases is runner._journal.phases
    assert store is runner._journal.store
