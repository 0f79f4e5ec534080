"""The emulator's Anthropic routes: Messages and Message Batches as the real API shapes them."""

from __future__ import annotations

import json
from typing import Any

import anthropic
import httpx2
import pytest
from anthropic.types import Message
from anthropic.types.messages import (
    DeletedMessageBatch,
    MessageBatch,
    MessageBatchIndividualResponse,
)
from anthropic.types.shared import ErrorResponse
from hypothesis import given
from hypothesis import strategies as st
from tests.billing import settled_ledger

from inert._json import op_key
from inert._runners._batch._lines import MAX_BYTES_PER_BATCH, MAX_REQUESTS_PER_BATCH
from inert._runners._batch._remote_anthropic import ANTHROPIC_MAX_BYTES, ANTHROPIC_MAX_REQUESTS
from inert.anthropic import MESSAGES, message
from inert.emulator import Emulator, Faults, _anthropic_batches
from inert.testing import op_of

MODEL = "claude-haiku-4-5"
HEADERS = {"x-api-key": "k", "anthropic-version": "2023-06-01"}


def _params(word: str, **extra: Any) -> dict[str, Any]:
    return {
        "model": MODEL,
        "max_tokens": 100,
        "messages": [{"role": "user", "content": f"Define '{word}'."}],
        **extra,
    }


def _request(custom_id: str, params: dict[str, Any]) -> Any:
    return {"custom_id": custom_id, "params": params}


@pytest.fixture
def http(emu: Emulator) -> httpx2.Client:
    """A plain HTTP client on the emulator's Anthropic routes (to read raw answers)."""
    return httpx2.Client(base_url=emu.anthropic_base_url, headers=HEADERS)


def test_every_answer_parses_with_the_sdks_own_models(emu: Emulator, http: httpx2.Client) -> None:
    """Messages, batches, pages, results lines and errors validate as the anthropic SDK's models."""
    Message.model_validate(http.post("/v1/messages", json=_params("oak")).json())
    ErrorResponse.model_validate(http.post("/v1/messages", json={"model": MODEL}).json())
    requests = [_request("ok", _params("oak")), _request("bad", {"model": MODEL})]
    created = http.post("/v1/messages/batches", json={"requests": requests}).json()
    batch = MessageBatch.model_validate(created)
    assert ("in_progress", 2) == (batch.processing_status, batch.request_counts.processing)
    emu.cancel_batch(http.post("/v1/messages/batches", json={"requests": requests}).json()["id"])
    emu.settle()
    page = http.get("/v1/messages/batches", params={"limit": 10}).json()
    ended = [MessageBatch.model_validate(item) for item in page["data"]]
    assert {"ended"} == {b.processing_status for b in ended}
    results = http.get(f"/v1/messages/batches/{batch.id}/results")
    lines = [
        MessageBatchIndividualResponse.model_validate_json(x) for x in results.text.splitlines()
    ]
    assert {"ok": "succeeded", "bad": "errored"} == {x.custom_id: x.result.type for x in lines}
    ErrorResponse.model_validate(http.get("/v1/messages/batches/msgbatch_nope").json())
    deleted = DeletedMessageBatch.model_validate(
        http.delete(f"/v1/messages/batches/{batch.id}").json()
    )
    assert (batch.id, "message_batch_deleted") == (deleted.id, deleted.type)


def test_the_sdk_itself_reads_every_batch_route(emu: Emulator) -> None:
    """Through anthropic.Anthropic (its own parsing, pages and results decoder): create,
    retrieve, cancel, list, results and delete all come back as the SDK's typed objects."""
    with anthropic.Anthropic(base_url=emu.anthropic_base_url, api_key="k", max_retries=0) as sdk:
        first = sdk.messages.batches.create(requests=[_request("a", _params("oak"))])
        second = sdk.messages.batches.create(requests=[_request("b", _params("elm"))])
        canceling = sdk.messages.batches.cancel(second.id)
        assert ("in_progress", "canceling") == (
            first.processing_status,
            canceling.processing_status,
        )
        emu.settle()
        assert "ended" == sdk.messages.batches.retrieve(first.id).processing_status
        listed = list(sdk.messages.batches.list(limit=1))  # one per page: the SDK follows
        assert {first.id, second.id} == {b.id for b in listed}
        (line,) = list(sdk.messages.batches.results(first.id))
        assert ("a", "succeeded") == (line.custom_id, line.result.type)
        assert "message_batch_deleted" == sdk.messages.batches.delete(first.id).type


def test_requests_need_a_key_and_a_version(emu: Emulator) -> None:
    """Without a key the answer is 401 authentication_error; without anthropic-version, 400."""
    bare = httpx2.Client(base_url=emu.anthropic_base_url)
    missing_key = bare.post("/v1/messages", json=_params("oak"), headers={"anthropic-version": "x"})
    missing_version = bare.post("/v1/messages", json=_params("oak"), headers={"x-api-key": "k"})
    assert (401, "authentication_error") == (
        missing_key.status_code,
        missing_key.json()["error"]["type"],
    )
    assert 400 == missing_version.status_code


