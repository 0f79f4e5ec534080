"""Resubmission: lines that did not run go again while the attempts make progress.

Expired lines, lines cancelled by the window and 408/429/5xx lines are not billed, so
resubmitting them costs only time; an attempt that answers nothing is the sign to
stop (``STALL_LINES``), and ``max_attempts`` bounds it all.
"""

from __future__ import annotations

import openai
import pytest
from returns.result import Failure
from tests.billing import settled_ledger

from inert import BatchRunner, ImmediateRunner, Store
from inert._runners._batch import OutputLine
from inert._runners._batch._output import line_failure
from inert._runners._batch._runner import DEFAULT_MAX_ATTEMPTS, STALL_LINES
from inert.emulator import Emulator, Faults
from inert.errors import ApiError, CancelledRequestError, ExpiredError, RateLimitError
from inert.testing import op_of

from ._support import ask


def fast(
    client: openai.AsyncOpenAI, store: Store, *, max_attempts: int = DEFAULT_MAX_ATTEMPTS
) -> BatchRunner:
    """A batch runner that polls every few milliseconds and shows no progress."""
    return BatchRunner(
        client,
        store=store,
        poll_interval=0.01,
        poll_interval_max=0.05,
        progress=False,
        max_attempts=max_attempts,
    )


async def test_thirty_percent_expiry_at_every_attempt_still_answers_all_200(
    client: openai.AsyncOpenAI, store: Store, emu: Emulator
) -> None:
    """With 30% of lines expiring at every attempt, all 200 are answered and billed once."""
    requests = [ask(f"busy {i}") for i in range(200)]
    expected = await ImmediateRunner(client).run_all(requests)
    emu.reset()
    emu.set_faults(Faults(line_expired=0.3))
    runner = fast(client, store)
    assert expected == await runner.run_all(requests)
    attempts = [r.attempt for r in store.shards()]
    assert 1 == attempts.count(1)
    assert max(attempts) > 2
    assert {op_of(r).key: 1 for r in requests} == settled_ledger(emu).counts()


async def test_an_attempt_of_many_lines_that_answers_none_ends_resubmission(
    client: openai.AsyncOpenAI, store: Store, emu: Emulator
) -> None:
    """When every one of ten lines expires, the lines are not tried again."""
    emu.set_faults(Faults(line_expired=1.0))
    runner = fast(client, store)
    results = await runner.run_all_settled([ask(f"stuck {i}") for i in range(10)])
    assert all(isinstance(r, Failure) and isinstance(r.failure(), ExpiredError) for r in results)
    assert 1 == runner.report.batches_created
    assert 0 == runner.report.retries


async def test_a_lone_line_that_keeps_expiring_gets_stall_lines_tries(
    client: openai.AsyncOpenAI, store: Store, emu: Emulator
) -> None:
    """A single line that expires every time is submitted STALL_LINES times, then fails."""
    emu.set_faults(Faults(line_expired=1.0))
    runner = fast(client, store)
    (result,) = await runner.run_all_settled([ask("alone")])
    assert isinstance(result, Failure)
    assert isinstance(result.failure(), ExpiredError)
    assert STALL_LINES == runner.report.batches_created
    assert list(range(1, STALL_LINES + 1)) == [r.attempt for r in store.shards()]
    assert STALL_LINES < DEFAULT_MAX_ATTEMPTS


async def test_max_attempts_bounds_the_tries(
    client: openai.AsyncOpenAI, store: Store, emu: Emulator
) -> None:
    """With max_attempts=3, a line failing with 500 every time is sent three times."""
    emu.set_faults(Faults(line_failed=1.0))
    runner = fast(client, store, max_attempts=3)
    (result,) = await runner.run_all_settled([ask("always 500")])
    assert isinstance(result, Failure)
    error = result.failure()
    assert isinstance(error, ApiError)
    assert 500 == error.status
    assert 3 == runner.report.batches_created


def http_line(status: int) -> OutputLine:
    """An error-file line whose request failed with ``status``."""
    return OutputLine("cid", status, {"error": {"message": "no", "code": "c"}}, None)


@pytest.mark.parametrize(
    ("status", "retryable", "kind"),
    [
        (408, True, ApiError),
        (409, True, ApiError),
        (429, True, RateLimitError),
        (500, True, ApiError),
        (503, True, ApiError),
        (400, False, ApiError),
        (404, False, ApiError),
    ],
)
def test_which_line_statuses_are_resubmitted(
    status: int, retryable: bool, kind: type[ApiError]
) -> None:
    """408, 409, 429 and 5xx lines are resubmitted; other failures are final."""
    got_retryable, error = line_failure(http_line(status), "batch_x")
    assert (retryable, kind, status) == (got_retryable, type(error), getattr(error, "status", None))


@pytest.mark.parametrize(
    ("code", "kind"), [("batch_expired", ExpiredError), ("batch_cancelled", CancelledRequestError)]
)
def test_lines_that_never_ran_are_resubmitted(code: str, kind: type[Exception]) -> None:
    """Expired and cancelled-by-the-window lines are resubmitted with their typed error."""
    line = OutputLine("cid", None, None, {"code": code, "message": "m"})
    retryable, error = line_failure(line, "batch_x")
    assert (True, kind) == (retryable, type(error))
