"""The batch runner's settings and small helpers, exactly (no emulator, no batch sent).

Unit-level: which settings a ``BatchRunner`` refuses and the exact message, what it
keeps, how a failure is amended with a note without losing its status, code and
body, and which answers the runner may store. ``tests/batch/test_batch_runner.py``
runs the runner itself against the emulator.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from returns.result import Failure, Success

from inert import BatchRunner, Op, Store
from inert._errors import (
    ApiError,
    ConnectionFailedError,
    RateLimitError,
    RefusalError,
    RequestError,
)
from inert._json import JSON
from inert._runners._batch._runner import (
    DEFAULT_MAX_ATTEMPTS,
    STALL_LINES,
    _bare,
    _keeper,
    amended,
)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store(tmp_path / "units.sqlite3") as opened:
        yield opened


@pytest.fixture
def client() -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url="http://127.0.0.1:9/v1", api_key="sk-units")


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"poll_interval": 0}, "poll_interval must be a positive number; got 0"),
        ({"poll_interval": -1.5}, "poll_interval must be a positive number; got -1.5"),
        ({"poll_interval": True}, "poll_interval must be a positive number; got True"),
        ({"poll_interval": "5"}, "poll_interval must be a positive number; got '5'"),
        ({"poll_interval_max": 0.0}, "poll_interval_max must be a positive number; got 0.0"),
        ({"lease": 0}, "lease must be a positive number; got 0"),
        ({"lease": None}, "lease must be a positive number; got None"),
        (
            {"poll_interval": 5, "poll_interval_max": 1},
            "poll_interval_max (1) must be at least poll_interval (5)",
        ),
        (
            {"max_requests_per_batch": 50_001},
            "max_requests_per_batch must be an integer from 1 to 50,000; got 50001",
        ),
        (
            {"max_requests_per_batch": 0},
            "max_requests_per_batch must be an integer from 1 to 50,000; got 0",
        ),
        (
            {"max_requests_per_batch": 10.0},
            "max_requests_per_batch must be an integer from 1 to 50,000; got 10.0",
        ),
        (
            {"max_bytes_per_batch": 200 * 1024 * 1024 + 1},
            "max_bytes_per_batch must be an integer from 1 to 209,715,200; got 209715201",
        ),
        ({"max_attempts": 101}, "max_attempts must be an integer from 1 to 100; got 101"),
        ({"max_attempts": True}, "max_attempts must be an integer from 1 to 100; got True"),
        (
            {"completion_window": "1h"},
            "completion_window must be '24h' (the only window OpenAI accepts); got '1h'",
        ),
        (
            {"metadata": {f"k{i}": "v" for i in range(14)}},
            "metadata must be at most 13 pairs of strings (keys up to 64 characters, values "
            "up to 512); inert adds three pairs of its own",
        ),
        (
            {"metadata": {"k" * 65: "v"}},
            "metadata must be at most 13 pairs of strings (keys up to 64 characters, values "
            "up to 512); inert adds three pairs of its own",
        ),
        (
            {"metadata": {"k": "v" * 513}},
            "metadata must be at most 13 pairs of strings (keys up to 64 characters, values "
            "up to 512); inert adds three pairs of its own",
        ),
        (
            {"metadata": {"k": 1}},
            "metadata must be at most 13 pairs of strings (keys up to 64 characters, values "
            "up to 512); inert adds three pairs of its own",
        ),
        (
            {"metadata": {"inert_run": "x", "ok": "y", "inert_x": "z"}},
            "metadata keys starting with 'inert_' are reserved: ['inert_run', 'inert_x']",
        ),
    ],
)
def test_a_setting_out_of_range_is_refused_with_its_message(
    client: openai.AsyncOpenAI, store: Store, settings: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        BatchRunner(client, store=store, **settings)


def test_a_store_that_is_no_store_is_refused(client: openai.AsyncOpenAI, tmp_path: Path) -> None:
    not_a_store: Any = str(tmp_path / "x.sqlite3")  # what an untyped caller may pass
    with pytest.raises(
        TypeError, match=r"^BatchRunner needs store=Store\(path\) for its journal; got str$"
    ):
        BatchRunner(client, store=not_a_store)


def test_settings_at_their_limits_are_kept(client: openai.AsyncOpenAI, store: Store) -> None:
    runner = BatchRunner(
        client,
        store=store,
        poll_interval=2,
        poll_interval_max=2,
        max_requests_per_batch=50_000,
        max_bytes_per_batch=1,
        max_attempts=100,
        metadata={f"k{i}": "v" * 512 for i in range(12)} | {"k" * 64: "v"},
        lease=3,
        progress=False,
    )
    assert store is runner.store
    assert 3.0 == runner.lease
    assert isinstance(runner.lease, float)
    assert runner.run_id is None
    assert f"BatchRunner(store={store!r})" == repr(runner)
    assert (2, 2, 50_000, 1, 100) == (
        runner._poll_interval,
        runner._poll_interval_max,
        runner._max_requests,
        runner._max_bytes,
        runner._max_attempts,
    )
    assert 13 == len(runner._metadata)


def test_the_defaults(client: openai.AsyncOpenAI, store: Store) -> None:
    runner = BatchRunner(client, store=store, progress=False)
    assert (5.0, 60.0, 50_000, 200 * 1024 * 1024, 10, 60.0, {}) == (
        runner._poll_interval,
        runner._poll_interval_max,
        runner._max_requests,
        runner._max_bytes,
        runner._max_attempts,
        runner.lease,
        runner._metadata,
    )
    assert (10, 8) == (DEFAULT_MAX_ATTEMPTS, STALL_LINES)
    assert not runner._progress
    assert (5.0, 60.0) == (runner._journal.poll_interval, runner._journal.poll_interval_max)
    assert ["openai"] == list(runner._journal.remotes)


def test_a_note_is_added_to_a_failure_keeping_its_kind_and_details() -> None:
    body: JSON = {"error": {"message": "slow down"}}
    limited = amended(RateLimitError("limited", status=429, code="rate", body=body), "retried")
    assert isinstance(limited, RateLimitError)
    assert ("limited; retried", 429, "rate", body) == (
        limited.message,
        limited.status,
        limited.code,
        limited.body,
    )
    api = amended(ApiError("bad", status=400, code="invalid", body="text"), "in batch b")
    assert type(api) is ApiError
    assert ("bad; in batch b", 400, "invalid", "text") == (
        api.message,
        api.status,
        api.code,
        api.body,
    )
    dropped = amended(ConnectionFailedError("dropped"), "twice")
    assert type(dropped) is ConnectionFailedError
    assert "dropped; twice" == dropped.message
    other = amended(RefusalError("no", refusal="I won't"), "noted")
    assert type(other) is RequestError
    assert "no; noted" == other.message


def test_an_answer_is_kept_unless_its_decoder_says_it_is_no_answer() -> None:
    def strict(raw: JSON) -> JSON:
        if isinstance(raw, dict) and "error" in raw:
            raise ApiError("no answer", status=400)
        if raw == "broken":
            raise ValueError("a bug in the decoder")
        return raw

    op: Op[JSON] = Op(endpoint="/v1/chat/completions", body={"x": 1}, decode=strict)
    keep = _keeper({op.key: op})
    assert keep(op.key, {"ok": True})
    assert not keep(op.key, {"error": {"message": "x"}})
    assert keep(op.key, "broken")  # a bug in the decoder is not the server's: kept
    assert keep("unknown", {"error": {"message": "x"}})  # no op to ask: kept


def test_an_outcome_is_passed_on_without_its_wrapper() -> None:
    error = ApiError("bad", status=400)
    assert {"a": 1} == _bare(Success({"a": 1}))
    assert error is _bare(Failure(error))
