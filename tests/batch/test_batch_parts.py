"""The batch runner's small parts, one at a time: HTTP failures and retries, input lines
and shard planning, capacity, phase timing.

Unit-level (no emulator, no sleeping beyond a few milliseconds): each test states the
exact input and the exact outcome, so a change in which failure is retried, what error
an op gets, where a shard is cut or how long capacity waits fails here.
"""

from __future__ import annotations

import asyncio
import email.utils
import io
import json
import random
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx2
import openai
import pytest
from openai.types import Batch, FileObject

from inert._errors import ApiError, ConnectionFailedError, RateLimitError
from inert._json import JSON
from inert._op import Op
from inert._runners._batch import _http
from inert._runners._batch._capacity import REFUSALS_ALONE_LIMIT, Capacity, limits_of
from inert._runners._batch._http import (
    RETRYABLE_STATUSES,
    Backoff,
    CallFailed,
    NotJsonError,
    checked_batch,
    checked_file,
    error_fields,
    failure_of,
    is_transient,
    retry_after,
    retrying,
)
from inert._runners._batch._lines import (
    ENDPOINTS,
    MAX_BYTES_PER_BATCH,
    MAX_REQUESTS_PER_BATCH,
    MAX_USER_METADATA,
    TERMINAL_STATUSES,
    ShardPlan,
    jsonl_line,
    line_tokens,
    plan_shards,
)
from inert._runners._batch._phases import PHASES, Phases
from inert.testing import op_of

from ._support import ask

URL = "https://api.example/v1/batches"


def status_error(
    status: int,
    body: JSON = None,
    *,
    headers: dict[str, str] | None = None,
    text: str | None = None,
    message: str = "Error code",
) -> openai.APIStatusError:
    """The SDK's exception for an HTTP answer with ``status`` and a JSON (or text) body."""
    request = httpx2.Request("POST", URL)
    if text is not None:
        response = httpx2.Response(status, request=request, text=text, headers=headers)
    else:
        response = httpx2.Response(status, request=request, json=body, headers=headers)
    return openai.APIStatusError(message, response=response, body=body)


def construct(cls: type[Any], **fields: Any) -> Any:
    """A pydantic model of the SDK built without validation (as from a body of any shape)."""
    return cls.model_construct(**fields)


def connection_error() -> openai.APIConnectionError:
    return openai.APIConnectionError(request=httpx2.Request("POST", URL))


def validation_error(status: int = 200) -> openai.APIResponseValidationError:
    request = httpx2.Request("GET", URL)
    return openai.APIResponseValidationError(
        response=httpx2.Response(status, request=request, text="<html>"), body="<html>"
    )


# error_fields, is_transient, retry_after


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"error": {"message": "m", "code": "c"}}, ("m", "c")),
        ({"error": {"message": "m"}}, ("m", None)),
        ({"error": {"code": "c"}}, ("", "c")),
        ({"error": {"message": 1, "code": 2}}, ("", None)),
        ({"error": "flat"}, ("", None)),
        ({"message": "m"}, ("", None)),
        ("text", ("", None)),
        (None, ("", None)),
    ],
)
def test_error_fields_read_only_string_message_and_code(
    body: JSON, fields: tuple[str, str | None]
) -> None:
    assert fields == error_fields(body)


@pytest.mark.parametrize(
    ("status", "transient"),
    [(400, False), (401, False), (404, False), (407, False), (408, True), (409, True),
     (410, False), (422, False), (429, True), (499, False), (500, True), (502, True), (503, True)],
)  # fmt: skip
def test_transient_statuses_are_408_409_429_and_5xx(status: int, transient: bool) -> None:
    assert transient is is_transient(status_error(status))


def test_dropped_connections_and_bad_bodies_are_transient_other_errors_are_not() -> None:
    assert is_transient(connection_error())
    assert is_transient(openai.APITimeoutError(request=httpx2.Request("GET", URL)))
    assert is_transient(validation_error())
    assert not is_transient(ValueError("x"))
    assert not is_transient(NotJsonError("w", "x"))
    assert RETRYABLE_STATUSES == frozenset({408, 409, 429})


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({}, None),
        ({"retry-after-ms": "1500"}, 1.5),
        ({"retry-after-ms": "-20"}, 0.0),
        ({"retry-after-ms": "soon", "retry-after": "3"}, 3.0),
        ({"retry-after-ms": "250", "retry-after": "3"}, 0.25),
        ({"retry-after": "7"}, 7.0),
        ({"retry-after": "2.5"}, 2.5),
        ({"retry-after": "-4"}, 0.0),
        ({"retry-after": " "}, None),
        ({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}, 0.0),
    ],
)
def test_retry_after_reads_milliseconds_then_seconds(
    headers: dict[str, str], seconds: float | None
) -> None:
    assert seconds == retry_after(status_error(429, headers=headers))


