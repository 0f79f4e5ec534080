"""The provider seam of the batch runner, one adapter call at a time.

Unit-level: each SDK client talks to an ``httpx2.MockTransport`` that answers as the
provider's documented API does (OpenAI's Batch API list; Anthropic's Message Batches,
``MessageBatch`` and ``MessageBatchIndividualResponse`` in the ``anthropic`` SDK), so a
change in how a result line is translated, how a batch's status and counts are read,
or how a batch whose create answer was lost is found again, fails here.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, cast

import anthropic
import httpx2
import openai
import pytest
from anthropic.types.messages import MessageBatch

from inert._json import JSON
from inert._runners._batch._http import NotJsonError
from inert._runners._batch._output import OutputLine, parse_output_file
from inert._runners._batch._remote import (
    _LIST_SLACK_SECONDS,
    INLINE,
    MESSAGES,
    OpenAIBatches,
    Undecided,
)
from inert._runners._batch._remote_anthropic import (
    _ERROR_STATUSES,
    ANTHROPIC_MAX_BYTES,
    ANTHROPIC_MAX_REQUESTS,
    ANTHROPIC_SLACK_SECONDS,
    AnthropicBatches,
    _custom_ids,
    _message_batch,
    _page,
    _total,
    as_batch,
    batch_output_lines,
    output_line,
)
from inert._store import ShardRecord, Store

T0 = 1_700_000_000.0
MESSAGE: JSON = {"id": "msg_1", "type": "message", "role": "assistant", "content": []}


def message_batch(
    batch_id: str = "msgbatch_1",
    *,
    status: str = "in_progress",
    created: float = T0,
    counts: tuple[int, int, int, int, int] = (1, 0, 0, 0, 0),
    cancel_initiated: float | None = None,
    ended: float | None = None,
    archived: float | None = None,
    results_url: str | None = None,
) -> dict[str, Any]:
    """A Message Batch as the API answers it."""

    def moment(seconds: float | None) -> str | None:
        return None if seconds is None else datetime.fromtimestamp(seconds, UTC).isoformat()

    processing, succeeded, errored, canceled, expired = counts
    return {
        "id": batch_id,
        "type": "message_batch",
        "processing_status": status,
        "request_counts": {
            "processing": processing,
            "succeeded": succeeded,
            "errored": errored,
            "canceled": canceled,
            "expired": expired,
        },
        "created_at": moment(created),
        "expires_at": moment(created + 86_400),
        "ended_at": moment(ended),
        "cancel_initiated_at": moment(cancel_initiated),
        "archived_at": moment(archived),
        "results_url": results_url,
    }


def parsed(body: dict[str, Any]) -> MessageBatch:
    return MessageBatch.model_validate(body)


# Result lines


def test_a_succeeded_result_is_an_answered_line() -> None:
    item: JSON = {"custom_id": "k1", "result": {"type": "succeeded", "message": MESSAGE}}
    assert {
        "custom_id": "k1",
        "response": {"status_code": 200, "body": MESSAGE},
        "error": None,
    } == output_line(item)


@pytest.mark.parametrize(("kind", "status"), sorted(_ERROR_STATUSES.items()))
def test_an_errored_result_has_the_status_of_its_error_type(kind: str, status: int) -> None:
    item: JSON = {
        "custom_id": "k1",
        "result": {
            "type": "errored",
            "error": {"type": "error", "error": {"type": kind, "message": "m"}},
        },
    }
    assert {
        "custom_id": "k1",
        "response": {
            "status_code": status,
            "body": {"error": {"message": "m", "code": kind, "type": kind}},
        },
        "error": None,
    } == output_line(item)


def test_the_published_statuses_of_anthropic_error_types() -> None:
    assert {
        "invalid_request_error": 400,
        "authentication_error": 401,
        "billing_error": 402,
        "permission_error": 403,
        "not_found_error": 404,
        "request_too_large": 413,
        "rate_limit_error": 429,
        "api_error": 500,
        "timeout_error": 504,
        "overloaded_error": 529,
    } == dict(_ERROR_STATUSES)
    assert (100_000, 256 * 1024 * 1024, 300.0) == (
        ANTHROPIC_MAX_REQUESTS,
        ANTHROPIC_MAX_BYTES,
        ANTHROPIC_SLACK_SECONDS,
    )


@pytest.mark.parametrize(
    ("error", "status", "code", "message"),
    [
        ({"type": "error", "error": {"type": "new_kind", "message": "m"}}, 500, "new_kind", "m"),
        ({"type": "error", "error": {"message": "m"}}, 500, "api_error", "m"),
        ({"type": "error", "error": {"type": 3, "message": 4}}, 500, "api_error", "no message"),
        ({"type": "error", "error": "flat"}, 500, "api_error", "no message"),
        ("flat", 500, "api_error", "no message"),
        (None, 500, "api_error", "no message"),
    ],
)
def test_an_errored_result_of_an_odd_shape_is_a_server_error(
    error: JSON, status: int, code: str, message: str
) -> None:
    item: JSON = {"custom_id": "k", "result": {"type": "errored", "error": error}}
    assert {
        "custom_id": "k",
        "response": {
            "status_code": status,
            "body": {"error": {"message": message, "code": code, "type": code}},
        },
        "error": None,
    } == output_line(item)


def test_canceled_and_expired_results_are_the_batch_api_line_errors() -> None:
    assert {
        "custom_id": "k",
        "response": None,
        "error": {"code": "batch_cancelled", "message": "the request was canceled before it ran"},
    } == output_line({"custom_id": "k", "result": {"type": "canceled"}})
    assert {
        "custom_id": "k",
        "response": None,
        "error": {
            "code": "batch_expired",
            "message": "the batch ended (24 hours) before the request ran",
        },
    } == output_line({"custom_id": "k", "result": {"type": "expired"}})


@pytest.mark.parametrize(
    "item",
    [
        [1],
        "text",
        {"custom_id": 1, "result": {"type": "canceled"}},
        {"result": {"type": "canceled"}},
        {"custom_id": "k", "result": "canceled"},
        {"custom_id": "k"},
        {"custom_id": "k", "result": {"type": "succeeded"}},
        {"custom_id": "k", "result": {"type": "succeeded", "message": "text"}},
        {"custom_id": "k", "result": {"type": "unknown"}},
        {"custom_id": "k", "result": {}},
    ],
)
def test_anything_else_is_no_result(item: JSON) -> None:
    assert output_line(item) is None


def test_a_results_file_becomes_batch_api_output_lines_line_for_line() -> None:
    results = (
        json.dumps({"custom_id": "a", "result": {"type": "succeeded", "message": {"t": "é"}}})
        + "\n\n  \n"
        + '{"cut'
        + "\n"
        + json.dumps({"custom_id": "b", "result": {"type": "mystery"}})
        + "\n"
        + '{"x": NaN}'
    ).encode()
    out = batch_output_lines(results)
    assert (
        b'{"custom_id":"a","response":{"status_code":200,"body":{"t":"\xc3\xa9"}},"error":null}\n'
        b'{"cut\n'
        + json.dumps(
            {"unrecognised_message_batch_result": {"custom_id": "b", "result": {"type": "mystery"}}}
        ).encode()
        + b"\n"
        b'{"x": NaN}\n'
    ) == out
    file = parse_output_file(out)
    assert [OutputLine("a", 200, {"t": "é"}, None)] == file.lines
    assert 1 == len(file.malformed)
    assert 2 == len(file.unreadable)
    assert b"" == batch_output_lines(b"\n \n")


def test_custom_ids_are_read_from_every_json_line() -> None:
    data = b'{"custom_id": "a"}\n{"custom_id": 3}\nnot json\n[1]\n{"custom_id": "b", "x": 1}\n{"other": 1}'
    assert {"a", "b"} == _custom_ids(data)


# Batches


def test_counts_add_up_every_state() -> None:
    assert 15 == _total(parsed(message_batch(counts=(1, 2, 3, 4, 5))))


def test_an_in_progress_message_batch_reads_as_an_in_progress_batch() -> None:
    batch = as_batch(parsed(message_batch(counts=(4, 3, 2, 1, 5))))
    assert ("msgbatch_1", "batch", MESSAGES, "24h", int(T0), INLINE, "in_progress") == (
        batch.id,
        batch.object,
        batch.endpoint,
        batch.completion_window,
        batch.created_at,
        batch.input_file_id,
        batch.status,
    )
    assert batch.request_counts is not None
    assert (3, 8, 15) == (
        batch.request_counts.completed,
        batch.request_counts.failed,
        batch.request_counts.total,
    )
    assert (None, None, int(T0) + 86_400, None, None, None) == (
        batch.output_file_id,
        batch.error_file_id,
        batch.expires_at,
        batch.cancelling_at,
        batch.completed_at,
        batch.cancelled_at,
    )


def test_an_ended_batch_is_completed_with_its_results_as_output() -> None:
    body = message_batch(
        status="ended", counts=(0, 2, 0, 0, 0), ended=T0 + 60, results_url="https://r/1"
    )
    batch = as_batch(parsed(body))
    assert ("completed", "https://r/1", int(T0) + 60, None, None) == (
        batch.status,
        batch.output_file_id,
        batch.completed_at,
        batch.cancelled_at,
        batch.cancelling_at,
    )


def test_a_cancelled_batch_is_cancelling_then_cancelled() -> None:
    cancelling = as_batch(parsed(message_batch(status="canceling", cancel_initiated=T0 + 5)))
    assert ("cancelling", int(T0) + 5, None, None) == (
        cancelling.status,
        cancelling.cancelling_at,
        cancelling.cancelled_at,
        cancelling.output_file_id,
    )
    body = message_batch(
        status="ended",
        cancel_initiated=T0 + 5,
        ended=T0 + 9,
        results_url="https://r/2",
        counts=(0, 1, 0, 1, 0),
    )
    ended = as_batch(parsed(body))
    assert ("cancelled", int(T0) + 9, None, "https://r/2") == (
        ended.status,
        ended.cancelled_at,
        ended.completed_at,
        ended.output_file_id,
    )


def test_a_body_that_is_no_message_batch_is_not_json() -> None:
    assert "msgbatch_1" == _message_batch("polling", json.dumps(message_batch()).encode()).id
    with pytest.raises(
        NotJsonError, match=r"^polling: the API answered with a body that is not JSON: '<html>'"
    ):
        _message_batch("polling", b"<html>")
    with pytest.raises(NotJsonError, match=r"^polling: "):
        _message_batch("polling", b'{"id": 3}')


def test_a_list_page_reads_its_batches_and_cursor() -> None:
    body = {"data": [message_batch("b1"), message_batch("b2")], "has_more": True, "last_id": "b2"}
    page = _page(json.dumps(body).encode())
    assert (["b1", "b2"], True, "b2") == ([b.id for b in page.data], page.has_more, page.last_id)
    page = _page(json.dumps({"data": [], "has_more": "yes", "last_id": 7}).encode())
    assert ([], False, None) == (page.data, page.has_more, page.last_id)
    page = _page(json.dumps({"data": []}).encode())
    assert (False, None) == (page.has_more, page.last_id)


@pytest.mark.parametrize(
    "data",
    [b"<html>", b"[1]", b'{"data": 3}', b'{"items": []}', b'{"data": [{"id": 1}]}'],
)
def test_a_list_page_of_another_shape_is_not_json(data: bytes) -> None:
    with pytest.raises(
        NotJsonError,
        match=r"^listing message batches: the API answered with a body that is not JSON",
    ):
        _page(data)


# The adapters over a mocked API

Handler = Callable[[httpx2.Request], httpx2.Response]


class Recorder:
    """Answers each request with ``handler`` and keeps every request seen."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.requests: list[httpx2.Request] = []

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        self.requests.append(request)
        return self.handler(request)


