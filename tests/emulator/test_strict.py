"""Strict where OpenAI is strict: batch parameters, metadata limits, JSONL lines, list pages."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest

from inert.emulator import Emulator

from ._support import chat_line, jsonl, read_jsonl


def batch_file(client: openai.OpenAI) -> str:
    """The id of an uploaded one-line batch input file."""
    return client.files.create(file=("in.jsonl", jsonl([chat_line("a", "x")])), purpose="batch").id


def create(client: openai.OpenAI, **params: Any) -> object:
    """Create a chat batch from a fresh file with extra parameters."""
    return client.batches.create(
        input_file_id=batch_file(client),
        endpoint="/v1/chat/completions",
        completion_window="24h",
        **params,
    )


@pytest.mark.parametrize(
    ("metadata", "param", "code"),
    [
        ({f"k{i}": "v" for i in range(17)}, "metadata", "object_above_max_properties"),
        ({"k" * 65: "v"}, "metadata", "string_above_max_length"),
        ({"note": "v" * 513}, "metadata.note", "string_above_max_length"),
        ({"version": 2}, "metadata.version", "invalid_type"),
    ],
)
def test_metadata_over_the_limits_is_a_400(
    client: openai.OpenAI, emu: Emulator, metadata: dict[str, Any], param: str, code: str
) -> None:
    """More than 16 keys, a key over 64 or a value over 512 characters, or a non-string is a 400."""
    with pytest.raises(openai.BadRequestError) as caught:
        create(client, metadata=metadata)
    assert (param, code) == (caught.value.param, caught.value.code)
    assert [] == emu.batch_ids()


def test_metadata_at_the_limits_is_kept(client: openai.OpenAI) -> None:
    """Sixteen keys of 64 characters with values of 512 are accepted and read back."""
    metadata = {f"{i:02d}".ljust(64, "k"): "v" * 512 for i in range(16)}
    batch = create(client, metadata=metadata)
    assert isinstance(batch, openai.types.Batch)
    assert metadata == client.batches.retrieve(batch.id).metadata


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"completion_window": "48h"}, "completion_window"),
        ({"endpoint": "/v1/images/generations"}, "endpoint"),
        (
            {"output_expires_after": {"anchor": "created_at", "seconds": 60}},
            "output_expires_after.seconds",
        ),
        (
            {"output_expires_after": {"anchor": "expires_at", "seconds": 3600}},
            "output_expires_after.anchor",
        ),
    ],
)
def test_bad_batch_parameters_are_a_400(
    client: openai.OpenAI, emu: Emulator, params: dict[str, Any], param: str
) -> None:
    """A window other than 24h, an endpoint it does not serve or a bad expiry policy is a 400."""
    body = {
        "input_file_id": batch_file(client),
        "endpoint": "/v1/chat/completions",
        "completion_window": "24h",
    } | params
    with pytest.raises(openai.BadRequestError) as caught:
        client.post("/batches", body=body, cast_to=openai.types.Batch)
    assert param == caught.value.param
    assert [] == emu.batch_ids()


def test_a_batch_needs_a_batch_purpose_file(client: openai.OpenAI) -> None:
    """An input file uploaded for another purpose is refused at creation."""
    other = client.files.create(
        file=("in.jsonl", jsonl([chat_line("a", "x")])), purpose="user_data"
    )
    with pytest.raises(openai.BadRequestError) as caught:
        client.batches.create(
            input_file_id=other.id, endpoint="/v1/chat/completions", completion_window="24h"
        )
    assert "input_file_id" == caught.value.param


@pytest.mark.parametrize("separator", ["\u2028", "\u2029", "\u0085"])
def test_lines_end_at_newline_only(client: openai.OpenAI, emu: Emulator, separator: str) -> None:
    """A prompt holding U+2028, U+2029 or U+0085 raw (legal in JSON) runs like any other line."""
    prompt = f"first{separator}second"
    lines = [chat_line("sep", prompt), chat_line("plain", "plain")]
    raw = "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines).encode()
    assert separator.encode() in raw
    uploaded = client.files.create(file=("in.jsonl", raw), purpose="batch")
    batch = client.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    emu.settle()
    done = client.batches.retrieve(batch.id)
    assert ("completed", None) == (done.status, done.errors)
    assert done.request_counts is not None
    assert 2 == done.request_counts.completed
    answered = {str(line["custom_id"]) for line in read_jsonl(client, done.output_file_id)}
    assert {"sep", "plain"} == answered


def test_files_list_pages_with_cursors(client: openai.OpenAI) -> None:
    """GET /v1/files pages newest first by default, with first_id, last_id, has_more and after."""
    ids = [client.files.create(file=(f"{i}.jsonl", b"{}\n"), purpose="batch").id for i in range(5)]
    page = client.files.list(limit=2)
    body = page.model_dump()
    assert (ids[::-1][:2], True) == ([f.id for f in page.data], page.has_more)
    assert (ids[4], ids[3]) == (body["first_id"], body["last_id"])
    assert ids[::-1] == [f.id for f in client.files.list(limit=2)]
    assert ids == [f.id for f in client.files.list(order="asc")]
    rest = client.files.list(limit=10, after=ids[1])
    assert ([ids[0]], False) == ([f.id for f in rest.data], rest.has_more)


def test_files_list_filters_by_purpose(client: openai.OpenAI) -> None:
    """purpose= lists only files of that purpose."""
    kept = client.files.create(file=("a.txt", b"a"), purpose="user_data")
    client.files.create(file=("b.jsonl", b"{}\n"), purpose="batch")
    assert [kept.id] == [f.id for f in client.files.list(purpose="user_data")]


@pytest.mark.parametrize(
    ("path", "query", "param"),
    [
        ("/files", {"limit": 0}, "limit"),
        ("/files", {"limit": 10_001}, "limit"),
        ("/files", {"order": "newest"}, "order"),
        ("/batches", {"limit": 101}, "limit"),
    ],
)
def test_list_parameters_out_of_range_are_a_400(
    client: openai.OpenAI, path: str, query: dict[str, Any], param: str
) -> None:
    """limit outside 1..10,000 (files) or 1..100 (batches), or an unknown order, is a 400."""
    with pytest.raises(openai.BadRequestError) as caught:
        client.get(path, options={"params": query}, cast_to=object)
    assert param == caught.value.param


def test_empty_lists_have_null_cursors(client: openai.OpenAI) -> None:
    """An empty page has no first_id or last_id and has_more false."""
    body = client.get("/files", cast_to=object)
    assert {
        "object": "list",
        "data": [],
        "first_id": None,
        "last_id": None,
        "has_more": False,
    } == body
