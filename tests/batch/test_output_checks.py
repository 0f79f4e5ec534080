"""Output downloads are checked against the batch; odd lines never crash, never pay twice.

A download that reads shorter than ``request_counts`` says (a cut body, an HTML page)
is downloaded again, and if it stays short the shard stays in the journal: lines the
server completed are never resubmitted. Lines that are not batch output lines are
anomalies; a stray custom_id is never stored; two different lines for one request
fail that request.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import openai
import pytest
from hypothesis import given
from hypothesis import strategies as st
from returns.result import Failure, Success
from tests.billing import settled_ledger

from inert import BatchRunner, ImmediateRunner, Store
from inert._runners._batch import parse_output_file
from inert.emulator import Emulator
from inert.errors import ApiError
from inert.testing import op_of

from ._support import Words, ask
from ._transport import LossyTransport

REQUESTS = [ask(f"checked {i}") for i in range(4)]
KEYS = [op_of(r).key for r in REQUESTS]
CONTENT = "/v1/files/[^/]+/content"


class Crash(BaseException):
    """Stands in for the process dying at a precise point."""


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


def stored_values(store: Store) -> dict[str, Words]:
    """The stored answers of REQUESTS, decoded."""
    stored = store.get_responses(KEYS)
    return {
        op_of(r).key: op_of(r).decode(stored[op_of(r).key])
        for r in REQUESTS
        if op_of(r).key in stored
    }


@pytest.mark.parametrize("kind", ["truncated", "not_json"])
async def test_a_cut_or_html_download_is_downloaded_again(
    kind: str, client: openai.AsyncOpenAI, store: Store, emu: Emulator, expected: list[Words]
) -> None:
    """An output download that is cut short or an HTML page is fetched again; nothing paid twice."""
    emu.inject("files.content", kind, count=2)
    runner = fast(client, store)
    assert expected == await runner.run_all(REQUESTS)
    assert 1 == runner.report.batches_created
    assert dict.fromkeys(KEYS, 1) == settled_ledger(emu).counts()


async def test_an_output_that_stays_short_is_left_to_a_later_collection(
    client: openai.AsyncOpenAI, store: Store, emu: Emulator, expected: list[Words]
) -> None:
    """Cut on every download, the shard stays open and nothing is resubmitted; a rerun collects it."""
    emu.inject("files.content", "truncated", count=5)
    runner = fast(client, store)
    results = await runner.run_all_settled(REQUESTS)
    for want, got in zip(expected, results, strict=True):
        if isinstance(got, Success):
            assert want == got.unwrap()
        else:
            assert isinstance(got, Failure)
            error = got.failure()
            assert isinstance(error, ApiError)
            assert "incomplete_output" == error.code
    assert any(isinstance(r, Failure) for r in results)
    assert 1 == len(emu.batch_ids())
    (record,) = store.shards()
    assert "created" == record.state
    rerun = fast(client, store)
    assert expected == await rerun.run_all(REQUESTS)
    assert 0 == rerun.report.batches_created
    assert dict.fromkeys(KEYS, 1) == settled_ledger(emu).counts()


def with_odd_lines(body: bytes) -> bytes:
    """The output plus lines whose custom_id is a list, a dict, a number or null, a line that is
    not an object, a response that is a string, and a stray copy of an answer."""
    first = json.loads(body.split(b"\n")[0])
    odd = [
        {**first, "custom_id": ["a", "list"]},
        {**first, "custom_id": {"a": "dict"}},
        {**first, "custom_id": 12},
        {**first, "custom_id": None},
        [1, 2, 3],
        {**first, "response": "not an object"},
        {**first, "custom_id": "stray-id-nobody-sent"},
    ]
    return body + b"".join(json.dumps(item).encode() + b"\n" for item in odd)


async def test_malformed_and_stray_lines_are_anomalies_and_never_stored(
    client: openai.AsyncOpenAI,
    store: Store,
    emu: Emulator,
    wire: LossyTransport,
    expected: list[Words],
) -> None:
    """Lines with a custom_id of any wrong type are recorded; the stray one is not stored."""
    wire.rewrite("GET", CONTENT, with_odd_lines)
    assert expected == await fast(client, store).run_all(REQUESTS)
    anomalies = store.anomalies()
    assert 7 == len(anomalies)
    assert ["stray-id-nobody-sent"] == [cid for _, cid, _ in anomalies if cid is not None]
    assert 4 == store.response_count()
    assert dict(zip(KEYS, expected, strict=True)) == stored_values(store)


async def test_a_resume_survives_malformed_lines(
    client: openai.AsyncOpenAI,
    store: Store,
    emu: Emulator,
    wire: LossyTransport,
    expected: list[Words],
) -> None:
    """A run killed at its download, resumed over an output with malformed lines, stores every answer."""
    wire.crash("GET", CONTENT, Crash())
    with pytest.raises(Crash):
        await fast(client, store).run_all(REQUESTS)
    wire.rewrite("GET", CONTENT, with_odd_lines)
    rerun = fast(client, store)
    assert expected == await rerun.run_all(REQUESTS)
    assert 0 == rerun.report.batches_created
    assert dict(zip(KEYS, expected, strict=True)) == stored_values(store)


def with_duplicate(changed: bool) -> Callable[[bytes], bytes]:
    """The output with its first line repeated, identical or with a different answer."""

    def rewrite(body: bytes) -> bytes:
        first = json.loads(body.split(b"\n")[0])
        if changed:
            answer = first["response"]["body"]
            answer["choices"][0]["message"]["content"] = json.dumps({"words": ["forged"]})
        return body + json.dumps(first).encode() + b"\n"

    return rewrite


async def test_conflicting_duplicate_lines_fail_their_request(
    client: openai.AsyncOpenAI,
    store: Store,
    emu: Emulator,
    wire: LossyTransport,
    expected: list[Words],
) -> None:
    """Two different lines for one request: it fails clearly, neither is stored, the rest succeed."""
    wire.rewrite("GET", CONTENT, with_duplicate(changed=True))
    results = await fast(client, store).run_all_settled(REQUESTS)
    failed = [i for i, r in enumerate(results) if isinstance(r, Failure)]
    assert 1 == len(failed)
    error = results[failed[0]].failure()
    assert isinstance(error, ApiError)
    assert "conflicting_lines" == error.code
    assert "two different lines" in error.message
    answered = {KEYS[i]: expected[i] for i in range(4) if i not in failed}
    assert answered == stored_values(store)
    assert 1 == len(emu.batch_ids())


async def test_an_identical_duplicate_line_counts_once(
    client: openai.AsyncOpenAI,
    store: Store,
    emu: Emulator,
    wire: LossyTransport,
    expected: list[Words],
) -> None:
    """The same line twice is noted and answers its request once."""
    wire.rewrite("GET", CONTENT, with_duplicate(changed=False))
    assert expected == await fast(client, store).run_all(REQUESTS)
    ((_, cid, detail),) = store.anomalies()
    assert cid in KEYS
    assert "twice" in detail


async def test_prompts_with_unicode_line_separators_succeed_in_batch_mode(
    client: openai.AsyncOpenAI, store: Store, emu: Emulator
) -> None:
    """A prompt holding U+2028, U+2029 and U+0085 is one batch line and gets its answer."""
    requests = [ask("one\u2028two"), ask("three\u0085four"), ask("five\u2029six\r\nseven")]
    want = await ImmediateRunner(client).run_all(requests)
    emu.reset()
    assert want == await fast(client, store).run_all(requests)
    assert {op_of(r).key: 1 for r in requests} == settled_ledger(emu).counts()


@given(st.lists(st.text(), max_size=5))
def test_output_lines_split_at_newline_only(texts: list[str]) -> None:
    """Any string values in a line, separators included, parse back to that very line."""
    lines = [
        {"custom_id": f"c{i}", "response": {"status_code": 200, "body": {"t": t}}, "error": None}
        for i, t in enumerate(texts)
    ]
    data = "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines).encode()
    parsed = parse_output_file(data)
    assert ([], []) == (parsed.malformed, parsed.unreadable)
    assert [{"t": t} for t in texts] == [line.body for line in parsed.lines]