def anthropic_adapter(handler: Handler, store: object = None) -> tuple[AnthropicBatches, Recorder]:
    recorder = Recorder(handler)
    client = anthropic.AsyncAnthropic(
        api_key="test",
        base_url="https://anthropic.test",
        http_client=httpx2.AsyncClient(transport=httpx2.MockTransport(recorder)),
    )
    return AnthropicBatches(client, cast("Store", store)), recorder


class FakeStore:
    """What the Anthropic scan asks the store: which batch ids are journaled, a shard's ids."""

    def __init__(self, journaled: set[str], ids: dict[int, list[str]]) -> None:
        self.journaled = journaled
        self.ids = ids

    def find_shard(self, batch_id: str) -> object | None:
        return object() if batch_id in self.journaled else None

    def shard_custom_ids(self, shard_id: int) -> list[str]:
        return self.ids[shard_id]


class Record:
    """The fields of a journal row that the scans read."""

    def __init__(
        self,
        shard_id: int,
        created_at: float,
        run_id: str = "run",
        shard: int = 0,
        digest: str = "d",
    ) -> None:
        self.id = shard_id
        self.created_at = created_at
        self.run_id = run_id
        self.shard = shard
        self.digest = digest


def records(*items: Record) -> Sequence[ShardRecord]:
    return cast("Sequence[ShardRecord]", list(items))


