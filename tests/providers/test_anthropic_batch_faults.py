"""Message Batches under faults: what OpenAI batches survive, Anthropic's survive too.

Expired, errored and canceled lines; a create whose answer was lost; results that
are gone before they were downloaded; a process killed at any step. Money is read
from the emulator's ledger once every batch at the server has run to its end.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import anthropic
import httpx2
import pytest
from returns.result import Failure, Success
from tests.batch._crash import kill_at_marker
from tests.batch._transport import LossyTransport
from tests.billing import assert_billed_once, keys_of, settled_ledger

from inert import BatchRunner, ImmediateRunner, Op, Request, Store, call
from inert.emulator import Emulator, Faults
from inert.errors import ApiError, CancelledRequestError

from ._anthropic_support import Gloss, claude, claude_requests

CHILD = Path(__file__).with_name("_anthropic_child.py")
ROOT = Path(__file__).resolve().parents[2]
FAST: Any = {"poll_interval": 0.02, "poll_interval_max": 0.05, "progress": False}
BATCHES = "/anthropic/v1/messages/batches"


class Crash(BaseException):
    """A stand-in for the process dying at a chosen call (nothing catches it)."""


@pytest.fixture
def wire() -> LossyTransport:
    """The Anthropic client's transport: forwards everything until told to lose answers."""
    return LossyTransport()


@pytest.fixture
async def claude_client(
    emu: Emulator, wire: LossyTransport
) -> AsyncIterator[anthropic.AsyncAnthropic]:
    """An ``AsyncAnthropic`` with the SDK's default retries, through ``wire``."""
    async with anthropic.AsyncAnthropic(
        base_url=emu.anthropic_base_url,
        api_key="sk-ant-test-SECRET",
        http_client=httpx2.AsyncClient(transport=wire),
    ) as sdk:
        yield sdk


async def answers_of(
    client: anthropic.AsyncAnthropic, emu: Emulator, requests: list[Request[Gloss]]
) -> list[Gloss]:
    """The correct answers (they depend on the body only); the emulator is reset after."""
    answers = await ImmediateRunner(anthropic=client).run_all(requests)
    emu.reset()
    return answers


async def first_batch(emu: Emulator) -> str:
    """Wait until the first Message Batch exists; its id."""
    for _ in range(2000):
        ids = emu.message_batch_ids()
        if ids:
            return ids[0]
        await asyncio.sleep(0.002)
    raise AssertionError("no message batch was created")


async def test_expired_and_errored_lines_are_resubmitted_alone(
    claude_client: anthropic.AsyncAnthropic, open_store: Callable[[], Store], emu: Emulator
) -> None:
    """Lines that expired or errored with api_error go again in one new batch; all answered once."""
    requests = [
        claude(f"{word}{i}")
        for i in range(2)
        for word in ("owl", "lark", "wren", "kite", "rook", "tern")
    ]
    expected = await answers_of(claude_client, emu, requests)
    emu.set_faults(Faults(line_expired=0.3, line_failed=0.3))
    runner = BatchRunner(anthropic=claude_client, store=open_store(), **FAST)
    task = asyncio.create_task(runner.run_all(requests))
    first = await first_batch(emu)
    emu.set_faults(Faults())  # the first batch's outcomes are drawn; the resubmission is clean
    assert expected == await task
    batches = [await claude_client.messages.batches.retrieve(b) for b in emu.message_batch_ids()]
    assert first == batches[0].id
    counts = batches[0].request_counts
    unanswered = counts.expired + counts.errored
    assert 0 < unanswered
    assert 2 == len(batches)
    assert unanswered == batches[1].request_counts.succeeded
    assert unanswered == runner.report.retries
    assert_billed_once(emu, keys_of(requests))


async def test_a_request_anthropic_refuses_fails_alone_and_is_not_resubmitted(
    claude_client: anthropic.AsyncAnthropic, open_store: Callable[[], Store], emu: Emulator
) -> None:
    """An errored invalid_request_error line is an ApiError 400 of its request; no resubmission."""
    bad = call(
        Op(
            endpoint="/v1/messages",
            body={"model": "claude-haiku-4-5", "messages": [{"role": "user", "content": "hi"}]},
            decode=lambda raw: raw,
        )
    )
    runner = BatchRunner(anthropic=claude_client, store=open_store(), **FAST)
    good, refused = await runner.run_all_settled([claude("owl"), bad])
    assert isinstance(good, Success)
    assert isinstance(refused, Failure)
    error = refused.failure()
    assert isinstance(error, ApiError)
    assert (400, "invalid_request_error") == (error.status, error.code)
    assert "max_tokens" in error.message
    assert 1 == len(emu.message_batch_ids())
    assert 0 == runner.report.retries
    assert_billed_once(emu, keys_of([claude("owl")]))


