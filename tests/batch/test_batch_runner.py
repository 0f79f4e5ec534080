"""BatchRunner against the emulator through the real SDK: rounds, dedup, sharding, failures."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import openai
import pytest
from returns.result import Failure, Success
from tests.billing import settled_ledger

from inert import BatchRunner, ImmediateRunner, Request, Store
from inert._runners._batch import jsonl_line, parse_output_lines
from inert.emulator import Emulator, Faults
from inert.errors import ApiError, ExpiredError, RequestError
from inert.testing import op_of

from ._support import MODEL, Words, ask, bad_request, pipeline
from ._transport import LossyTransport


def fast(client: openai.AsyncOpenAI, store: Store, **settings: Any) -> BatchRunner:
    """A batch runner that polls every few milliseconds and shows no progress."""
    return BatchRunner(
        client, store=store, poll_interval=0.01, poll_interval_max=0.05, progress=False, **settings
    )


def after_first_create(wire: LossyTransport, action: Callable[[], object]) -> None:
    """Run ``action()`` once, as the answer of the first batch create arrives."""
    wire.on_answer("POST", "/v1/batches", lambda _: action())


def shard_lines(store: Store) -> list[set[str]]:
    """The custom ids of each journaled shard, oldest first."""
    return [set(store.shard_custom_ids(r.id)) for r in store.shards()]


async def test_rounds_equal_the_dependency_depth(runner: BatchRunner, emu: Emulator) -> None:
    """A three-level pipeline over two words takes three batch rounds, one batch each."""
    results = await runner.run_all([pipeline("bank"), pipeline("spring")])
    assert len(results) == 2
    assert runner.report.rounds == 3
    assert runner.report.batches_created == 3
    assert [] == [k for k, n in settled_ledger(emu).counts().items() if n > 1]


async def test_duplicates_are_sent_once(runner: BatchRunner, emu: Emulator, store: Store) -> None:
    """Identical requests become one batch line and one billed call."""
    results = await runner.run_all([ask("a"), ask("b"), ask("a")])
    assert results[0] == results[2]
    assert 2 == sum(settled_ledger(emu).counts().values())
    assert runner.report.ops_deduplicated == 1
    assert [r.size for r in store.shards()] == [2]


async def test_shards_by_request_count(
    client: openai.AsyncOpenAI, store: Store, emu: Emulator
) -> None:
    """Seven requests with at most three per batch make batches of 3, 3 and 1 in one round."""
    runner = fast(client, store, max_requests_per_batch=3)
    results = await runner.run_all([ask(f"w{i}") for i in range(7)])
    assert len(results) == 7
    assert runner.report.rounds == 1
    assert [r.size for r in store.shards()] == [3, 3, 1]
    assert 7 == sum(settled_ledger(emu).counts().values())


async def test_shards_by_bytes(client: openai.AsyncOpenAI, store: Store) -> None:
    """With a byte limit of two and a half lines, every batch holds two lines."""
    requests = [ask(f"word {i}") for i in range(5)]
    ops = [r.op for r in requests]  # type: ignore[attr-defined]  # pyright: ignore[reportAttributeAccessIssue]  # a call node's op
    longest = max(len(jsonl_line(op)) for op in ops)
    runner = fast(client, store, max_bytes_per_batch=longest * 5 // 2)
    await runner.run_all(requests)
    assert [r.size for r in store.shards()] == [2, 2, 1]


async def test_groups_by_model(runner: BatchRunner, store: Store) -> None:
    """Requests for two models go to two batches of the same round."""
    await runner.run_all([ask("a"), ask("a", model="gpt-4o"), ask("b")])
    assert {(MODEL, 2), ("gpt-4o", 1)} == {(r.model, r.size) for r in store.shards()}
    assert runner.report.rounds == 1


async def test_per_line_client_errors_are_typed(runner: BatchRunner) -> None:
    """A line the API refuses with a 400 fails alone as an ApiError and is not resubmitted."""
    good, bad = await runner.run_all_settled([ask("fine"), bad_request()])
    assert isinstance(good, Success)
    assert isinstance(bad, Failure)
    error = bad.failure()
    assert isinstance(error, ApiError)
    assert (error.status, error.code) == (400, "invalid_type")
    assert runner.report.batches_created == 1
    assert runner.report.retries == 0


async def test_expired_lines_are_resubmitted_alone(
    runner: BatchRunner,
    client: openai.AsyncOpenAI,
    emu: Emulator,
    store: Store,
    wire: LossyTransport,
) -> None:
    """Lines that expired go, and only they go, into a second batch; every answer arrives."""
    emu.set_faults(Faults(line_expired=0.5))
    after_first_create(wire, lambda: emu.set_faults(Faults()))
    results = await runner.run_all([ask(f"w{i}") for i in range(12)])
    assert len(results) == 12
    first, second = store.shards()
    assert first.error_file_id is not None
    error_file = await client.files.content(first.error_file_id)
    expired = {line.custom_id for line in parse_output_lines(error_file.content)[0]}
    assert expired == set(store.shard_custom_ids(second.id))
    assert len(expired) == runner.report.retries
    assert runner.report.batches_created == 2
    assert dict.fromkeys(store.shard_custom_ids(first.id), 1) == settled_ledger(emu).counts()


async def test_expired_batch_keeps_its_completed_part(
    runner: BatchRunner,
    client: openai.AsyncOpenAI,
    emu: Emulator,
    store: Store,
    wire: LossyTransport,
) -> None:
    """A batch that expires halfway stores its answers; only the unfinished lines go again."""
    requests = [ask(f"w{i}") for i in range(10)]
    expected = await ImmediateRunner(client).run_all(requests)
    emu.reset()
    emu.set_faults(Faults(batch_expire=1.0))
    after_first_create(wire, lambda: emu.set_faults(Faults()))
    assert expected == await runner.run_all(requests)
    first, second = shard_lines(store)
    assert [r.remote_status for r in store.shards()] == ["expired", "completed"]
    assert 0 < len(second) < len(first)
    assert second < first
    ops = [op_of(r) for r in requests]
    stored = store.get_responses([op.key for op in ops])
    assert expected == [op.decode(stored[op.key]) for op in ops if op.key in stored]
    assert dict.fromkeys(first, 1) == settled_ledger(emu).counts()


async def test_lines_that_keep_expiring_fail_as_expired(
    client: openai.AsyncOpenAI, emu: Emulator, store: Store
) -> None:
    """After max_attempts batches in which a line expired, it fails with ExpiredError."""
    emu.set_faults(Faults(line_expired=1.0))
    runner = fast(client, store, max_attempts=2)
    (result,) = await runner.run_all_settled([ask("never")])
    assert isinstance(result, Failure)
    assert isinstance(result.failure(), ExpiredError)
    assert runner.report.batches_created == 2
    assert runner.report.retries == 1


async def test_server_errors_are_retried_then_typed(
    client: openai.AsyncOpenAI, emu: Emulator, store: Store
) -> None:
    """A line failing with a 500 is resubmitted; when it keeps failing it is an ApiError(500)."""
    emu.set_faults(Faults(line_failed=1.0))
    runner = fast(client, store, max_attempts=2)
    (result,) = await runner.run_all_settled([ask("flaky")])
    assert isinstance(result, Failure)
    error = result.failure()
    assert isinstance(error, ApiError)
    assert error.status == 500
    assert runner.report.batches_created == 2


async def test_server_errors_recover_on_resubmission(
    runner: BatchRunner, client: openai.AsyncOpenAI, emu: Emulator, wire: LossyTransport
) -> None:
    """Lines that failed with a 500 succeed when resubmitted."""
    emu.set_faults(Faults(line_failed=1.0))
    after_first_create(wire, lambda: emu.set_faults(Faults()))
    results = await runner.run_all([ask("x"), ask("y")])
    assert len(results) == 2
    assert runner.report.retries == 2
    assert 2 == sum(settled_ledger(emu).counts().values())


async def test_unknown_custom_id_is_never_assigned(
    runner: BatchRunner, emu: Emulator, store: Store, client: openai.AsyncOpenAI
) -> None:
    """An output line with a custom_id the batch never had is recorded, not given to any op."""
    expected = await ImmediateRunner(client).run_all([ask("p"), ask("q")])
    emu.reset()
    emu.set_faults(Faults(unknown_custom_id=1.0))
    assert expected == await runner.run_all([ask("p"), ask("q")])
    ((_, custom_id, detail),) = store.anomalies()
    assert custom_id is not None
    assert custom_id.startswith("unknown-")
    assert "not assigned" in detail


async def test_completed_batch_without_output_file_is_not_paid_again(
    runner: BatchRunner, client: openai.AsyncOpenAI, emu: Emulator, store: Store
) -> None:
    """A batch that reports completed lines but has no output file: its lines are not sent
    again (they were paid); they fail for this run and the shard stays in the journal."""
    emu.set_faults(Faults(drop_output=1.0))
    results = await runner.run_all_settled([ask("m"), ask("n")])
    errors = [r.failure() for r in results if isinstance(r, Failure)]
    assert 2 == len(errors)
    assert all(isinstance(e, ApiError) and e.code == "incomplete_output" for e in errors)
    assert "has no output file" in errors[0].message
    assert 0 == runner.report.retries
    assert ["created"] == [r.state for r in store.shards()]
    assert 2 == sum(settled_ledger(emu).counts().values())


async def test_failed_batch_fails_each_op_without_resubmitting(
    client: openai.AsyncOpenAI, store: Store
) -> None:
    """A batch rejected at validation gives each op an ApiError naming why, with no retry."""
    async with (
        Emulator(time_scale=0.05, max_lines=1) as strict,
        openai.AsyncOpenAI(base_url=strict.base_url, api_key="k") as other,
    ):
        runner = fast(other, store)
        results = await runner.run_all_settled([ask("a"), ask("b")])
    errors = [r.failure() for r in results if isinstance(r, Failure)]
    assert len(errors) == 2
    assert all(isinstance(e, ApiError) and e.code == "too_many_tasks" for e in errors)
    assert runner.report.batches_created == 1
    assert [r.state for r in store.shards()] == ["failed"]


async def test_batch_and_immediate_runners_agree(
    client: openai.AsyncOpenAI, store: Store, tmp_path: Any, emu: Emulator
) -> None:
    """The same requests give equal results through both runners, and they share the store."""
    requests: list[Request[Words]] = [ask(f"agree {i}") for i in range(4)]
    batch = await fast(client, store).run_all(requests)
    with Store(tmp_path / "immediate.sqlite3") as other:
        immediate = await ImmediateRunner(client, store=other).run_all(requests)
    assert batch == immediate
    billed = settled_ledger(emu).total_billed()
    cached = ImmediateRunner(client, store=store)
    assert batch == await cached.run_all(requests)
    assert cached.report.cache_hits == 4
    assert billed == settled_ledger(emu).total_billed()


async def test_usage_and_cost_come_from_the_output_lines(
    runner: BatchRunner, emu: Emulator
) -> None:
    """Tokens are read from each line's usage and the cost carries the batch discount."""
    await runner.run_all([ask("u1"), ask("u2")])
    report = runner.report
    entries = settled_ledger(emu).entries()
    assert sum(e.prompt_tokens for e in entries) == report.prompt_tokens
    assert sum(e.completion_tokens for e in entries) == report.completion_tokens
    assert report.cost_usd == pytest.approx(report.full_price_usd * 0.5)
    assert report.cost_usd > 0