def json_response(body: object, status: int = 200) -> httpx2.Response:
    return httpx2.Response(status, json=body)


def results_file(*ids: str) -> bytes:
    return b"".join(
        json.dumps({"custom_id": cid, "result": {"type": "succeeded", "message": MESSAGE}}).encode()
        + b"\n"
        for cid in ids
    )


async def test_anthropic_calls_read_and_translate_the_batch() -> None:
    answered = message_batch("msgbatch_9", status="canceling", cancel_initiated=T0)

    def handler(request: httpx2.Request) -> httpx2.Response:
        return json_response(answered)

    adapter, seen = anthropic_adapter(handler)
    assert ("anthropic", False) == (adapter.provider, adapter.uploads)
    assert (MESSAGES, None) == (
        adapter.batch_endpoint(MESSAGES),
        adapter.batch_endpoint("/v1/chat/completions"),
    )
    assert [MESSAGES] == list(adapter.endpoints())
    assert "cancelling" == (await adapter.retrieve("msgbatch_9")).status
    assert "cancelling" == (await adapter.cancel("msgbatch_9")).status
    assert [
        ("GET", "/v1/messages/batches/msgbatch_9"),
        ("POST", "/v1/messages/batches/msgbatch_9/cancel"),
    ] == [(r.method, r.url.path) for r in seen.requests]


