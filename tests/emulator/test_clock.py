"""Batches run and bill on the emulator's clock, polled or not; settle runs them to their end."""

from __future__ import annotations

import time

import openai

from inert.emulator import Emulator

from ._support import chat_line, jsonl, read_jsonl
from .conftest import SubmitBatch


def test_a_batch_nobody_polls_still_runs_and_bills(emu: Emulator, submit: SubmitBatch) -> None:
    """A created and forgotten batch bills every line once its time has passed, without a poll."""
    submit(jsonl([chat_line(f"c{i}", f"question {i}") for i in range(5)]))
    deadline = time.monotonic() + 30
    while emu.ledger.total_billed() < 5 and time.monotonic() < deadline:
        time.sleep(0.02)  # reading the ledger is not a poll of the batch
    assert 5 == emu.ledger.total_billed()
    assert [(0, 1)] * 5 == [(e.immediate, e.batch) for e in emu.ledger.entries()]


def test_settle_runs_every_batch_to_its_end(
    client: openai.OpenAI, emu: Emulator, submit: SubmitBatch
) -> None:
    """settle() completes slow batches at once, with their files, and bills each line once."""
    emu.set_time_scale(1000)  # would take about 18 minutes
    ids = [
        submit(jsonl([chat_line(f"b{b}-{i}", f"q {b} {i}") for i in range(3)])).id for b in range(2)
    ]
    assert 0 == emu.ledger.total_billed()
    emu.settle()
    assert 6 == emu.ledger.total_billed()
    done = [client.batches.retrieve(batch_id) for batch_id in ids]
    assert ["completed", "completed"] == [b.status for b in done]
    assert [3, 3] == [len(read_jsonl(client, b.output_file_id)) for b in done]
    emu.settle()
    assert 6 == emu.ledger.total_billed()


def test_settle_finishes_a_cancel_under_way(
    client: openai.OpenAI, emu: Emulator, submit: SubmitBatch
) -> None:
    """A batch cancelled while validating settles as cancelled, with nothing billed."""
    emu.set_time_scale(1000)
    batch = submit(jsonl([chat_line("a", "x"), chat_line("b", "y")]))
    assert "cancelling" == client.batches.cancel(batch.id).status
    emu.settle()
    done = client.batches.retrieve(batch.id)
    assert "cancelled" == done.status
    assert 0 == emu.ledger.total_billed()
    errors = read_jsonl(client, done.error_file_id)
    assert {"batch_cancelled"} == {e["error"]["code"] for e in errors}  # type: ignore[index]  # pyright: ignore[reportIndexIssue]  # JSON


def test_request_counts_are_zero_while_validating(
    client: openai.OpenAI, emu: Emulator, submit: SubmitBatch
) -> None:
    """While a batch validates its request_counts are all 0 and expires_at null, as at OpenAI."""
    emu.set_time_scale(1000)
    batch = submit(jsonl([chat_line("a", "x"), chat_line("b", "y")]))
    assert ("validating", None) == (batch.status, batch.expires_at)
    assert batch.request_counts is not None
    assert (0, 0, 0) == (
        batch.request_counts.total,
        batch.request_counts.completed,
        batch.request_counts.failed,
    )
    emu.settle()
    done = client.batches.retrieve(batch.id)
    assert done.expires_at == done.created_at + 24 * 3600
    assert done.request_counts is not None
    assert 2 == done.request_counts.total