async def test_a_batch_canceled_elsewhere_keeps_its_answers_and_resubmits_nothing(
    claude_client: anthropic.AsyncAnthropic, open_store: Callable[[], Store], emu: Emulator
) -> None:
    """Canceled in the Console mid-run: done lines kept, the rest CancelledRequestError."""
    requests = claude_requests()
    expected = await answers_of(claude_client, emu, requests)
    emu.set_time_scale(0.4)
    store = open_store()
    task = asyncio.create_task(
        BatchRunner(anthropic=claude_client, store=store, **FAST).run_all_settled(requests)
    )
    batch_id = await first_batch(emu)
    await asyncio.sleep(0.4 * 0.5)  # about half the requests have run
    assert emu.cancel_batch(batch_id)
    results = await task
    answered = [i for i, r in enumerate(results) if isinstance(r, Success)]
    cancelled = [r.failure() for r in results if isinstance(r, Failure)]
    assert cancelled
    assert all(isinstance(e, CancelledRequestError) for e in cancelled)
    assert [expected[i] for i in answered] == [results[i].unwrap() for i in answered]
    assert [batch_id] == emu.message_batch_ids()
    assert_billed_once(emu, keys_of([requests[i] for i in answered]))
    assert len(answered) == len(store.get_responses(list(keys_of(requests))))


async def test_a_lost_create_answer_makes_one_batch(
    claude_client: anthropic.AsyncAnthropic, open_store: Callable[[], Store], emu: Emulator
) -> None:
    """The create made the batch but its answer was lost: it is found by listing, not made again."""
    requests = claude_requests()
    expected = await answers_of(claude_client, emu, requests)
    emu.inject("anthropic.batches.create", "create_lost")
    runner = BatchRunner(anthropic=claude_client, store=open_store(), **FAST)
    assert expected == await runner.run_all(requests)
    assert 1 == len(emu.message_batch_ids())
    assert_billed_once(emu, keys_of(requests))


async def test_results_gone_before_download_are_asked_again(
    claude_client: anthropic.AsyncAnthropic,
    open_store: Callable[[], Store],
    emu: Emulator,
    wire: LossyTransport,
) -> None:
    """Results archived before they were read (404): the lines go again and are answered."""
    requests = claude_requests()
    expected = await answers_of(claude_client, emu, requests)
    wire.on_answer(
        "GET",
        "/anthropic/v1/messages/batches/[^/]+",
        lambda _: emu.expire_files(),
        when=lambda answer: answer.json().get("processing_status") == "ended",
    )
    store = open_store()
    assert expected == await BatchRunner(anthropic=claude_client, store=store, **FAST).run_all(
        requests
    )
    first, second = store.shards()
    assert ("abandoned", first.id) == (first.state, second.parent_id)
    assert first.error is not None
    assert "expired before it was downloaded" in first.error
    assert 2 == len(emu.message_batch_ids())
    # The first batch's lines were billed and their answers lost: paid twice, as at Anthropic.
    assert dict.fromkeys(keys_of(requests), 2) == settled_ledger(emu).counts()


