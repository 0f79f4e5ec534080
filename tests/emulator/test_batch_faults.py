"""Batch-level faults drawn at rates, and a cancel from elsewhere, as the SDK sees them."""

from __future__ import annotations

from collections.abc import Callable

import openai
import pytest
from tests.billing import settled_ledger

from inert.emulator import Emulator, Faults

from ._support import BatchLine, chat_line, jsonl, read_jsonl
from .conftest import SubmitBatch


def lines(count: int) -> list[BatchLine]:
    """``count`` distinct chat lines."""
    return [chat_line(f"c{i}", f"question {i}") for i in range(count)]


def test_external_cancel_stops_a_batch_part_way(
    client: openai.OpenAI, emu: Emulator, submit: SubmitBatch
) -> None:
    """external_cancel cancels a batch while it runs: some lines answered, the rest batch_cancelled."""
    emu.set_faults(Faults(external_cancel=1.0))
    batch = submit(jsonl(lines(40)))
    emu.settle()
    done = client.batches.retrieve(batch.id)
    assert "cancelled" == done.status
    assert None not in (done.in_progress_at, done.cancelling_at, done.cancelled_at)
    output = read_jsonl(client, done.output_file_id)
    errors = read_jsonl(client, done.error_file_id)
    assert 0 < len(output) < 40
    assert 40 == len(output) + len(errors)
    assert {"batch_cancelled"} == {e["error"]["code"] for e in errors}  # type: ignore[index]  # pyright: ignore[reportIndexIssue]  # JSON
    assert len(output) == settled_ledger(emu).total_billed()


def test_cancel_batch_cancels_as_someone_else_would(
    client: openai.OpenAI, emu: Emulator, submit: SubmitBatch
) -> None:
    """Emulator.cancel_batch cancels a running batch; a second call, or one on an ended batch, is False."""
    emu.set_time_scale(1000)
    batch = submit(jsonl(lines(3)))
    assert emu.cancel_batch(batch.id)
    assert "cancelling" == client.batches.retrieve(batch.id).status
    assert not emu.cancel_batch(batch.id)
    emu.settle()
    assert "cancelled" == client.batches.retrieve(batch.id).status
    assert not emu.cancel_batch(batch.id)
    with pytest.raises(KeyError):
        emu.cancel_batch("batch_unknown")


def test_batch_failed_fails_a_valid_batch_unbilled(
    client: openai.OpenAI, emu: Emulator, submit: SubmitBatch
) -> None:
    """batch_failed makes a valid batch go validating -> failed with one error naming no line."""
    emu.set_faults(Faults(batch_failed=1.0))
    batch = submit(jsonl(lines(3)))
    emu.settle()
    failed = client.batches.retrieve(batch.id)
    assert "failed" == failed.status
    assert failed.errors is not None
    assert failed.errors.data
    assert ("batch_failed", None) == (failed.errors.data[0].code, failed.errors.data[0].line)
    assert (None, None) == (failed.output_file_id, failed.error_file_id)
    assert 0 == settled_ledger(emu).total_billed()


def test_output_truncated_cuts_output_downloads_not_inputs(
    client: openai.OpenAI, emu: Emulator, submit: SubmitBatch
) -> None:
    """output_truncated cuts downloads of output files short; input files download whole."""
    content = jsonl(lines(8))
    batch = submit(content)
    emu.settle()
    output_id = client.batches.retrieve(batch.id).output_file_id
    assert output_id is not None
    whole = client.files.content(output_id).content
    emu.set_faults(Faults(output_truncated=1.0))
    cut = client.files.content(output_id).content
    assert len(cut) < len(whole)
    assert whole.startswith(cut)
    assert content == client.files.content(client.batches.retrieve(batch.id).input_file_id).content


def test_create_lost_at_a_rate_still_makes_the_batch(client: openai.OpenAI, emu: Emulator) -> None:
    """With create_lost=1 every create fails for the caller, yet each batch exists and runs."""
    emu.set_faults(Faults(create_lost=1.0))
    uploaded = client.files.create(file=("in.jsonl", jsonl(lines(2))), purpose="batch")
    for _ in range(3):
        with pytest.raises((openai.APIConnectionError, openai.InternalServerError)):
            client.batches.create(
                input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
            )
    assert 3 == len(emu.batch_ids())
    emu.settle()
    assert 6 == settled_ledger(emu).total_billed()


ENDPOINT_CALLS: dict[str, Callable[[openai.OpenAI], object]] = {
    "upload": lambda c: c.files.create(file=("x.jsonl", b"{}\n"), purpose="batch"),
    "list files": lambda c: c.files.list(),
    "list batches": lambda c: c.batches.list(),
    "create": lambda c: c.batches.create(
        input_file_id="file-x", endpoint="/v1/chat/completions", completion_window="24h"
    ),
}


@pytest.mark.parametrize("name", sorted(ENDPOINT_CALLS))
@pytest.mark.parametrize(
    ("faults", "error"),
    [
        (Faults(rate_limit=1.0), openai.RateLimitError),
        (Faults(server_error=1.0), openai.InternalServerError),
        (Faults(disconnect=1.0), openai.APIConnectionError),
    ],
)
def test_attempt_faults_hit_files_and_batches(
    client: openai.OpenAI, emu: Emulator, name: str, faults: Faults, error: type[Exception]
) -> None:
    """Rate-drawn 429s, 5xx and dropped connections hit the files and batches endpoints too."""
    emu.set_faults(faults)
    with pytest.raises(error):
        ENDPOINT_CALLS[name](client)


def test_a_seeded_batch_fate_does_not_depend_on_what_came_before_it(
    client: openai.OpenAI, emu: Emulator, submit: SubmitBatch
) -> None:
    """With a seed, the n-th batch the emulator accepts meets the same fate (cancelled by
    someone else, expired, completed) whatever came before it: batches it refused, other
    batches' line counts, polls. How often a client polls and which creates the
    enqueued-token limit refuses depend on the machine's load; a seeded fault mix must not."""

    def fates(sizes: list[int], *, refuse_first: bool) -> list[str]:
        emu.reset()  # reseeds every draw
        emu.set_faults(Faults(external_cancel=0.5, batch_expire=0.3, line_failed=0.3))
        ids = [submit(b'{"custom_id": "x", "method": "POST"}\n').id] if refuse_first else []
        for number, size in enumerate(sizes):
            ids.append(
                submit(
                    jsonl([chat_line(f"b{number}-{i}", f"q {number} {i}") for i in range(size)])
                ).id
            )
            client.batches.list(limit=5)  # polls in between
        emu.settle()
        return [client.batches.retrieve(batch_id).status for batch_id in ids]

    plain = fates([4, 4, 4, 4, 4, 4], refuse_first=False)
    refused, *other = fates([9, 2, 7, 1, 5, 3], refuse_first=True)
    assert "failed" == refused
    assert plain == other
    assert {"cancelled", "expired", "completed"} <= set(plain)  # the seed draws each fate
