"""At most one batch per shard: a lost answer to a create or an upload never pays twice.

The client keeps the SDK's default retries (``max_retries=2``), as a user's does; the
runner must not let them repeat a create whose answer was lost after the server made
the batch (openai/openai-python#2084).
"""

from __future__ import annotations

import openai
import pytest
from tests.billing import settled_ledger

from inert import BatchRunner, ImmediateRunner, Store
from inert.emulator import Emulator
from inert.errors import RateLimitError
from inert.testing import op_of

from ._support import Words, ask
from ._transport import LossyTransport

REQUESTS = [ask(f"once {i}") for i in range(6)]
KEYS = {op_of(r).key for r in REQUESTS}


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


def assert_one_batch_billed_once(emu: Emulator, store: Store) -> None:
    """One batch at the server, journaled, and every line billed exactly once."""
    (batch_id,) = emu.batch_ids()
    assert [batch_id] == [r.batch_id for r in store.shards()]
    assert dict.fromkeys(KEYS, 1) == settled_ledger(emu).counts()


@pytest.mark.parametrize("status", [None, 500, 502])
async def test_a_lost_create_answer_makes_exactly_one_batch(
    status: int | None,
    client: openai.AsyncOpenAI,
    store: Store,
    emu: Emulator,
    expected: list[Words],
) -> None:
    """The server makes the batch but its answer is lost (dropped, 500, 502): one batch, paid once."""
    emu.inject("batches.create", "create_lost", status=status)
    runner = fast(client, store)
    assert expected == await runner.run_all(REQUESTS)
    assert 1 == runner.report.batches_created
    assert_one_batch_billed_once(emu, store)
    stored = store.get_responses(sorted(KEYS))
    assert expected == [op_of(r).decode(stored[op_of(r).key]) for r in REQUESTS]


@pytest.mark.parametrize("how", ["disconnect", "502", "html"])
async def test_a_create_answer_lost_on_the_wire_makes_exactly_one_batch(
    how: str,
    client: openai.AsyncOpenAI,
    store: Store,
    emu: Emulator,
    wire: LossyTransport,
    expected: list[Words],
) -> None:
    """A create answer replaced on the wire by a drop, a 502 or an HTML page is found, not repeated."""
    wire.lose("POST", "/v1/batches", how=how, times=2)
    assert expected == await fast(client, store).run_all(REQUESTS)
    assert_one_batch_billed_once(emu, store)


async def test_a_lost_upload_answer_is_retried_and_noted(
    client: openai.AsyncOpenAI,
    store: Store,
    emu: Emulator,
    wire: LossyTransport,
    expected: list[Words],
) -> None:
    """An upload whose answer was lost is tried again; the journal notes the orphan file."""
    wire.lose("POST", "/v1/files", how="disconnect")
    assert expected == await fast(client, store).run_all(REQUESTS)
    assert_one_batch_billed_once(emu, store)
    ((_, custom_id, detail),) = store.anomalies()
    assert custom_id is None
    assert "may be left unused at the server" in detail


async def test_a_create_refused_every_time_leaves_the_shard_for_a_rerun(
    client: openai.AsyncOpenAI, store: Store, emu: Emulator, expected: list[Words]
) -> None:
    """A create that keeps answering 429 fails each op as RateLimitError(429); a rerun pays once."""
    emu.inject("batches.create", "rate_limit", count=8)
    runner = fast(client, store)
    results = await runner.run_all_settled(REQUESTS)
    errors = [r.failure() for r in results]
    assert all(isinstance(e, RateLimitError) and e.status == 429 for e in errors)
    assert [] == emu.batch_ids()
    assert ["uploaded"] == [r.state for r in store.shards()]
    assert expected == await fast(client, store).run_all(REQUESTS)
    assert ["abandoned", "downloaded"] == [r.state for r in store.shards()]
    assert dict.fromkeys(KEYS, 1) == settled_ledger(emu).counts()
