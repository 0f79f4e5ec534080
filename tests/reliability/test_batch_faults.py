"""Batch faults: every request ends with its answer or its typed error, none lost."""

from __future__ import annotations

import asyncio
import logging
import os
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import openai
import pytest
from returns.result import Failure, Result, Success
from tests.billing import assert_billed_once, keys_of, settled_ledger

from inert import BatchRunner, Request, RequestError, Store
from inert._runners._batch import BatchJournal
from inert.emulator import Emulator, Faults
from inert.errors import ApiError, CancelledRequestError

from ._support import Words, expected_answers, word_request

REQUESTS = 60

FAULT_MIXES = {
    "expired and failed lines": Faults(line_expired=0.3, line_failed=0.2),
    "expired batches": Faults(batch_expire=0.5),
    "unknown custom_id in the output": Faults(unknown_custom_id=1.0),
    "output file missing": Faults(drop_output=0.5),
    "everything at once": Faults(
        line_expired=0.2, line_failed=0.1, batch_expire=0.2, unknown_custom_id=0.5, drop_output=0.2
    ),
}


def fast_runner(client: openai.AsyncOpenAI, store: Store, **settings: Any) -> BatchRunner:
    """A batch runner that polls fast, shows nothing and cuts small batches."""
    settings.setdefault("max_requests_per_batch", 20)
    return BatchRunner(
        client, store=store, poll_interval=0.01, poll_interval_max=0.05, progress=False, **settings
    )


def check_settled(
    requests: Sequence[Request[Words]], settled: Sequence[Result[Words, RequestError]]
) -> tuple[int, int]:
    """Each result is the fault-free answer or a typed error; return (answers, errors)."""
    assert len(requests) == len(settled)
    answers = errors = 0
    for want, got in zip(expected_answers(requests), settled, strict=True):
        if isinstance(got, Success):
            assert want == got.unwrap()
            answers += 1
        else:
            assert isinstance(got, Failure)
            error = got.failure()
            assert isinstance(error, RequestError)
            assert type(error) is not RequestError, f"untyped error: {error!r}"
            assert error.message
            errors += 1
    return answers, errors


@pytest.mark.parametrize("mix", list(FAULT_MIXES))
async def test_no_request_is_lost_under_batch_faults(
    mix: str, emu: Emulator, tmp_path: Path, tally: Counter[str]
) -> None:
    """Under each mix of batch faults, every request settles with its answer or a typed error."""
    emu.set_faults(FAULT_MIXES[mix])
    requests = [word_request(i, salt=f" {mix}") for i in range(REQUESTS)]
    async with openai.AsyncOpenAI(base_url=emu.base_url, api_key="sk-batch") as client:
        with Store(tmp_path / "store.sqlite3") as store:
            runner = fast_runner(client, store)
            settled = await runner.run_all_settled(requests)
            answers, errors = check_settled(requests, settled)
            report = runner.report
            tally["requests"] += REQUESTS
            tally["faults"] += report.retries + errors
            assert REQUESTS == answers + errors
            assert answers > 0
            answered = [r for r, s in zip(requests, settled, strict=True) if isinstance(s, Success)]
            failed = [r for r, s in zip(requests, settled, strict=True) if isinstance(s, Failure)]
            assert_billed_once(emu, keys_of(answered), unanswered=keys_of(failed))
            if mix not in ("output file missing", "everything at once"):
                # Only a batch that serves no output file can keep a paid answer from the store.
                billed = settled_ledger(emu).counts()
                assert set(billed) <= set(store.get_responses(sorted(billed))), "an answer was lost"


async def test_a_failed_batch_gives_each_request_a_typed_error(
    tmp_path: Path, tally: Counter[str]
) -> None:
    """A batch the API rejects (too many lines) fails each of its requests with an ApiError."""
    requests = [word_request(i, salt=" invalid file") for i in range(12)]
    async with (
        Emulator(time_scale=0.1, max_lines=5, seed=1) as strict,
        openai.AsyncOpenAI(base_url=strict.base_url, api_key="sk-batch") as client,
    ):
        with Store(tmp_path / "store.sqlite3") as store:
            settled = await fast_runner(client, store, max_requests_per_batch=12).run_all_settled(
                requests
            )
        assert_billed_once(strict, [])
    answers, errors = check_settled(requests, settled)
    tally["requests"] += len(requests)
    tally["faults"] += 1
    assert (0, 12) == (answers, errors)
    assert all(isinstance(r.failure(), ApiError) for r in settled if isinstance(r, Failure))


