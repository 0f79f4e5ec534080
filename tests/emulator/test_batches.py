"""Batches through every terminal status, with their files, counts and billing."""

from __future__ import annotations

import json
import time

import openai
import pytest
from tests.billing import settled_ledger

from inert._json import op_key
from inert.emulator import Emulator, Faults

from ._support import BatchLine, chat_line, jsonl, read_jsonl
from .conftest import SubmitBatch, WaitBatch


def lines(count: int) -> list[BatchLine]:
    """``count`` distinct chat lines with custom ids c0, c1, …"""
    return [chat_line(f"c{i}", f"question {i}") for i in range(count)]


def test_batch_completes_with_unordered_output(
    client: openai.OpenAI, emu: Emulator, submit: SubmitBatch, wait: WaitBatch
) -> None:
    """A batch goes validating to completed; every line is answered once, billed as batch."""
    created = submit(jsonl(lines(20)))
    assert ("validating", "batch", "24h") == (
        created.status,
        created.object,
        created.completion_window,
    )
    done = wait(created.id)
    assert "completed" == done.status
    assert done.request_counts is not None
    assert (20, 20, 0) == (
        done.request_counts.total,
        done.request_counts.completed,
        done.request_counts.failed,
    )
    assert done.error_file_id is None
    assert None not in (done.in_progress_at, done.finalizing_at, done.completed_at)
    output = read_jsonl(client, done.output_file_id)
    ids = [str(line["custom_id"]) for line in output]
    assert sorted(f"c{i}" for i in range(20)) == sorted(ids)
    assert sorted(ids) != ids  # unordered, like OpenAI
    first = output[0]
    assert isinstance(first["response"], dict)
    assert 200 == first["response"]["status_code"]
    assert "chat.completion" == first["response"]["body"]["object"]
    keys = [op_key("/v1/chat/completions", line["body"]) for line in lines(20)]  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]  # test lines hold JSON bodies
    assert [1] * 20 == [settled_ledger(emu).times_billed(key) for key in keys]
    assert [(0, 1)] * 20 == [(e.immediate, e.batch) for e in settled_ledger(emu).entries()]


