"""``ImmediateRunner``'s settings, error translation and retry budget, exactly.

Unit-level: the SDK client talks to an ``httpx2.MockTransport`` that answers each
attempt as the test says (no emulator, no real waiting: backoffs are milliseconds),
so a change in which answer is retried, how often, what error a request ends with,
or what its message says, fails here.
"""

from __future__ import annotations

import errno
import re
from collections.abc import Callable
from typing import Any

import httpx2
import openai
import pytest
from returns.result import Failure, Success

from inert import ImmediateRunner, Request
from inert._errors import ApiError, ConnectionFailedError, RateLimitError, RequestError
from inert._json import JSON
from inert._runners import _immediate
from inert._runners._immediate import (
    CONNECT_RETRIES,
    TIMEOUT_RETRIES,
    _budget,
    _limiter,
    _retry_after,
    _root_cause,
    _seconds,
)
from inert.openai import chat
from inert.testing import op_of

BASE = "https://llm.test/v1"
URL = f"{BASE}/chat/completions"
ANSWER: JSON = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 0,
    "model": "gpt-4o-mini",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "hello", "refusal": None},
            "finish_reason": "stop",
            "logprobs": None,
        }
    ],
    "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
}

Answer = Callable[[httpx2.Request], httpx2.Response]


class Server:
    """Answers attempt n with ``answers[n]`` (the last one again once they run out)."""

    def __init__(self, *answers: Answer) -> None:
        self.answers = list(answers)
        self.requests: list[httpx2.Request] = []

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        self.requests.append(request)
        answer = self.answers[min(len(self.requests), len(self.answers)) - 1]
        return answer(request)


def ok(request: httpx2.Request) -> httpx2.Response:
    return httpx2.Response(200, json=ANSWER)


def status(code: int, body: JSON = None, headers: dict[str, str] | None = None) -> Answer:
    def answer(request: httpx2.Request) -> httpx2.Response:
        if body is None:
            return httpx2.Response(code, text="plain words", headers=headers)
        return httpx2.Response(code, json=body, headers=headers)

    return answer


def raising(exc: Callable[[httpx2.Request], BaseException]) -> Answer:
    def answer(request: httpx2.Request) -> httpx2.Response:
        raise exc(request)

    return answer


def error_body(message: str, code: str | None = None) -> JSON:
    return {"error": {"message": message, "code": code, "type": "x"}}


def client_of(server: Server, base_url: str = BASE) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(
        api_key="sk-test",
        base_url=base_url,
        http_client=httpx2.AsyncClient(transport=httpx2.MockTransport(server)),
    )


def runner_of(server: Server, *, max_retries: int = 3, base_url: str = BASE) -> ImmediateRunner:
    return ImmediateRunner(
        client_of(server, base_url),
        max_retries=max_retries,
        backoff_base=0.001,
        backoff_max=0.002,
        learn_limits=False,
        progress=False,
    )


def hello(text: str = "hi") -> Request[str]:
    return chat(model="gpt-4o-mini", messages=[{"role": "user", "content": text}])


async def failure_of(runner: ImmediateRunner, request: Request[str] | None = None) -> RequestError:
    (result,) = await runner.run_all_settled([request or hello()])
    assert isinstance(result, Failure), result
    error = result.failure()
    assert isinstance(error, RequestError)
    return error


GAVE_UP = r"; gave up after {n} attempts? in \d+\.\d s$"


# Settings


@pytest.mark.parametrize(
    ("setting", "value", "message"),
    [
        ("max_concurrency", 0, "max_concurrency must be a whole number of at least 1, not 0"),
        ("max_concurrency", True, "max_concurrency must be a whole number of at least 1, not True"),
        ("max_concurrency", 2.0, "max_concurrency must be a whole number of at least 1, not 2.0"),
        ("max_retries", -1, "max_retries must be a whole number of at least 0, not -1"),
        ("requests_per_minute", 0, "requests_per_minute must be a positive finite number, not 0"),
        (
            "requests_per_minute",
            float("inf"),
            "requests_per_minute must be a positive finite number, not inf",
        ),
        ("requests_per_minute", "5", "requests_per_minute must be a number, not str"),
        ("tokens_per_minute", -5.0, "tokens_per_minute must be a positive finite number, not -5.0"),
        ("tokens_per_minute", False, "tokens_per_minute must be a number, not bool"),
        ("backoff_base", None, "backoff_base must be a positive number, not None"),
        ("backoff_max", None, "backoff_max must be a positive number, not None"),
        ("backoff_base", float("nan"), "backoff_base must be a positive finite number, not nan"),
        ("timeout", 0, "timeout must be a positive finite number, not 0"),
        ("connect_timeout", None, "connect_timeout must be a positive number, not None"),
        ("connect_timeout", -1, "connect_timeout must be a positive finite number, not -1"),
    ],
)
def test_a_setting_out_of_range_is_named(setting: str, value: Any, message: str) -> None:
    settings: dict[str, Any] = {setting: value}  # what an untyped caller may pass
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        ImmediateRunner(client_of(Server(ok)), **settings)