async def test_anthropic_polls_of_a_page_that_is_no_batch_are_not_json() -> None:
    adapter, _ = anthropic_adapter(lambda request: httpx2.Response(200, text="<html>"))
    with pytest.raises(NotJsonError, match=r"^polling message batch b1: "):
        await adapter.retrieve("b1")
    with pytest.raises(NotJsonError, match=r"^cancelling message batch b1: "):
        await adapter.cancel("b1")


async def test_anthropic_download_translates_the_results() -> None:
    def handler(request: httpx2.Request) -> httpx2.Response:
        assert "application/binary" == request.headers["accept"]
        return httpx2.Response(200, content=results_file("a"))

    adapter, seen = anthropic_adapter(handler)
    out = await adapter.download("https://anthropic.test/v1/messages/batches/b1/results")
    assert [OutputLine("a", 200, MESSAGE, None)] == parse_output_file(out).lines
    assert ["/v1/messages/batches/b1/results"] == [r.url.path for r in seen.requests]


def paged(batches: list[dict[str, Any]], per_page: int = 2) -> Handler:
    """The list endpoint over ``batches`` (newest first), ``per_page`` at a time, or a
    batch's results (every one answers the ids after ``results/`` split at ``,``)."""

    def handler(request: httpx2.Request) -> httpx2.Response:
        if request.url.path.endswith("/results"):
            ids = request.url.path.split("/")[-2].split(",")
            return httpx2.Response(200, content=results_file(*ids))
        assert "100" == request.url.params["limit"]
        after = request.url.params.get("after_id")
        start = 0 if after is None else 1 + [b["id"] for b in batches].index(after)
        page = batches[start : start + per_page]
        more = start + per_page < len(batches)
        return json_response(
            {"data": page, "has_more": more, "last_id": page[-1]["id"] if page else None}
        )

    return handler