def test_unknown_fields_are_refused_as_anthropic_refuses_them(http: httpx2.Client) -> None:
    """A field the Messages API does not define is a 400 naming it (no lenient default)."""
    answer = http.post("/v1/messages", json=_params("oak", temprature=1))
    assert 400 == answer.status_code
    assert "temprature" in answer.json()["error"]["message"]


def test_an_open_object_schema_is_refused(http: httpx2.Client) -> None:
    """output_config.format schemas need additionalProperties false on every object."""
    fmt = {"type": "json_schema", "schema": {"type": "object", "properties": {}}}
    answer = http.post("/v1/messages", json=_params("oak", output_config={"format": fmt}))
    assert 400 == answer.status_code
    assert "additionalProperties" in answer.json()["error"]["message"]


@pytest.mark.parametrize("custom_id", ["has space", "x" * 65, "", "dot.ted", 7])
def test_custom_ids_outside_the_pattern_are_refused(http: httpx2.Client, custom_id: Any) -> None:
    """custom_id must match ^[a-zA-Z0-9_-]{1,64}$: anything else refuses the whole batch."""
    answer = http.post(
        "/v1/messages/batches", json={"requests": [_request(custom_id, _params("oak"))]}
    )
    assert 400 == answer.status_code
    assert "custom_id" in answer.json()["error"]["message"]


def test_custom_ids_at_the_edge_of_the_pattern_are_taken(http: httpx2.Client) -> None:
    """Every character the pattern allows, and the longest (64) and shortest (1) ids, pass."""
    ids = ["aZ09_-", "x" * 64, "y"]
    requests = [_request(i, _params(f"word {n}")) for n, i in enumerate(ids)]
    answer = http.post("/v1/messages/batches", json={"requests": requests})
    assert 200 == answer.status_code
    assert 3 == MessageBatch.model_validate(answer.json()).request_counts.processing


def test_a_batch_of_no_requests_is_refused(http: httpx2.Client) -> None:
    """requests holds at least one item (minItems 1 in Anthropic's reference)."""
    answer = http.post("/v1/messages/batches", json={"requests": []})
    assert (400, "invalid_request_error") == (answer.status_code, answer.json()["error"]["type"])