def test_settings_in_range_are_kept() -> None:
    runner = ImmediateRunner(
        client_of(Server(ok)),
        max_concurrency=1,
        max_retries=0,
        requests_per_minute=0.5,
        tokens_per_minute=10,
        backoff_base=1,
        backoff_max=1,
        timeout=None,
        connect_timeout=2,
    )
    assert (1, 0, 0.5, 10, 1.0, 1.0, None, 2.0) == (
        runner.max_concurrency,
        runner.max_retries,
        runner.requests_per_minute,
        runner.tokens_per_minute,
        runner.backoff_base,
        runner.backoff_max,
        runner.timeout,
        runner.connect_timeout,
    )
    assert isinstance(runner.backoff_base, float)
    assert isinstance(runner.connect_timeout, float)
    assert (
        "ImmediateRunner(max_concurrency=1, requests_per_minute=0.5, tokens_per_minute=10, max_retries=0)"
        == repr(runner)
    )


def test_defaults() -> None:
    runner = ImmediateRunner(client_of(Server(ok)))
    assert (64, None, None, 6, 0.5, 30.0, 300.0, 5.0, True, None) == (
        runner.max_concurrency,
        runner.requests_per_minute,
        runner.tokens_per_minute,
        runner.max_retries,
        runner.backoff_base,
        runner.backoff_max,
        runner.timeout,
        runner.connect_timeout,
        runner.learn_limits,
        runner.progress,
    )
    assert (2, 1, 60.0) == (CONNECT_RETRIES, TIMEOUT_RETRIES, _immediate._RETRY_AFTER_CEILING)


def test_backoff_max_below_backoff_base_is_refused() -> None:
    with pytest.raises(
        ValueError, match=r"^backoff_max \(1\) must not be less than backoff_base \(2\)$"
    ):
        ImmediateRunner(client_of(Server(ok)), backoff_base=2, backoff_max=1)
    ImmediateRunner(client_of(Server(ok)), backoff_base=2, backoff_max=2)


# Answers and errors


async def test_an_answer_is_decoded_and_sent_as_the_canonical_body() -> None:
    server = Server(ok)
    request = hello("a question")
    assert [Success("hello")] == await runner_of(server).run_all_settled([request])
    (sent,) = server.requests
    assert ("POST", URL) == (sent.method, str(sent.url))
    assert op_of(request).canonical_body().encode() == sent.content
    assert "Bearer sk-test" == sent.headers["authorization"]


async def test_a_4xx_fails_at_once_with_the_api_message() -> None:
    server = Server(status(400, error_body("bad model", "model_not_found")))
    runner = runner_of(server)
    error = await failure_of(runner)
    assert 1 == len(server.requests)
    assert type(error) is ApiError
    assert f"HTTP 400 from {URL}: bad model" == error.message
    assert (400, "model_not_found", error_body("bad model", "model_not_found")) == (
        error.status,
        error.code,
        error.body,
    )
    assert 0 == runner.report.retries


async def test_an_error_without_a_json_body_keeps_its_text() -> None:
    server = Server(status(403))
    error = await failure_of(runner_of(server))
    assert isinstance(error, ApiError)
    assert error.message.startswith(f"HTTP 403 from {URL}: ")
    assert ("plain words", None) == (error.body, error.code)