def ended(batch_id: str, created: float, ids: Sequence[str], **extra: Any) -> dict[str, Any]:
    """An ended batch whose results answer ``ids`` (its results URL names them)."""
    return message_batch(
        batch_id,
        status="ended",
        created=created,
        counts=(0, len(ids), 0, 0, 0),
        ended=created + 10,
        results_url=f"https://anthropic.test/v1/messages/batches/{','.join(ids)}/results",
        **extra,
    )


async def test_anthropic_scan_pages_back_until_the_shards_were_journaled() -> None:
    """Every page is read until a batch older than the shards (less the slack) shows up."""
    now = T0 + 10_000
    batches = [
        message_batch("n1", created=now, counts=(3, 0, 0, 0, 0)),
        message_batch("n2", created=now - 1, counts=(9, 0, 0, 0, 0)),
        message_batch("n3", created=now - 2, counts=(9, 0, 0, 0, 0)),
        message_batch(
            "old", created=now - 100 - ANTHROPIC_SLACK_SECONDS - 1, counts=(3, 0, 0, 0, 0)
        ),
        message_batch("older", created=now - 5000, counts=(3, 0, 0, 0, 0)),
    ]
    store = FakeStore(set(), {7: ["a", "b", "c"]})
    adapter, seen = anthropic_adapter(paged(batches), store)
    found = await adapter.scan(records(Record(7, now - 100)))
    assert {7: "n1"} == {k: v.id for k, v in found.items()}
    assert [None, "n2"] == [r.url.params.get("after_id") for r in seen.requests]


async def test_anthropic_scan_reads_every_page_while_more_are_listed() -> None:
    now = T0
    batches = [message_batch(f"b{i}", created=now - i, counts=(5, 0, 0, 0, 0)) for i in range(5)]
    batches.append(message_batch("mine", created=now - 5, counts=(2, 0, 0, 0, 0)))
    store = FakeStore(set(), {1: ["a", "b"]})
    adapter, seen = anthropic_adapter(paged(batches), store)
    found = await adapter.scan(records(Record(1, now - 50)))
    assert {1: "mine"} == {k: v.id for k, v in found.items()}
    assert [None, "b1", "b3"] == [r.url.params.get("after_id") for r in seen.requests]


async def test_anthropic_scan_skips_journaled_batches_and_wrong_sizes() -> None:
    batches = [
        message_batch("journaled", created=T0, counts=(2, 0, 0, 0, 0)),
        message_batch("three", created=T0, counts=(3, 0, 0, 0, 0)),
        message_batch("early", created=T0 - ANTHROPIC_SLACK_SECONDS - 20, counts=(2, 0, 0, 0, 0)),
    ]
    store = FakeStore({"journaled"}, {1: ["a", "b"]})
    adapter, _ = anthropic_adapter(paged(batches), store)
    assert {} == await adapter.scan(records(Record(1, T0 - 10)))


async def test_anthropic_scan_takes_a_batch_within_the_slack() -> None:
    batches = [message_batch("just", created=T0 - ANTHROPIC_SLACK_SECONDS, counts=(2, 0, 0, 0, 0))]
    adapter, _ = anthropic_adapter(paged(batches), FakeStore(set(), {1: ["a", "b"]}))
    assert ["just"] == [b.id for b in (await adapter.scan(records(Record(1, T0)))).values()]