def kill_child_at(emu: Emulator, store_path: Path, marker: Path, point: str) -> None:
    """Run the child until it reaches ``point``, then SIGKILL it."""
    child = subprocess.Popen(
        [sys.executable, str(CHILD), emu.anthropic_base_url, str(store_path), str(marker), point],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    kill_at_marker(child, marker)


async def test_a_run_killed_after_the_create_answered_re_attaches_and_pays_once(
    claude_client: anthropic.AsyncAnthropic, emu: Emulator, tmp_path: Path
) -> None:
    """SIGKILLed right after the create answered, before the journal knew the batch: a rerun
    finds the batch by listing, makes none, and every line is billed once."""
    requests = claude_requests()
    expected = await answers_of(claude_client, emu, requests)
    emu.set_time_scale(0.3)
    store_path = tmp_path / "crash.sqlite3"
    kill_child_at(emu, store_path, tmp_path / "marker", "create")
    assert 1 == len(emu.message_batch_ids())
    with Store(store_path) as store:
        assert "uploaded" == store.shards()[0].state
        rerun = BatchRunner(anthropic=claude_client, store=store, **FAST)
        assert expected == await rerun.run_all(requests)
        assert 0 == rerun.report.batches_created
    assert 1 == len(emu.message_batch_ids())
    assert_billed_once(emu, keys_of(requests))


KILL_SCALES = {"poll": 0.5, "download": 0.3}
"""The emulator's pace per kill point: the first poll must find the batch (about
1.1 * scale s) still running, at the pace of OpenAI's crash test; a download waits
for its end, so a shorter batch is enough."""


@pytest.mark.parametrize("point", list(KILL_SCALES))
async def test_a_run_killed_mid_poll_or_download_resumes_and_pays_once(
    point: str, claude_client: anthropic.AsyncAnthropic, emu: Emulator, tmp_path: Path
) -> None:
    """SIGKILLed as a poll (batch running) or the results download answers: a rerun in a new
    process's place collects the journaled batch, makes none, and every line is billed once."""
    requests = claude_requests()
    expected = await answers_of(claude_client, emu, requests)
    emu.set_time_scale(KILL_SCALES[point])
    store_path = tmp_path / "crash.sqlite3"
    kill_child_at(emu, store_path, tmp_path / "marker", point)
    with Store(store_path) as store:
        assert ["created"] == [shard.state for shard in store.shards()]
        rerun = BatchRunner(anthropic=claude_client, store=store, **FAST)
        assert expected == await rerun.run_all(requests)
        assert 0 == rerun.report.batches_created
    assert 1 == len(emu.message_batch_ids())
    assert_billed_once(emu, keys_of(requests))


@pytest.mark.parametrize(
    ("method", "path"), [("GET", f"{BATCHES}/[^/]+"), ("GET", f"{BATCHES}/[^/]+/results")]
)
async def test_a_run_dying_mid_poll_or_download_resumes_and_pays_once(
    method: str,
    path: str,
    claude_client: anthropic.AsyncAnthropic,
    open_store: Callable[[], Store],
    emu: Emulator,
    wire: LossyTransport,
) -> None:
    """The process dies as a poll or the results download answers: a rerun collects the
    journaled batch, makes none, and every line is billed once."""
    requests = claude_requests()
    expected = await answers_of(claude_client, emu, requests)
    wire.crash(method, path, Crash())
    store = open_store()
    with pytest.raises(Crash):
        await BatchRunner(anthropic=claude_client, store=store, **FAST).run_all(requests)
    rerun = BatchRunner(anthropic=claude_client, store=open_store(), **FAST)
    assert expected == await rerun.run_all(requests)
    assert 0 == rerun.report.batches_created
    assert 1 == len(emu.message_batch_ids())
    assert_billed_once(emu, keys_of(requests))


async def test_an_undecidable_lost_create_submits_nothing_until_results_tell(
    claude_client: anthropic.AsyncAnthropic, emu: Emulator, tmp_path: Path, wire: LossyTransport
) -> None:
    """Two unjournaled batches of the shard's size, both running: the rerun submits nothing;
    once they ended, their results tell which is the shard's, and nothing is paid twice."""
    requests = claude_requests()
    expected = await answers_of(claude_client, emu, requests)
    emu.set_time_scale(5.0)
    store_path = tmp_path / "crash.sqlite3"
    wire.crash("POST", BATCHES, Crash())
    with Store(store_path) as store, pytest.raises(Crash):
        await BatchRunner(anthropic=claude_client, store=store, **FAST).run_all(requests)
    others: Any = [
        {
            "custom_id": f"other-{i}",
            "params": {
                "model": "claude-haiku-4-5",
                "max_tokens": 5,
                "messages": [{"role": "user", "content": str(i)}],
            },
        }
        for i in range(len(requests))
    ]
    stranger = await claude_client.messages.batches.create(requests=others)
    with Store(store_path) as store:
        first = BatchRunner(anthropic=claude_client, store=store, **FAST)
        results = await first.run_all_settled(requests)
        errors = [r.failure() for r in results if isinstance(r, Failure)]
        assert len(requests) == len(errors)
        assert all(isinstance(e, ApiError) and e.code == "ambiguous_batch" for e in errors)
        assert 2 == len(emu.message_batch_ids())
        emu.settle()
        second = BatchRunner(anthropic=claude_client, store=store, **FAST)
        assert expected == await second.run_all(requests)
        assert 0 == second.report.batches_created
        (shard,) = store.shards()
        assert shard.batch_id is not None
        assert stranger.id != shard.batch_id
    assert 2 == len(emu.message_batch_ids())
    ledger = settled_ledger(emu).counts()
    assert all(1 == ledger[key] for key in keys_of(requests))