def test_a_create_body_over_the_size_limit_is_request_too_large(
    emu: Emulator, http: httpx2.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Over the size limit (256 MB per Anthropic's errors page; lowered here so the test
    sends little) the answer is 413 request_too_large and no batch is made; at it, one is."""
    requests = [_request(f"r{i}", _params(f"word {i}")) for i in range(20)]
    body = json.dumps({"requests": requests}).encode()
    headers = {"content-type": "application/json"}
    monkeypatch.setattr(_anthropic_batches, "MAX_BYTES", len(body) - 1)
    answer = http.post("/v1/messages/batches", content=body, headers=headers)
    # Anthropic's errors page lists 413 request_too_large (sent by its front proxy, so the
    # SDK's ErrorResponse union has no member for it): the shape is checked by hand.
    refusal = answer.json()
    assert (413, "error", "request_too_large") == (
        answer.status_code,
        refusal["type"],
        refusal["error"]["type"],
    )
    assert "maximum size" in refusal["error"]["message"]
    assert [] == emu.message_batch_ids()
    monkeypatch.setattr(_anthropic_batches, "MAX_BYTES", len(body))
    assert 200 == http.post("/v1/messages/batches", content=body, headers=headers).status_code


def test_the_runner_shards_under_anthropics_limits() -> None:
    """The batch runner's largest shard (lines and bytes) fits a Message Batch as well."""
    assert MAX_REQUESTS_PER_BATCH <= ANTHROPIC_MAX_REQUESTS == _anthropic_batches.MAX_REQUESTS
    assert MAX_BYTES_PER_BATCH <= ANTHROPIC_MAX_BYTES == _anthropic_batches.MAX_BYTES


def test_duplicate_custom_ids_are_refused(http: httpx2.Client) -> None:
    """Two requests with one custom_id refuse the batch."""
    twice = [_request("same", _params("oak")), _request("same", _params("elm"))]
    assert 400 == http.post("/v1/messages/batches", json={"requests": twice}).status_code


def test_more_than_100000_requests_are_refused(http: httpx2.Client) -> None:
    """A batch holds at most 100,000 requests."""
    tiny = {"model": MODEL}
    requests = [_request(f"r{i}", tiny) for i in range(100_001)]
    answer = http.post("/v1/messages/batches", json={"requests": requests})
    assert 400 == answer.status_code
    assert "100000" in answer.json()["error"]["message"]


@given(st.text(max_size=40))
def test_op_keys_fit_the_custom_id_pattern(word: str) -> None:
    """An op's key (64 hex digits) is a valid Message Batch custom_id, as is."""
    key = op_of(message(model=MODEL, max_tokens=9, messages=[_user(word)])).key
    assert 64 == len(key)
    assert all(c in "0123456789abcdef" for c in key)


def _user(word: str) -> Any:
    return {"role": "user", "content": word or "x"}


def test_lines_bill_as_they_complete_whether_or_not_anyone_polls(
    emu: Emulator, http: httpx2.Client
) -> None:
    """settle() bills every succeeded line at the batch price; errored lines are not billed."""
    requests = [_request(f"w{i}", _params(f"word{i}")) for i in range(6)]
    requests.append(_request("bad", {"model": MODEL, "max_tokens": 1}))
    http.post("/v1/messages/batches", json={"requests": requests})
    ledger = settled_ledger(emu)
    keys = {op_key(MESSAGES, r["params"]) for r in requests[:6]}
    assert dict.fromkeys(keys, 1) == ledger.counts()
    assert {True} == {charge.batch for charge in ledger.charges()}


def test_a_cancel_ends_the_batch_with_the_unrun_requests_canceled(
    emu: Emulator, http: httpx2.Client
) -> None:
    """cancel: canceling, then ended; requests not run by then are canceled and not billed."""
    emu.set_time_scale(50.0)
    requests = [_request(f"w{i}", _params(f"word{i}")) for i in range(4)]
    batch_id = http.post("/v1/messages/batches", json={"requests": requests}).json()["id"]
    canceling = http.post(f"/v1/messages/batches/{batch_id}/cancel").json()
    assert "canceling" == canceling["processing_status"]
    assert canceling["cancel_initiated_at"] is not None
    emu.settle()
    ended = MessageBatch.model_validate(http.get(f"/v1/messages/batches/{batch_id}").json())
    assert (4, 0) == (ended.request_counts.canceled, ended.request_counts.processing)
    assert {} == emu.ledger.counts()


def test_expired_and_errored_lines_come_back_as_such(emu: Emulator, http: httpx2.Client) -> None:
    """line_expired and line_failed faults give expired and errored results, never billed."""
    emu.set_faults(Faults(line_expired=0.5, line_failed=0.5))
    requests = [_request(f"w{i}", _params(f"word{i}")) for i in range(20)]
    batch_id = http.post("/v1/messages/batches", json={"requests": requests}).json()["id"]
    emu.settle()
    results = http.get(f"/v1/messages/batches/{batch_id}/results").text.splitlines()
    kinds = {json.loads(line)["result"]["type"] for line in results}
    assert {"expired", "errored"} == kinds
    assert {} == emu.ledger.counts()


def test_results_are_gone_once_archived(emu: Emulator, http: httpx2.Client) -> None:
    """After the results' lifetime (expire_files) the batch shows archived_at; results are 404."""
    batch_id = http.post(
        "/v1/messages/batches", json={"requests": [_request("a", _params("oak"))]}
    ).json()["id"]
    emu.settle()
    assert 200 == http.get(f"/v1/messages/batches/{batch_id}/results").status_code
    assert [batch_id] == [i for i in emu.expire_files() if i.startswith("msgbatch_")]
    gone = http.get(f"/v1/messages/batches/{batch_id}/results")
    assert (404, "not_found_error") == (gone.status_code, gone.json()["error"]["type"])
    assert http.get(f"/v1/messages/batches/{batch_id}").json()["archived_at"] is not None


async def test_a_lost_create_answer_still_makes_the_batch(emu: Emulator) -> None:
    """create_lost: the SDK sees a failure, yet the batch exists, runs and bills."""
    emu.inject("anthropic.batches.create", "create_lost", status=500)
    async with anthropic.AsyncAnthropic(
        base_url=emu.anthropic_base_url, api_key="k", max_retries=0
    ) as sdk:
        with pytest.raises(anthropic.InternalServerError):
            await sdk.messages.batches.create(requests=[_request("a", _params("oak"))])
    assert 1 == len(emu.message_batch_ids())
    assert 1 == settled_ledger(emu).total_billed()


def test_a_truncated_results_download_is_cut_short(emu: Emulator, http: httpx2.Client) -> None:
    """The truncated fault on the results route serves fewer bytes than the results have."""
    requests = [_request(f"w{i}", _params(f"word{i}")) for i in range(8)]
    batch_id = http.post("/v1/messages/batches", json={"requests": requests}).json()["id"]
    emu.settle()
    whole = http.get(f"/v1/messages/batches/{batch_id}/results").content
    emu.inject("anthropic.batches.results", "truncated")
    cut = http.get(f"/v1/messages/batches/{batch_id}/results").content
    assert len(cut) < len(whole)
    assert whole.startswith(cut)


def test_attempt_faults_answer_in_anthropics_shape(emu: Emulator, http: httpx2.Client) -> None:
    """An injected 429 is rate_limit_error with retry-after; a 529 is overloaded_error."""
    emu.inject("anthropic.messages", "rate_limit", retry_after=0.5)
    emu.inject("anthropic.messages", "server_error", status=529)
    limited = http.post("/v1/messages", json=_params("oak"))
    overloaded = http.post("/v1/messages", json=_params("oak"))
    assert (429, "rate_limit_error", "0.500") == (
        limited.status_code,
        limited.json()["error"]["type"],
        limited.headers["retry-after"],
    )
    assert (529, "overloaded_error") == (
        overloaded.status_code,
        overloaded.json()["error"]["type"],
    )
    assert {} == settled_ledger(emu).counts()