async def test_anthropic_scan_confirms_ended_batches_by_their_results() -> None:
    """An ended batch answering the shard's ids wins over an open one; the earliest of
    several confirmed ones is taken; one answering other ids is not."""
    batches = [
        ended("late", T0 + 30, ["a", "b"]),
        ended("other", T0 + 20, ["x", "y"]),
        message_batch("open", created=T0 + 15, counts=(2, 0, 0, 0, 0)),
        ended("first", T0 + 10, ["a", "b"]),
    ]
    adapter, _ = anthropic_adapter(paged(batches, per_page=10), FakeStore(set(), {1: ["a", "b"]}))
    found = await adapter.scan(records(Record(1, T0)))
    assert {1: "first"} == {k: v.id for k, v in found.items()}
    assert "completed" == found[1].status


async def test_anthropic_scan_does_not_confirm_by_archived_or_missing_results() -> None:
    batches = [
        ended("archived", T0 + 30, ["a", "b"], archived=T0 + 40),
        message_batch(
            "no-url", status="ended", created=T0 + 20, counts=(0, 2, 0, 0, 0), ended=T0 + 25
        ),
    ]
    adapter, seen = anthropic_adapter(
        paged(batches, per_page=10), FakeStore(set(), {1: ["a", "b"]})
    )
    with pytest.raises(Undecided):
        await adapter.scan(records(Record(1, T0)))
    assert not any(r.url.path.endswith("/results") for r in seen.requests)


async def test_anthropic_scan_gives_each_batch_to_one_shard_in_journal_order() -> None:
    batches = [
        message_batch("second", created=T0 + 20, counts=(2, 0, 0, 0, 0)),
        ended("first", T0 + 10, ["a", "b"]),
    ]
    store = FakeStore(set(), {1: ["c", "d"], 2: ["a", "b"]})
    adapter, _ = anthropic_adapter(paged(batches, per_page=10), store)
    found = await adapter.scan(records(Record(1, T0 + 5), Record(2, T0)))
    assert {2: "first", 1: "second"} == {k: v.id for k, v in found.items()}


async def test_anthropic_scan_never_guesses_between_open_candidates() -> None:
    batches = [
        message_batch("one", created=T0 + 20, counts=(2, 0, 0, 0, 0)),
        message_batch("two", created=T0 + 10, counts=(2, 0, 0, 0, 0)),
    ]
    adapter, _ = anthropic_adapter(paged(batches, per_page=10), FakeStore(set(), {4: ["a", "b"]}))
    with pytest.raises(Undecided) as raised:
        await adapter.scan(records(Record(4, T0)))
    failure = raised.value
    assert (False, None, "ambiguous_batch") == (
        failure.definite,
        failure.status,
        getattr(failure.error, "code", None),
    )
    assert failure.error.message == (
        "2 message batches of 2 requests, made since shard 4 was journaled and carried by no journal entry, "
        "may be the one its lost create made; nothing was submitted for its lines: run again once they have "
        "ended, when their results tell them apart"
    )


async def test_anthropic_create_sends_the_requests_inline() -> None:
    from inert._runners._batch._lines import plan_shards
    from inert.anthropic import message
    from inert.testing import op_of

    ops = [
        op_of(
            message(
                model="claude-sonnet-4-5", max_tokens=10, messages=[{"role": "user", "content": t}]
            )
        )
        for t in "ab"
    ]
    (plan,), _ = plan_shards(ops, max_requests=10, max_bytes=10**6)
    bodies: list[bytes] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        bodies.append(request.content)
        assert "application/json" == request.headers["content-type"]
        assert ("POST", "/v1/messages/batches") == (request.method, request.url.path)
        return json_response(message_batch("made", counts=(2, 0, 0, 0, 0)))

    adapter, _ = anthropic_adapter(handler)
    batch = await adapter.create(
        cast("ShardRecord", Record(1, T0)), plan, MESSAGES, {"inert_run": "r"}
    )
    assert ("made", "in_progress") == (batch.id, batch.status)
    (body,) = bodies
    assert {"requests": [{"custom_id": op.key, "params": op.body} for op in ops]} == json.loads(
        body
    )
    assert (
        body
        == (
            '{"requests":['
            + ",".join(
                '{"custom_id":"' + op.key + '","params":' + op.canonical_body() + "}" for op in ops
            )
            + "]}"
        ).encode()
    )