def test_retry_after_reads_an_http_date() -> None:
    later = email.utils.formatdate(time.time() + 100, usegmt=True)
    waited = retry_after(status_error(503, headers={"retry-after": later}))
    assert waited is not None
    assert 95 <= waited <= 101


def test_retry_after_of_a_failure_without_an_answer_is_none() -> None:
    assert retry_after(connection_error()) is None
    assert retry_after(ValueError("x")) is None


# failure_of


def test_a_refused_call_is_a_definite_api_error_with_the_body() -> None:
    body: JSON = {"error": {"message": "bad file", "code": "invalid_file"}}
    failure = failure_of("creating the batch", status_error(400, body, message="said"))
    assert failure.definite
    assert 400 == failure.status
    error = failure.error
    assert type(error) is ApiError
    assert "creating the batch: HTTP 400: bad file" == error.message
    assert str(failure) == error.message
    assert (400, "invalid_file", body) == (error.status, error.code, error.body)


def test_an_api_error_without_a_message_says_what_the_sdk_said() -> None:
    failure = failure_of("polling", status_error(500, {"detail": "x"}, message="Error code: 500"))
    assert not failure.definite
    assert 500 == failure.status
    assert type(failure.error) is ApiError
    assert "polling: HTTP 500: Error code: 500" == failure.error.message
    assert (500, None, {"detail": "x"}) == (
        failure.error.status,
        failure.error.code,
        failure.error.body,
    )


def test_a_page_that_is_not_json_has_no_body() -> None:
    failure = failure_of(
        "polling", status_error(502, text="<html>bad gateway</html>", message="said")
    )
    assert isinstance(failure.error, ApiError)
    assert failure.error.body is None
    assert "polling: HTTP 502: said" == failure.error.message


def test_a_429_is_a_transient_rate_limit_error() -> None:
    body: JSON = {"error": {"message": "slow", "code": "rate_limit_exceeded"}}
    failure = failure_of("uploading", status_error(429, body))
    assert not failure.definite
    assert 429 == failure.status
    assert type(failure.error) is RateLimitError
    assert "uploading: HTTP 429: slow" == failure.error.message
    assert (429, "rate_limit_exceeded", body) == (
        failure.error.status,
        failure.error.code,
        failure.error.body,
    )


def test_an_anthropic_error_is_named_by_its_type() -> None:
    anthropic = pytest.importorskip("anthropic")
    body: JSON = {"type": "error", "error": {"type": "overloaded_error", "message": "busy"}}
    response = httpx2.Response(529, request=httpx2.Request("POST", URL), json=body)
    exc = anthropic.APIStatusError("said", response=response, body=body)
    failure = failure_of("creating", exc)
    assert isinstance(failure.error, ApiError)
    assert ("creating: HTTP 529: busy", "overloaded_error") == (
        failure.error.message,
        failure.error.code,
    )
    assert not failure.definite
    openai_failure = failure_of("creating", status_error(400, body))
    assert isinstance(openai_failure.error, ApiError)
    assert openai_failure.error.code is None


def test_no_answer_at_all_is_a_connection_failure() -> None:
    failure = failure_of("downloading", connection_error())
    assert not failure.definite
    assert failure.status is None
    assert type(failure.error) is ConnectionFailedError
    assert "downloading: no answer from the API: Connection error." == failure.error.message


def test_a_body_that_is_not_json_is_a_transient_not_json_error() -> None:
    failure = failure_of("polling", NotJsonError("polling", "<html>"))
    assert not failure.definite
    assert failure.status is None
    assert type(failure.error) is ApiError
    assert (
        "polling: the answer is not the JSON expected: polling: the API answered with a body "
        "that is not JSON: '<html>'"
    ) == failure.error.message
    assert (None, "not_json") == (failure.error.status, failure.error.code)
    failure = failure_of("polling", validation_error(201))
    assert isinstance(failure.error, ApiError)
    assert (201, 201, "not_json") == (failure.status, failure.error.status, failure.error.code)