async def test_progress_display_shows_each_batch(
    client: openai.AsyncOpenAI, store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    """With progress on, stderr shows each batch with its status and never the API key."""
    runner = BatchRunner(client, store=store, poll_interval=0.01, progress=True)
    await runner.run_all([ask("shown")])
    err = capsys.readouterr().err
    (record,) = store.shards()
    assert record.batch_id is not None
    assert record.batch_id in err
    assert "completed" in err
    assert "SECRET" not in err


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"poll_interval": 0}, "poll_interval must be a positive number"),
        ({"poll_interval": 5, "poll_interval_max": 1}, "must be at least poll_interval"),
        ({"max_requests_per_batch": 50_001}, "max_requests_per_batch must be an integer"),
        ({"max_bytes_per_batch": 0}, "max_bytes_per_batch must be an integer"),
        ({"max_attempts": 0}, "max_attempts must be an integer"),
        ({"completion_window": "1h"}, "completion_window must be '24h'"),
        ({"metadata": {"inert_run": "x"}}, "reserved"),
    ],
)
def test_settings_are_validated(
    client: openai.AsyncOpenAI, store: Store, settings: dict[str, Any], message: str
) -> None:
    """A bad setting is refused when the runner is built, with a message naming it."""
    with pytest.raises(ValueError, match=message):
        BatchRunner(client, store=store, **settings)


def test_a_synchronous_client_is_refused(store: Store, emu: Emulator) -> None:
    """Passing openai.OpenAI instead of AsyncOpenAI says which client to pass."""
    with (
        openai.OpenAI(base_url=emu.base_url, api_key="k") as sync,
        pytest.raises(TypeError, match="AsyncOpenAI"),
    ):
        BatchRunner(sync, store=store)  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]  # the mistake under test


async def test_run_all_raises_after_storing_every_answer(runner: BatchRunner, store: Store) -> None:
    """run_all raises for the failed request, yet the successful answer is already stored."""
    with pytest.raises(RequestError):
        await runner.run_all([ask("kept"), bad_request()])
    assert store.response_count() == 1