async def test_a_404_under_a_base_url_without_v1_hints_at_the_fix() -> None:
    server = Server(status(404, error_body("no such route")))
    error = await failure_of(runner_of(server, base_url="https://llm.test"))
    assert (
        "HTTP 404 from https://llm.test/chat/completions: no such route (the base URL "
        "https://llm.test does not end in /v1, where OpenAI-compatible servers serve the API; "
        "try base_url='https://llm.test/v1')"
    ) == error.message


@pytest.mark.parametrize("code", [408, 500, 502, 503])
async def test_408_and_5xx_are_retried_then_fail_naming_the_attempts(code: int) -> None:
    server = Server(status(code, error_body("busy", "server_error")))
    runner = runner_of(server, max_retries=2)
    error = await failure_of(runner)
    assert 3 == len(server.requests)
    assert 2 == runner.report.retries
    assert type(error) is ApiError
    assert (code, "server_error") == (error.status, error.code)
    pattern = f"^HTTP {code} from {URL}: busy" + GAVE_UP.format(n=3)
    assert re.match(pattern, error.message), error.message


async def test_a_retried_failure_that_then_succeeds_returns_the_answer() -> None:
    server = Server(status(500, error_body("busy")), status(429, error_body("slow")), ok)
    runner = runner_of(server, max_retries=2)
    assert [Success("hello")] == await runner.run_all_settled([hello()])
    assert (3, 2) == (len(server.requests), runner.report.retries)


async def test_no_retries_means_one_attempt() -> None:
    server = Server(status(503, error_body("busy")))
    error = await failure_of(runner_of(server, max_retries=0))
    assert 1 == len(server.requests)
    assert error.message.endswith("; gave up after 1 attempt in 0.0 s")


async def test_a_429_is_retried_then_a_rate_limit_error() -> None:
    server = Server(
        status(429, error_body("slow down", "rate_limit_exceeded"), {"retry-after-ms": "1"})
    )
    error = await failure_of(runner_of(server, max_retries=1))
    assert 2 == len(server.requests)
    assert type(error) is RateLimitError
    assert (429, "rate_limit_exceeded") == (error.status, error.code)
    assert re.match(f"^HTTP 429 from {URL}: slow down" + GAVE_UP.format(n=2), error.message)


async def test_a_request_too_large_for_the_whole_limit_is_not_retried() -> None:
    body = error_body("Request too large for gpt-4o-mini on tokens per min", "rate_limit_exceeded")
    server = Server(status(429, body))
    error = await failure_of(runner_of(server))
    assert 1 == len(server.requests)
    assert type(error) is RateLimitError
    assert (
        f"HTTP 429 from {URL}: Request too large for gpt-4o-mini on tokens per min" == error.message
    )


async def test_an_answer_that_is_not_json_is_retried_as_a_dropped_answer() -> None:
    server = Server(lambda request: httpx2.Response(200, text='{"cut'))
    error = await failure_of(runner_of(server, max_retries=1))
    assert 2 == len(server.requests)
    assert type(error) is ConnectionFailedError
    assert re.match(
        f"^the answer from {URL} is not JSON \\(a cut-off answer\\?\\)" + GAVE_UP.format(n=2),
        error.message,
    )


async def test_a_connection_that_cannot_be_made_is_retried_at_most_twice() -> None:
    server = Server(raising(lambda request: httpx2.ConnectError("refused", request=request)))
    error = await failure_of(runner_of(server, max_retries=5))
    assert 1 + CONNECT_RETRIES == len(server.requests)
    assert type(error) is ConnectionFailedError
    assert error.message.startswith(f"could not connect to {URL} (")
    assert "; gave up after 3 attempts in " in error.message


async def test_a_connect_timeout_names_the_connect_deadline() -> None:
    server = Server(raising(lambda request: httpx2.ConnectTimeout("slow", request=request)))
    error = await failure_of(runner_of(server, max_retries=0))
    assert error.message.startswith(
        f"could not connect to {URL} within 5 s; gave up after 1 attempt"
    )


async def test_a_read_timeout_is_retried_once() -> None:
    server = Server(raising(lambda request: httpx2.ReadTimeout("slow", request=request)))
    error = await failure_of(runner_of(server, max_retries=5))
    assert 1 + TIMEOUT_RETRIES == len(server.requests)
    assert type(error) is ConnectionFailedError
    assert error.message.startswith(
        f"no answer from {URL} within 300 s (ReadTimeout); gave up after 2 attempts"
    )