def test_not_json_shows_the_start_of_a_text_or_the_type_of_anything_else() -> None:
    assert "w: the API answered with a body that is not JSON: " + repr("x" * 120) == str(
        NotJsonError("w", "x" * 500)
    )
    assert "w: the API answered with a body that is not JSON: 'list'" == str(NotJsonError("w", [1]))


def test_checked_objects_pass_and_anything_else_is_not_json() -> None:
    batch = construct(Batch, id="batch_1", status="completed")
    assert checked_batch("poll", batch) is batch
    file = construct(FileObject, id="file_1")
    assert checked_file("upload", file) is file
    for value in ["<html>", None, construct(Batch, id=1, status="completed"),
                  construct(Batch, id="b", status=None), file]:  # fmt: skip
        with pytest.raises(NotJsonError):
            checked_batch("poll", value)
    for value in ["<html>", construct(FileObject, id=None), batch]:
        with pytest.raises(NotJsonError, match=r"^upload: "):
            checked_file("upload", value)


# Backoff and retrying


def test_backoff_doubles_up_to_its_cap_with_a_quarter_of_jitter(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    backoff = Backoff(first=1.0, cap=5.0, tries=4)
    monkeypatch.setattr(random, "uniform", lambda low, high: high)
    assert [1.25, 2.5, 5.0, 6.25, 6.25] == [backoff.delay(n) for n in range(1, 6)]
    monkeypatch.setattr(random, "uniform", lambda low, high: low)
    assert [0.75, 1.5, 3.0, 3.75] == [backoff.delay(n) for n in range(1, 5)]


class Calls:
    """A call that raises the given exceptions in turn, then answers ``"done"``."""

    def __init__(self, *failures: BaseException) -> None:
        self.failures = list(failures)
        self.count = 0

    async def __call__(self) -> str:
        self.count += 1
        if self.failures:
            raise self.failures.pop(0)
        return "done"


def record_sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The waits this thread's code asks ``asyncio.sleep`` for (none is slept).

    Other threads sleep for real: an emulator left serving in this worker by an earlier
    test (its server loop ticks every 0.1 s) would otherwise spin and fill the list.
    """
    asked: list[float] = []
    real = asyncio.sleep
    here = threading.get_ident()

    async def sleep(seconds: float) -> None:
        if threading.get_ident() != here:
            await real(seconds)
            return
        asked.append(seconds)

    monkeypatch.setattr(asyncio, "sleep", sleep)
    return asked


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The waits ``retrying`` asks for (none is slept)."""
    asked = record_sleeps(monkeypatch)
    monkeypatch.setattr(random, "uniform", lambda low, high: 1.0)
    return asked


FAST = Backoff(first=0.5, cap=2.0, tries=4)


async def test_transient_failures_are_retried_with_backoff(sleeps: list[float]) -> None:
    call = Calls(status_error(500), connection_error(), validation_error(), NotJsonError("w", "x"))
    with pytest.raises(CallFailed) as raised:
        await retrying("polling", call, FAST)
    assert 4 == call.count
    assert [0.5, 1.0, 2.0] == sleeps
    assert "polling: the answer is not the JSON expected" in raised.value.error.message
    assert isinstance(raised.value.__cause__, NotJsonError)


async def test_a_success_after_failures_is_returned(sleeps: list[float]) -> None:
    call = Calls(status_error(503), ValueError("bad json"), TypeError("x"), AttributeError("y"))
    assert "done" == await retrying("polling", call, Backoff(first=0.5, cap=2.0, tries=5))
    assert 5 == call.count
    assert [0.5, 1.0, 2.0, 2.0] == sleeps


async def test_a_definite_refusal_is_not_retried(sleeps: list[float]) -> None:
    call = Calls(status_error(400, {"error": {"message": "no", "code": "bad"}}))
    with pytest.raises(CallFailed) as raised:
        await retrying("creating", call, FAST)
    assert 1 == call.count
    assert [] == sleeps
    assert raised.value.definite
    assert "creating: HTTP 400: no" == raised.value.error.message


async def test_one_try_gives_up_at_once(sleeps: list[float]) -> None:
    call = Calls(status_error(500))
    with pytest.raises(CallFailed):
        await retrying("creating", call, Backoff(first=0.5, cap=2.0, tries=1))
    assert (1, []) == (call.count, sleeps)


async def test_other_exceptions_pass_through(sleeps: list[float]) -> None:
    call = Calls(KeyError("k"))
    with pytest.raises(KeyError):
        await retrying("creating", call, FAST)
    assert 1 == call.count


async def test_retry_after_lengthens_a_wait_but_never_shortens_it(sleeps: list[float]) -> None:
    call = Calls(
        status_error(429, headers={"retry-after": "3"}),
        status_error(429, headers={"retry-after": "0.1"}),
        status_error(429, headers={"retry-after": "1000"}),
    )
    assert "done" == await retrying("uploading", call, FAST)
    assert [3.0, 1.0, 120.0] == sleeps


async def test_before_retry_may_find_the_effect_of_a_failed_try(sleeps: list[float]) -> None:
    seen: list[CallFailed] = []

    async def look(failure: CallFailed) -> str | None:
        seen.append(failure)
        return "found" if len(seen) == 2 else None

    call = Calls(status_error(500), status_error(502), status_error(503))
    assert "found" == await retrying("creating", call, FAST, before_retry=look)
    assert 2 == call.count
    assert [500, 502] == [failure.status for failure in seen]
    assert [0.5] == sleeps


async def test_before_retry_is_asked_after_the_last_try_too(sleeps: list[float]) -> None:
    looks: list[int | None] = []

    async def look(failure: CallFailed) -> str | None:
        looks.append(failure.status)
        return "found" if len(looks) == 2 else None

    call = Calls(status_error(500), status_error(502))
    assert "found" == await retrying(
        "creating", call, Backoff(first=0.5, cap=2.0, tries=2), before_retry=look
    )
    assert [500, 502] == looks


# _lines


def ops(*texts: str) -> list[Op[Any]]:
    return [op_of(ask(text)) for text in texts]


def test_a_jsonl_line_is_the_custom_id_method_url_and_canonical_body() -> None:
    (op,) = ops("hello")
    line = jsonl_line(op)
    assert line.endswith("}\n")
    assert line.count("\n") == 1
    assert {
        "custom_id": op.key,
        "method": "POST",
        "url": op.endpoint,
        "body": op.body,
    } == json.loads(line)
    assert line == (
        '{"custom_id":"'
        + op.key
        + '","method":"POST","url":"'
        + op.endpoint
        + '","body":'
        + op.canonical_body()
        + "}\n"
    )
    assert jsonl_line(op, '"/v1/other"') == line.replace(json.dumps(op.endpoint), '"/v1/other"')


def test_a_shard_writes_the_same_lines_jsonl_line_builds() -> None:
    members = ops("a", "b", "ü")
    (plan,), too_large = plan_shards(members, max_requests=10, max_bytes=10_000)
    assert [] == too_large
    payload = plan.payload()
    assert "".join(jsonl_line(op) for op in members).encode() == payload
    assert len(payload) == plan.size
    assert plan.tokens == line_tokens(plan.size) == plan.size
    assert (members[0].endpoint, members[0].model, members) == (plan.endpoint, plan.model, plan.ops)
    buffer = io.BytesIO()
    plan.write_to(buffer)
    assert payload == buffer.getvalue()


def test_shards_are_cut_at_the_request_limit() -> None:
    members = ops(*"abcde")
    plans, _ = plan_shards(members, max_requests=2, max_bytes=10_000)
    assert [members[0:2], members[2:4], members[4:]] == [plan.ops for plan in plans]
    assert [len(plan.payload()) for plan in plans] == [plan.size for plan in plans]


def test_shards_are_cut_at_the_byte_limit_exactly() -> None:
    members = ops("aa", "bb", "cc")
    sizes = [len(jsonl_line(op).encode()) for op in members]
    plans, _ = plan_shards(members, max_requests=10, max_bytes=sizes[0] + sizes[1])
    assert [members[:2], members[2:]] == [plan.ops for plan in plans]
    plans, _ = plan_shards(members, max_requests=10, max_bytes=sizes[0] + sizes[1] - 1)
    assert [[op] for op in members] == [plan.ops for plan in plans]


def test_sizes_count_utf8_bytes() -> None:
    members = ops("é" * 50)
    size = len(jsonl_line(members[0]).encode())
    assert size > len(jsonl_line(members[0]))
    (plan,), too_large = plan_shards(members, max_requests=10, max_bytes=size)
    assert ([], size) == (too_large, plan.size)
    plans, too_large = plan_shards(members, max_requests=10, max_bytes=size - 1)
    assert ([], members) == (plans, too_large)


def test_a_line_over_the_byte_limit_is_set_apart() -> None:
    small, big, other = ops("s", "b" * 20_000, "o")
    limit = len(jsonl_line(small).encode()) * 2
    plans, too_large = plan_shards([small, big, other], max_requests=10, max_bytes=limit)
    assert [big] == too_large
    assert [[small, other]] == [plan.ops for plan in plans]


def test_shards_are_cut_under_the_token_cap_of_their_model() -> None:
    members = ops("a", "b", "c")
    size = len(jsonl_line(members[0]).encode())
    models: list[str | None] = []

    def cap(model: str | None) -> int | None:
        models.append(model)
        return 2 * size

    plans, _ = plan_shards(members, max_requests=10, max_bytes=10_000, max_tokens=cap)
    assert [members[:2], members[2:]] == [plan.ops for plan in plans]
    assert [2 * size, size] == [plan.tokens for plan in plans]
    assert [members[0].model] == models
    plans, _ = plan_shards(
        members, max_requests=10, max_bytes=10_000, max_tokens=lambda m: 2 * size - 1
    )
    assert 3 == len(plans)
    plans, _ = plan_shards(members, max_requests=10, max_bytes=10_000, max_tokens=lambda m: None)
    assert 1 == len(plans)
    plans, _ = plan_shards(members, max_requests=10, max_bytes=10_000, max_tokens=lambda m: 1)
    assert [[op] for op in members] == [plan.ops for plan in plans]


def test_ops_are_grouped_by_endpoint_and_model_in_first_seen_order() -> None:
    mini = ops("a", "b")
    other = [op_of(ask("c", model="gpt-4o")), op_of(ask("d", model="gpt-4o"))]
    plans, _ = plan_shards(
        [mini[0], other[0], mini[1], other[1]], max_requests=10, max_bytes=10_000
    )
    assert [mini, other] == [plan.ops for plan in plans]
    assert [mini[0].model, "gpt-4o"] == [plan.model for plan in plans]


def test_no_ops_plan_no_shards() -> None:
    assert ([], []) == plan_shards([], max_requests=1, max_bytes=1)


def test_the_published_batch_limits() -> None:
    assert (50_000, 200 * 1024 * 1024, 13) == (
        MAX_REQUESTS_PER_BATCH,
        MAX_BYTES_PER_BATCH,
        MAX_USER_METADATA,
    )
    assert frozenset({"completed", "failed", "expired", "cancelled"}) == TERMINAL_STATUSES
    assert all(path == value for path, value in ENDPOINTS.items())
    assert {"/v1/responses", "/v1/chat/completions", "/v1/embeddings", "/v1/completions",
            "/v1/moderations"} == set(ENDPOINTS)  # fmt: skip
    assert isinstance(ShardPlan("e", None, [], 0, 0), tuple)


# _capacity


def test_limits_are_validated() -> None:
    assert limits_of(None) is None
    assert 5 == limits_of(5)
    assert 1 == limits_of(1)
    given = {"gpt-4o": 10}
    checked = limits_of(given)
    assert given == checked
    assert checked is not given
    bads: list[Any] = [
        0,
        -1,
        True,
        1.5,
        {"m": 0},
        {"m": -3},
        {"m": True},
        {"m": 2.0},
        {3: 4},
        ["m"],
    ]
    for bad in bads:  # what an untyped caller might pass
        with pytest.raises(ValueError, match="enqueued_token_limit must be") as raised:
            limits_of(bad)
        assert repr(bad) in str(raised.value)
    with pytest.raises(ValueError, match=r"^enqueued_token_limit must be positive; got 0$"):
        limits_of(0)
    with pytest.raises(ValueError, match=r"mapping of model name to positive int; got \{'m': 0\}$"):
        limits_of({"m": 0})
    assert 20 == REFUSALS_ALONE_LIMIT


def test_the_limit_of_a_model() -> None:
    assert Capacity(None, first_wait=1, max_wait=1).limit_for("m") is None
    assert 7 == Capacity(7, first_wait=1, max_wait=1).limit_for("m")
    assert 7 == Capacity(7, first_wait=1, max_wait=1).limit_for(None)
    per_model = Capacity({"m": 3}, first_wait=1, max_wait=1)
    assert (3, None, None) == (
        per_model.limit_for("m"),
        per_model.limit_for("n"),
        per_model.limit_for(None),
    )


async def test_acquire_counts_in_and_release_counts_out() -> None:
    capacity = Capacity(100, first_wait=0.01, max_wait=0.01)
    assert 0 == capacity.queued("m")
    await capacity.acquire("m", 60)
    await capacity.acquire("n", 70)
    capacity.hold("m", 5)
    assert (65, 70) == (capacity.queued("m"), capacity.queued("n"))
    await capacity.release("m", 60)
    assert 5 == capacity.queued("m")
    await capacity.release("m", 50)
    assert 0 == capacity.queued("m")


async def test_a_shard_is_always_allowed_when_nothing_of_its_model_is_queued() -> None:
    capacity = Capacity(10, first_wait=0.01, max_wait=0.01)
    await asyncio.wait_for(capacity.acquire("m", 500), 1)
    assert 500 == capacity.queued("m")
    unlimited = Capacity(None, first_wait=0.01, max_wait=0.01)
    await unlimited.acquire("m", 5)
    await asyncio.wait_for(unlimited.acquire("m", 500), 1)
    assert 505 == unlimited.queued("m")


async def test_acquire_waits_until_the_queue_has_room() -> None:
    capacity = Capacity(100, first_wait=0.005, max_wait=0.01)
    await capacity.acquire("m", 60)
    await asyncio.wait_for(capacity.acquire("m", 40), 1)  # exactly the limit fits
    waiting = asyncio.create_task(capacity.acquire("m", 30))
    await asyncio.sleep(0.05)
    assert not waiting.done()
    await capacity.release("m", 60)
    await asyncio.wait_for(waiting, 1)
    assert 70 == capacity.queued("m")


async def test_acquire_looks_again_after_its_wait_even_without_a_release() -> None:
    """The wait grows by half each time, up to max_wait; a change not announced is seen."""
    capacity = Capacity(100, first_wait=0.01, max_wait=0.02)
    await capacity.acquire("m", 90)
    waiting = asyncio.create_task(capacity.acquire("m", 20))
    await asyncio.sleep(0.05)
    assert not waiting.done()
    capacity._queued["m"] = 10  # the queue emptied without a notification
    await asyncio.wait_for(waiting, 0.5)
    assert 30 == capacity.queued("m")


async def test_after_a_refusal_with_nothing_in_flight_the_pause_grows(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pauses = record_sleeps(monkeypatch)
    capacity = Capacity(None, first_wait=2.0, max_wait=5.0)
    for refusals in (0, 1, 2, 3, 4):
        await capacity.after_refusal("m", refusals)
    assert [2.0, 2.0, 3.0, 4.5, 5.0] == pauses


async def test_after_a_refusal_wait_until_a_batch_of_the_model_finishes() -> None:
    capacity = Capacity(None, first_wait=0.005, max_wait=0.01)
    await capacity.acquire("m", 10)
    await capacity.acquire("m", 10)
    waiting = asyncio.create_task(capacity.after_refusal("m", 1))
    await asyncio.sleep(0.03)
    assert not waiting.done()
    await capacity.release("n", 10)  # another model's batch finishing does not help
    await asyncio.sleep(0.03)
    assert not waiting.done()
    await capacity.release("m", 10)
    await asyncio.wait_for(waiting, 1)
    assert 10 == capacity.queued("m")


async def test_after_a_refusal_the_wait_ends_when_the_queue_empties_unannounced() -> None:
    capacity = Capacity(None, first_wait=0.005, max_wait=0.01)
    await capacity.acquire("m", 10)
    waiting = asyncio.create_task(capacity.after_refusal("m", 1))
    await asyncio.sleep(0.03)
    assert not waiting.done()
    capacity._queued["m"] = 0
    await asyncio.wait_for(waiting, 0.5)


# _phases


def test_phases_add_up_the_time_of_each_block(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = iter([10.0, 10.5, 20.0, 21.0])
    cpu = iter([1.0, 1.25, 2.0, 2.5])
    monkeypatch.setattr(time, "perf_counter", lambda: next(clock))
    monkeypatch.setattr(time, "thread_time", lambda: next(cpu))
    phases = Phases()
    assert dict.fromkeys(PHASES, 0.0) == phases.seconds == phases.cpu_seconds
    with phases.timing("upload"):
        pass
    with pytest.raises(RuntimeError), phases.timing("upload"):
        raise RuntimeError
    assert {**dict.fromkeys(PHASES, 0.0), "upload": 1.5} == phases.seconds
    assert {**dict.fromkeys(PHASES, 0.0), "upload": 0.75} == phases.cpu_seconds
    assert ("journal", "jsonl", "upload", "create", "collect", "store write") == PHASES


def test_a_phase_timed_inside_another_counts_only_in_the_inner_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # journal opens at 0 and closes at 10; jsonl inside it runs from 2 to 6.
    clock = iter([0.0, 2.0, 6.0, 10.0])
    cpu = iter([0.0, 1.0, 3.0, 5.0])
    monkeypatch.setattr(time, "perf_counter", lambda: next(clock))
    monkeypatch.setattr(time, "thread_time", lambda: next(cpu))
    phases = Phases()
    with phases.timing("journal"), phases.timing("jsonl"):
        pass
    assert (6.0, 4.0) == (phases.seconds["journal"], phases.seconds["jsonl"])
    assert (3.0, 2.0) == (phases.cpu_seconds["journal"], phases.cpu_seconds["jsonl"])


async def test_phases_of_concurrent_tasks_are_not_nested_in_each_other() -> None:
    phases = Phases()
    inside = asyncio.Event()
    release = asyncio.Event()

    async def upload() -> None:
        with phases.timing("upload"):
            inside.set()
            await release.wait()

    async def collect() -> None:
        await inside.wait()
        with phases.timing("collect"):
            await asyncio.sleep(0.01)
        release.set()

    await asyncio.gather(upload(), collect())
    # The upload was open all the while the other task collected: nothing is taken off it.
    assert phases.seconds["upload"] >= phases.seconds["collect"] >= 0.01


def never(_: CallFailed) -> Awaitable[None]:
    async def none() -> None:
        return None

    return none()


async def test_before_retry_returning_none_retries(sleeps: list[float]) -> None:
    look: Callable[[CallFailed], Awaitable[None]] = never
    call = Calls(status_error(500))
    assert "done" == await retrying("creating", call, FAST, before_retry=look)
    assert 2 == call.count


def test_both_sdks_errors_are_known_once_anthropic_is_loaded() -> None:
    anthropic = pytest.importorskip("anthropic")
    errors = _http._Errors()
    assert [openai.APIStatusError] == list(errors.status)
    assert errors.now() is errors
    assert (openai.APIStatusError, anthropic.APIStatusError) == errors.status
    assert (openai.APIConnectionError, anthropic.APIConnectionError) == errors.connection
    assert (
        openai.APIResponseValidationError,
        anthropic.APIResponseValidationError,
    ) == errors.validation
    assert (openai.APIError, anthropic.APIError) == errors.sdk
    errors.now()
    assert 2 == len(errors.status)  # added once


class Waits:
    """``asyncio.wait_for`` that never waits: it records each timeout and times out at
    once, and after ``then_after`` calls runs ``then`` (a change nobody announced)."""

    def __init__(self, then_after: int, then: Callable[[], None]) -> None:
        self.timeouts: list[float] = []
        self.then_after = then_after
        self.then = then

    async def __call__(self, awaitable: Awaitable[object], seconds: float) -> object:
        self.timeouts.append(seconds)
        close = getattr(awaitable, "close", None)
        if close is not None:
            close()
        if len(self.timeouts) == self.then_after:
            self.then()
        raise TimeoutError


async def test_acquire_waits_half_again_as_long_each_time_up_to_max_wait(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    capacity = Capacity(100, first_wait=1.0, max_wait=3.0)
    await capacity.acquire("m", 90)
    waits = Waits(5, lambda: capacity._queued.__setitem__("m", 0))
    monkeypatch.setattr(asyncio, "wait_for", waits)
    await capacity.acquire("m", 20)
    assert [1.0, 1.5, 2.25, 3.0, 3.0] == waits.timeouts
    assert 20 == capacity.queued("m")


async def test_after_a_refusal_the_wait_grows_half_again_each_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    capacity = Capacity(None, first_wait=1.0, max_wait=3.0)
    await capacity.acquire("m", 1)
    waits = Waits(5, lambda: capacity._finished.__setitem__("m", 1))
    monkeypatch.setattr(asyncio, "wait_for", waits)
    await capacity.after_refusal("m", 1)
    assert [1.0, 1.5, 2.25, 3.0, 3.0] == waits.timeouts


async def test_after_a_refusal_one_token_in_flight_is_waited_for() -> None:
    """However little is queued, the wait is for a batch of the model to finish, counted
    from the ones already finished."""
    capacity = Capacity(None, first_wait=0.005, max_wait=0.01)
    await capacity.acquire("m", 5)
    await capacity.release("m", 5)  # one batch of the model finished before
    await capacity.acquire("m", 1)
    waiting = asyncio.create_task(capacity.after_refusal("m", 1))
    await asyncio.sleep(0.03)
    assert not waiting.done()
    await capacity.release("m", 1)
    await asyncio.wait_for(waiting, 1)


def test_a_limit_of_one_token_per_model_is_valid() -> None:
    assert {"m": 1} == limits_of({"m": 1})


async def test_a_per_model_limit_holds_for_its_model(monkeypatch: pytest.MonkeyPatch) -> None:
    capacity = Capacity({"m": 100}, first_wait=1.0, max_wait=1.0)
    await capacity.acquire("m", 90)
    waits = Waits(2, lambda: capacity._queued.__setitem__("m", 0))
    monkeypatch.setattr(asyncio, "wait_for", waits)
    await capacity.acquire("m", 20)
    assert [1.0, 1.0] == waits.timeouts
    await capacity.acquire("other", 500)  # no limit known for it: never waits
    assert 2 == len(waits.timeouts)


async def test_one_queued_token_is_enough_to_wait_for(monkeypatch: pytest.MonkeyPatch) -> None:
    capacity = Capacity(10, first_wait=1.0, max_wait=1.0)
    await capacity.acquire("m", 1)
    waits = Waits(1, lambda: capacity._queued.__setitem__("m", 0))
    monkeypatch.setattr(asyncio, "wait_for", waits)
    await capacity.acquire("m", 10)
    assert [1.0] == waits.timeouts


async def test_after_a_refusal_each_finished_batch_wakes_the_waiter_again() -> None:
    """With two batches of the model in flight, the first to finish ends the wait (the
    other is still queued); a second refusal then waits for the second to finish."""
    capacity = Capacity(None, first_wait=0.005, max_wait=0.01)
    await capacity.acquire("m", 10)
    await capacity.acquire("m", 10)
    await capacity.acquire("m", 10)
    for left in (2, 1):
        waiting = asyncio.create_task(capacity.after_refusal("m", 1))
        await asyncio.sleep(0.03)
        assert not waiting.done()
        await capacity.release("m", 10)
        await asyncio.wait_for(waiting, 1)
        assert 10 * left == capacity.queued("m")


def test_a_cut_shard_keeps_its_endpoint_and_model() -> None:
    members = ops(*"abc")
    plans, _ = plan_shards(members, max_requests=2, max_bytes=10_000)
    assert [(members[0].endpoint, members[0].model)] * 2 == [(p.endpoint, p.model) for p in plans]
    assert members[0].model is not None


def test_a_value_that_is_no_batch_or_file_is_named_in_the_error() -> None:
    with pytest.raises(NotJsonError) as raised:
        checked_batch("polling batch b", "<html>")
    assert "polling batch b: the API answered with a body that is not JSON: '<html>'" == str(
        raised.value
    )
    with pytest.raises(NotJsonError) as raised:
        checked_file("uploading", [1])
    assert "uploading: the API answered with a body that is not JSON: 'list'" == str(raised.value)
