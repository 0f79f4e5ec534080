"""Transient HTTP on the files and batches endpoints: retried within the run, typed when it lasts.

429 (with or without Retry-After), 5xx, dropped connections and bodies that are not
JSON (an HTML page from a proxy) on upload, create, poll, list and download: the run
still succeeds and pays once. When they last, each op gets a typed error carrying
the status — never a raw exception, never a ConnectionFailedError for an HTTP answer.
"""

from __future__ import annotations

import time

import openai
import pytest
from tests.billing import settled_ledger

from inert import BatchRunner, ImmediateRunner, Store
from inert.emulator import Emulator
from inert.errors import ApiError, RateLimitError
from inert.testing import op_of

from ._support import Words, ask
from ._transport import LossyTransport

REQUESTS = [ask(f"flaky {i}") for i in range(4)]
KEYS = {op_of(r).key for r in REQUESTS}

ROUTES = ["files.create", "batches.create", "batches.retrieve", "files.content"]
KINDS: list[tuple[str, int | None, float | None]] = [
    ("rate_limit", None, None),
    ("rate_limit", None, 0.02),
    ("server_error", 503, None),
    ("server_error", 500, 0.02),
    ("disconnect", None, None),
    ("not_json", None, None),
]


def fast(client: openai.AsyncOpenAI, store: Store) -> BatchRunner:
    """A batch runner that polls every few milliseconds and shows no progress."""
    return BatchRunner(
        client, store=store, poll_interval=0.01, poll_interval_max=0.05, progress=False
    )


@pytest.fixture
async def expected(client: openai.AsyncOpenAI, emu: Emulator) -> list[Words]:
    """The answers to REQUESTS, asked immediately (the emulator is reset afterwards)."""
    answers = await ImmediateRunner(client).run_all(REQUESTS)
    emu.reset()
    return answers


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize(("kind", "status", "retry_after"), KINDS)
async def test_transient_answers_on_every_step_are_retried(
    route: str,
    kind: str,
    status: int | None,
    retry_after: float | None,
    client: openai.AsyncOpenAI,
    store: Store,
    emu: Emulator,
    expected: list[Words],
) -> None:
    """Three transient answers in a row on one step: the run succeeds, one batch, paid once."""
    emu.inject(route, kind, count=3, status=status, retry_after=retry_after)
    runner = fast(client, store)
    assert expected == await runner.run_all(REQUESTS)
    assert 1 == len(emu.batch_ids())
    assert dict.fromkeys(KEYS, 1) == settled_ledger(emu).counts()


async def test_a_failing_lookup_after_a_lost_create_is_retried(
    client: openai.AsyncOpenAI, store: Store, emu: Emulator, expected: list[Words]
) -> None:
    """A lost create answer, then a 503 on the lookup: still one batch, paid once."""
    emu.inject("batches.create", "create_lost", status=502)
    emu.inject("batches.list", "server_error", count=2, status=503)
    assert expected == await fast(client, store).run_all(REQUESTS)
    assert 1 == len(emu.batch_ids())
    assert dict.fromkeys(KEYS, 1) == settled_ledger(emu).counts()


async def test_retry_after_is_honoured(
    client: openai.AsyncOpenAI, store: Store, emu: Emulator, wire: LossyTransport
) -> None:
    """After a 429 with Retry-After on create, the next try waits at least that long."""
    times: list[float] = []
    wire.on_answer("POST", "/v1/batches", lambda _: times.append(time.monotonic()), times=2)
    emu.inject("batches.create", "rate_limit", retry_after=0.3)
    await fast(client, store).run_all(REQUESTS)
    first, second = times
    assert second - first >= 0.3


async def test_lasting_rate_limits_on_upload_fail_as_rate_limit_errors(
    client: openai.AsyncOpenAI, store: Store, emu: Emulator
) -> None:
    """An upload that keeps answering 429 gives every op RateLimitError(status=429)."""
    emu.inject("files.create", "rate_limit", count=8)
    results = await fast(client, store).run_all_settled(REQUESTS)
    errors = [r.failure() for r in results]
    assert [(RateLimitError, 429)] * 4 == [(type(e), getattr(e, "status", None)) for e in errors]
    assert ["failed"] == [r.state for r in store.shards()]
    assert {} == settled_ledger(emu).counts()


async def test_lasting_html_on_polls_is_a_typed_error_and_the_batch_stays(
    client: openai.AsyncOpenAI, store: Store, emu: Emulator, expected: list[Words]
) -> None:
    """Polls that keep answering an HTML page: a typed ApiError per op; a rerun collects, once."""
    emu.inject("batches.retrieve", "not_json", count=20)
    results = await fast(client, store).run_all_settled(REQUESTS)
    errors = [r.failure() for r in results]
    assert all(type(e) is ApiError and e.code == "not_json" for e in errors)
    assert ["created"] == [r.state for r in store.shards()]
    rerun = fast(client, store)
    assert expected == await rerun.run_all(REQUESTS)
    assert 0 == rerun.report.batches_created
    assert dict.fromkeys(KEYS, 1) == settled_ledger(emu).counts()


async def test_lasting_server_errors_on_download_carry_the_status(
    client: openai.AsyncOpenAI, store: Store, emu: Emulator
) -> None:
    """Downloads that keep answering 503 give each op ApiError(status=503), not a raw exception."""
    emu.inject("files.content", "server_error", count=8, status=503)
    results = await fast(client, store).run_all_settled(REQUESTS)
    errors = [r.failure() for r in results]
    assert [(ApiError, 503)] * 4 == [(type(e), getattr(e, "status", None)) for e in errors]
    assert ["created"] == [r.state for r in store.shards()]


async def test_the_users_client_keeps_its_own_retries(
    client: openai.AsyncOpenAI, store: Store, emu: Emulator
) -> None:
    """The runner's calls go without SDK retries, but the client it was given keeps its own."""
    BatchRunner(client, store=store, progress=False)
    assert 2 == client.max_retries
    emu.inject("files.list", "server_error", count=2, status=503)
    page = await client.files.list()
    assert [] == page.data


async def test_a_download_that_breaks_off_midway_is_downloaded_again(
    client: openai.AsyncOpenAI,
    store: Store,
    emu: Emulator,
    wire: LossyTransport,
    expected: list[Words],
) -> None:
    """An output download whose connection drops halfway through the body (after a 200) is
    fetched again: every answer stored, one batch, paid once."""
    wire.lose("GET", "/v1/files/[^/]+/content", how="broken_body", times=2)
    assert expected == await fast(client, store).run_all(REQUESTS)
    assert 1 == len(emu.batch_ids())
    assert dict.fromkeys(KEYS, 1) == settled_ledger(emu).counts()
    assert 2 == wire.rules[0].hits