def test_request_counts_advance_while_in_progress(
    client: openai.OpenAI, emu: Emulator, submit: SubmitBatch, wait: WaitBatch
) -> None:
    """While in progress, completed counts rise step by step to the total."""
    emu.set_time_scale(0.5)
    batch = submit(jsonl(lines(50)))
    seen: list[int] = []
    while batch.status not in ("completed", "failed"):
        if batch.status == "in_progress" and batch.request_counts is not None:
            seen.append(batch.request_counts.completed)
        time.sleep(0.02)
        batch = client.batches.retrieve(batch.id)
    assert seen == sorted(seen)
    assert len(set(seen)) > 3
    assert 0 < seen[len(seen) // 2] < 50


INVALID_FILES = {
    "invalid_json_line": b'{"custom_id": "a", not json\n',
    "duplicate_custom_id": jsonl([chat_line("a", "x"), chat_line("a", "y")]),
    "url_mismatch": jsonl([chat_line("a", "x") | {"url": "/v1/embeddings"}]),
    "model_mismatch": jsonl([chat_line("a", "x", model="m1"), chat_line("b", "y", model="m2")]),
    "missing_required_parameter": jsonl(
        [{k: v for k, v in chat_line("a", "x").items() if k != "custom_id"}]
    ),
    "invalid_method": jsonl([chat_line("a", "x") | {"method": "GET"}]),
    "empty_file": b"\n",
}


@pytest.mark.parametrize("code", sorted(INVALID_FILES))
def test_invalid_input_fails_the_batch(
    client: openai.OpenAI, emu: Emulator, submit: SubmitBatch, wait: WaitBatch, code: str
) -> None:
    """An invalid input file fails the batch with OpenAI's error code, and nothing is billed."""
    failed = wait(submit(INVALID_FILES[code]).id)
    assert "failed" == failed.status
    assert failed.errors is not None
    assert failed.errors.data
    assert code == failed.errors.data[0].code
    assert (None, None) == (failed.output_file_id, failed.error_file_id)
    assert failed.failed_at is not None
    assert 0 == settled_ledger(emu).total_billed()


def test_too_many_lines_fail_the_batch() -> None:
    """A file with more lines than the limit fails with too_many_tasks."""
    with (
        Emulator(time_scale=0.05, max_lines=3) as small,
        openai.OpenAI(base_url=small.base_url, api_key="t", max_retries=0) as sdk,
    ):
        uploaded = sdk.files.create(file=("in.jsonl", jsonl(lines(4))), purpose="batch")
        batch = sdk.batches.create(
            input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
        )
        while batch.status == "validating":
            time.sleep(0.01)
            batch = sdk.batches.retrieve(batch.id)
    assert "failed" == batch.status
    assert batch.errors is not None
    assert batch.errors.data
    assert "too_many_tasks" == batch.errors.data[0].code


def test_line_faults_go_to_the_error_file_unbilled(
    client: openai.OpenAI, emu: Emulator, submit: SubmitBatch, wait: WaitBatch
) -> None:
    """Expired and failed lines land in the error file and are not billed; the rest succeed."""
    emu.set_faults(Faults(line_expired=0.3, line_failed=0.3))
    done = wait(submit(jsonl(lines(40))).id)
    assert "completed" == done.status
    errors = read_jsonl(client, done.error_file_id)
    output = read_jsonl(client, done.output_file_id)
    expired = [e for e in errors if e["error"] is not None]
    failed = [e for e in errors if e["response"] is not None]
    assert {"batch_expired"} == {e["error"]["code"] for e in expired}  # type: ignore[index]  # pyright: ignore[reportIndexIssue]  # JSON
    assert {500} == {e["response"]["status_code"] for e in failed}  # type: ignore[index]  # pyright: ignore[reportIndexIssue]  # JSON
    assert expired
    assert failed
    assert output
    assert 40 == len(errors) + len(output)
    assert done.request_counts is not None
    assert (len(output), len(errors)) == (done.request_counts.completed, done.request_counts.failed)
    assert len(output) == settled_ledger(emu).total_billed()


def test_every_line_failing_leaves_no_output_file(
    client: openai.OpenAI, emu: Emulator, submit: SubmitBatch, wait: WaitBatch
) -> None:
    """When every line fails, output_file_id is null and the error file holds them all."""
    emu.set_faults(Faults(line_failed=1.0))
    done = wait(submit(jsonl(lines(5))).id)
    assert ("completed", None) == (done.status, done.output_file_id)
    assert 5 == len(read_jsonl(client, done.error_file_id))


def test_invalid_line_body_is_a_per_line_400(
    client: openai.OpenAI, submit: SubmitBatch, wait: WaitBatch
) -> None:
    """A line whose body lacks messages fails alone with a 400 in the error file."""
    bad: BatchLine = {
        "custom_id": "bad",
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": {"model": "gpt-test"},
    }
    done = wait(submit(jsonl([*lines(2), bad])).id)
    errors = read_jsonl(client, done.error_file_id)
    assert [("bad", 400)] == [(e["custom_id"], e["response"]["status_code"]) for e in errors]  # type: ignore[index]  # pyright: ignore[reportIndexIssue]  # JSON


def test_expired_batch_keeps_its_finished_part(
    client: openai.OpenAI, emu: Emulator, submit: SubmitBatch, wait: WaitBatch
) -> None:
    """An expiring batch returns finished lines in the output and the rest as batch_expired, unbilled."""
    emu.set_faults(Faults(batch_expire=1.0))
    done = wait(submit(jsonl(lines(20))).id)
    assert "expired" == done.status
    assert done.expired_at is not None
    output = read_jsonl(client, done.output_file_id)
    errors = read_jsonl(client, done.error_file_id)
    assert 0 < len(output) < 20
    assert 20 == len(output) + len(errors)
    assert {"batch_expired"} == {e["error"]["code"] for e in errors}  # type: ignore[index]  # pyright: ignore[reportIndexIssue]  # JSON
    assert len(output) == settled_ledger(emu).total_billed()


def test_expire_hook_expires_a_running_batch(
    client: openai.OpenAI, emu: Emulator, submit: SubmitBatch
) -> None:
    """Emulator.expire ends a batch that is still validating with every line expired."""
    emu.set_time_scale(5)
    batch = submit(jsonl(lines(3)))
    emu.expire(batch.id)
    expired = client.batches.retrieve(batch.id)
    assert ("expired", None) == (expired.status, expired.output_file_id)
    assert 3 == len(read_jsonl(client, expired.error_file_id))
    assert 0 == settled_ledger(emu).total_billed()


def test_cancelled_batch_returns_partial_output(
    client: openai.OpenAI, emu: Emulator, submit: SubmitBatch, wait: WaitBatch
) -> None:
    """Cancelling mid-run goes cancelling -> cancelled; undone lines are batch_cancelled and unbilled."""
    emu.set_time_scale(1.0)
    batch = submit(jsonl(lines(40)))
    while batch.request_counts is None or batch.request_counts.completed < 5:
        time.sleep(0.02)
        batch = client.batches.retrieve(batch.id)
    cancelling = client.batches.cancel(batch.id)
    assert "cancelling" == cancelling.status
    done = wait(batch.id)
    assert "cancelled" == done.status
    assert done.cancelled_at is not None
    output = read_jsonl(client, done.output_file_id)
    errors = read_jsonl(client, done.error_file_id)
    assert 0 < len(output) < 40
    assert 40 == len(output) + len(errors)
    assert {"batch_cancelled"} == {e["error"]["code"] for e in errors}  # type: ignore[index]  # pyright: ignore[reportIndexIssue]  # JSON
    assert len(output) == settled_ledger(emu).total_billed()
    with pytest.raises(openai.BadRequestError):
        client.batches.cancel(batch.id)


def test_unknown_custom_id_hook(
    client: openai.OpenAI, emu: Emulator, submit: SubmitBatch, wait: WaitBatch
) -> None:
    """The unknown_custom_id fault adds one output line whose custom_id was never submitted."""
    emu.set_faults(Faults(unknown_custom_id=1.0))
    done = wait(submit(jsonl(lines(3))).id)
    ids = {str(line["custom_id"]) for line in read_jsonl(client, done.output_file_id)}
    assert 1 == len(ids - {"c0", "c1", "c2"})


def test_drop_output_hook(
    client: openai.OpenAI, emu: Emulator, submit: SubmitBatch, wait: WaitBatch
) -> None:
    """The drop_output fault completes a batch with output_file_id null although lines succeeded."""
    emu.set_faults(Faults(drop_output=1.0))
    done = wait(submit(jsonl(lines(3))).id)
    assert ("completed", None, None) == (done.status, done.output_file_id, done.error_file_id)
    assert done.request_counts is not None
    assert 3 == done.request_counts.completed


@pytest.fixture
def many_batches(client: openai.OpenAI, emu: Emulator) -> list[str]:
    """Five batch ids, oldest first."""
    uploaded = client.files.create(file=("in.jsonl", jsonl(lines(1))), purpose="batch")
    ids = []
    for _ in range(5):
        batch = client.batches.create(
            input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
        )
        ids.append(batch.id)
    return ids


def test_batches_list_pages_newest_first(client: openai.OpenAI, many_batches: list[str]) -> None:
    """GET /v1/batches pages newest first with has_more and an after cursor."""
    first = client.batches.list(limit=2)
    assert (many_batches[::-1][:2], True) == ([b.id for b in first.data], first.has_more)
    everything = [b.id for b in client.batches.list(limit=2)]
    assert many_batches[::-1] == everything
    last = client.batches.list(limit=2, after=many_batches[1])
    assert ([many_batches[0]], False) == ([b.id for b in last.data], last.has_more)


def test_create_refuses_a_bad_endpoint(client: openai.OpenAI) -> None:
    """Creating a batch for an unsupported endpoint is a 400 at once."""
    uploaded = client.files.create(file=("in.jsonl", jsonl(lines(1))), purpose="batch")
    with pytest.raises(openai.BadRequestError) as caught:
        client.batches.create(
            input_file_id=uploaded.id, endpoint="/v1/images/generations", completion_window="24h"
        )
    assert "endpoint" == caught.value.param


def test_output_file_lines_have_openai_shape(
    client: openai.OpenAI, submit: SubmitBatch, wait: WaitBatch
) -> None:
    """Output lines carry id, custom_id, response {status_code, request_id, body} and a null error."""
    done = wait(submit(jsonl(lines(1))).id)
    line = read_jsonl(client, done.output_file_id)[0]
    assert ["custom_id", "error", "id", "response"] == sorted(line)
    assert isinstance(line["response"], dict)
    assert ["body", "request_id", "status_code"] == sorted(line["response"])
    assert str(line["id"]).startswith("batch_req_")
    json.dumps(line)