# OpenAI's list scan


def openai_adapter(handler: Handler) -> tuple[OpenAIBatches, Recorder]:
    recorder = Recorder(handler)
    client = openai.AsyncOpenAI(
        api_key="test",
        base_url="https://openai.test/v1",
        http_client=httpx2.AsyncClient(transport=httpx2.MockTransport(recorder)),
    )
    return OpenAIBatches(client), recorder


def openai_batch(batch_id: str, created: float, metadata: dict[str, str] | None) -> dict[str, Any]:
    return {
        "id": batch_id,
        "object": "batch",
        "endpoint": "/v1/chat/completions",
        "input_file_id": "file_1",
        "completion_window": "24h",
        "status": "in_progress",
        "created_at": int(created),
        "metadata": metadata,
    }


def openai_paged(batches: list[dict[str, Any]], per_page: int = 2) -> Handler:
    def handler(request: httpx2.Request) -> httpx2.Response:
        after = request.url.params.get("after")
        start = 0 if after is None else 1 + [b["id"] for b in batches].index(after)
        page = batches[start : start + per_page]
        return json_response(
            {
                "object": "list",
                "data": page,
                "has_more": start + per_page < len(batches),
                "first_id": page[0]["id"] if page else None,
                "last_id": page[-1]["id"] if page else None,
            }
        )

    return handler


def tags(run: str, shard: int, digest: str) -> dict[str, str]:
    return {"inert_run": run, "inert_shard": str(shard), "inert_digest": digest}


async def test_openai_scan_finds_batches_by_their_metadata() -> None:
    batches = [
        openai_batch("stranger", T0 + 9, None),
        openai_batch("partial", T0 + 8, {"inert_run": "r", "inert_shard": "0"}),
        openai_batch("wrong-digest", T0 + 7, tags("r", 0, "other")),
        openai_batch("b0", T0 + 6, tags("r", 0, "d0")),
        openai_batch("b0-again", T0 + 5, tags("r", 0, "d0")),
        openai_batch("b1", T0 + 4, tags("r", 1, "d1")),
        openai_batch("after-all", T0 + 3, tags("r", 2, "d2")),
    ]
    adapter, seen = openai_adapter(openai_paged(batches))
    found = await adapter.scan(records(Record(10, T0, "r", 0, "d0"), Record(11, T0, "r", 1, "d1")))
    assert {10: "b0", 11: "b1"} == {k: v.id for k, v in found.items()}
    assert 3 == len(seen.requests)  # it stops once every shard is found
    assert "100" == seen.requests[0].url.params["limit"]


async def test_openai_scan_stops_at_batches_older_than_the_slack() -> None:
    batches = [
        openai_batch("new", T0, None),
        openai_batch("edge", T0 - _LIST_SLACK_SECONDS, tags("r", 1, "d1")),
        openai_batch("old", T0 - _LIST_SLACK_SECONDS - 1, tags("r", 0, "d0")),
        openai_batch("older", T0 - _LIST_SLACK_SECONDS - 2, tags("r", 2, "d2")),
    ]
    adapter, _ = openai_adapter(openai_paged(batches, per_page=10))
    found = await adapter.scan(
        records(
            Record(10, T0, "r", 0, "d0"),
            Record(11, T0 + 50, "r", 1, "d1"),
            Record(12, T0, "r", 2, "d2"),
        )
    )
    assert {11: "edge"} == {k: v.id for k, v in found.items()}
    assert 3600.0 == _LIST_SLACK_SECONDS


async def test_openai_adapter_serves_the_batch_api_endpoints() -> None:
    adapter, _ = openai_adapter(lambda request: json_response({}))
    assert ("openai", True) == (adapter.provider, adapter.uploads)
    assert "/v1/embeddings" == adapter.batch_endpoint("/v1/embeddings")
    assert adapter.batch_endpoint(MESSAGES) is None
    assert {
        "/v1/responses",
        "/v1/chat/completions",
        "/v1/embeddings",
        "/v1/completions",
        "/v1/moderations",
    } == set(adapter.endpoints())