async def test_a_dropped_connection_is_retried_up_to_max_retries() -> None:
    server = Server(
        raising(lambda request: httpx2.RemoteProtocolError("peer closed", request=request))
    )
    error = await failure_of(runner_of(server, max_retries=4))
    assert 5 == len(server.requests)
    assert error.message.startswith(
        f"the connection to {URL} failed before the answer was complete ("
    )
    assert "; gave up after 5 attempts in " in error.message


async def test_credentials_and_query_never_reach_a_message() -> None:
    server = Server(status(400, error_body("no")))
    error = await failure_of(runner_of(server, base_url="https://user:pw@llm.test:8443/v1/"))
    assert "HTTP 400 from https://llm.test:8443/v1/chat/completions: no" == error.message


# Small parts


def test_retry_budgets_by_kind() -> None:
    assert (2, 1, 6, 6) == (
        _budget("connect", 6),
        _budget("timeout", 6),
        _budget("status", 6),
        _budget("drop", 6),
    )
    assert (0, 0, 0) == (_budget("connect", 0), _budget("timeout", 0), _budget("drop", 0))
    assert (1, 1) == (_budget("connect", 1), _budget("timeout", 1))


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({}, None),
        ({"retry-after-ms": "1500"}, 1.5),
        ({"retry-after": "3"}, 3.0),
        ({"retry-after-ms": "250", "retry-after": "3"}, 0.25),
        ({"retry-after-ms": "soon", "retry-after": "3"}, 3.0),
        ({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}, None),
    ],
)
def test_retry_after_reads_milliseconds_then_seconds(
    headers: dict[str, str], seconds: float | None
) -> None:
    assert seconds == _retry_after(headers)


def test_backoff_honours_a_server_wait_up_to_a_minute() -> None:
    runner = ImmediateRunner(client_of(Server(ok)), backoff_base=1, backoff_max=8)
    for _ in range(50):
        assert 2.0 <= runner._backoff(0, 2.0) <= 2.2
        assert 60.0 <= runner._backoff(0, 60.0) <= 66.0
        assert 0 <= runner._backoff(0, 0.0) <= 0.0
        assert 0 <= runner._backoff(3, 61.0) <= 8.0
        assert 0 <= runner._backoff(0, -1.0) <= 1.0
        assert 0 <= runner._backoff(0, None) <= 1.0
        assert 0 <= runner._backoff(2, None) <= 4.0
        assert 0 <= runner._backoff(10, None) <= 8.0
    assert max(runner._backoff(10, None) for _ in range(200)) > 4.0
    assert max(runner._backoff(2, None) for _ in range(200)) > 2.0
    assert max(runner._backoff(0, 2.0) for _ in range(200)) > 2.1


def test_token_cost_is_at_most_ten_seconds_worth() -> None:
    runner = ImmediateRunner(client_of(Server(ok)), tokens_per_minute=600)
    assert (5.0, 100.0, 100.0) == (
        runner._token_cost(5),
        runner._token_cost(100),
        runner._token_cost(5000),
    )
    tiny = ImmediateRunner(client_of(Server(ok)), tokens_per_minute=3)
    assert (1.0, 1.0) == (tiny._token_cost(1), tiny._token_cost(50))


def test_limiters_hold_a_window_or_at_least_one() -> None:
    limiter = _limiter(120, 10.0)
    assert (20.0, 10.0) == (limiter.max_rate, limiter.time_period)
    slow = _limiter(3, 10.0)
    assert (1.0, 20.0) == (slow.max_rate, slow.time_period)
    exact = _limiter(6, 10.0)
    assert (1.0, 10.0) == (exact.max_rate, exact.time_period)


def test_seconds_and_root_causes_read_well() -> None:
    assert ("unlimited", "5 s", "0.5 s", "300 s") == (
        _seconds(None),
        _seconds(5.0),
        _seconds(0.5),
        _seconds(300),
    )
    refused = ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused")
    outer = RuntimeError("wrapped")
    outer.__cause__ = refused
    assert "connection refused" == _root_cause(outer)
    inner = ValueError("the inner reason")
    middle = RuntimeError("")
    middle.__context__ = inner
    assert "ValueError: the inner reason" == _root_cause(middle)
    loop = RuntimeError("self")
    loop.__cause__ = loop
    assert "RuntimeError: self" == _root_cause(loop)