async def test_cancelled_batches_settle_every_request(
    emu: Emulator, tmp_path: Path, tally: Counter[str]
) -> None:
    """Batches cancelled mid-run leave completed lines answered and the rest CancelledRequestError."""
    emu.set_time_scale(2.0)  # slow batches: there is time to cancel them
    requests = [word_request(i, salt=" cancel") for i in range(30)]
    async with openai.AsyncOpenAI(base_url=emu.base_url, api_key="sk-batch") as client:
        with Store(tmp_path / "store.sqlite3") as store:
            runner = fast_runner(client, store, max_requests_per_batch=10)
            task = asyncio.create_task(runner.run_all_settled(requests))
            for _ in range(1_000):  # until all three batches exist (at most ~20 s)
                if len(emu.batch_ids()) >= 3:
                    break
                await asyncio.sleep(0.02)
            cancelled = await runner.cancel()
            settled = await asyncio.wait_for(task, timeout=30)
    answers, errors = check_settled(requests, settled)
    tally["requests"] += len(requests)
    tally["faults"] += len(cancelled)
    assert 3 == len(cancelled)
    assert 30 == answers + errors
    assert errors > 0
    assert all(
        isinstance(r.failure(), CancelledRequestError) for r in settled if isinstance(r, Failure)
    )
    answered = [r for r, s in zip(requests, settled, strict=True) if isinstance(s, Success)]
    assert_billed_once(emu, keys_of(answered))


SEED = int(os.environ.get("INERT_FAULT_SEED", "3"))
"""Seeds the emulator's draws; set INERT_FAULT_SEED to try other fault sequences."""

EVERY_ENDPOINT = Faults(
    rate_limit=0.04,
    server_error=0.04,
    disconnect=0.02,
    create_lost=0.4,
    external_cancel=0.2,
    line_expired=0.2,
    line_failed=0.1,
    batch_expire=0.1,
    unknown_custom_id=0.3,
    output_truncated=0.3,
)
"""Faults on every endpoint at once: 429/5xx/drops on files, batches and downloads, lost create
answers, cancels by someone else, expiring and failing lines, cut downloads, stray lines."""


async def test_faults_on_every_endpoint_pay_each_op_at_most_once_and_lose_no_answer(
    tmp_path: Path, tally: Counter[str], caplog: pytest.LogCaptureFixture
) -> None:
    """Under faults on every endpoint and an enqueued-token limit, through a client with the SDK's
    default retries: no op is billed twice, every billed answer ends in the store, and every
    request settles with its answer or a typed error."""
    caplog.set_level(logging.INFO, logger="inert.batch")
    requests = [word_request(i, salt=" every endpoint") for i in range(REQUESTS)]
    async with (
        Emulator(time_scale=0.1, seed=SEED, faults=EVERY_ENDPOINT, enqueued_token_limit=400) as emu,
        openai.AsyncOpenAI(base_url=emu.base_url, api_key="sk-batch") as client,
    ):
        with Store(tmp_path / "store.sqlite3") as store:
            runner = fast_runner(client, store, max_requests_per_batch=10)
            settled = await runner.run_all_settled(requests)
            answers, errors = check_settled(requests, settled)
            # Collect whatever a cut download left in the journal, as a later run would.
            emu.set_faults(Faults())
            await BatchJournal(client, store, poll_interval=0.01, poll_interval_max=0.05).resume()
            billed = settled_ledger(emu).counts()
            stored = store.get_responses(sorted(billed))
            refused = [r for r in store.shards() if "token_limit_exceeded" in (r.error or "")]
            cancelled_elsewhere = [
                r for r in store.shards() if r.remote_status in ("cancelling", "cancelled")
            ]
        created = len(emu.batch_ids())
    tally["requests"] += REQUESTS
    tally["faults"] += runner.report.retries + errors
    assert REQUESTS == answers + errors
    assert answers > 0
    assert created >= 2
    assert refused, "the mix is meant to hit the enqueued-token limit"
    assert cancelled_elsewhere, "the mix is meant to cancel batches at the server"
    assert "lost its answer" in caplog.text, "the mix is meant to lose create answers"
    assert [] == [key for key, times in billed.items() if times > 1]
    assert set(billed) == set(stored)
