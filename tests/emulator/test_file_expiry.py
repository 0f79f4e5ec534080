"""Files expire as at OpenAI: expires_at, 404 "No such File object" afterwards, TTL settings."""

from __future__ import annotations

import time

import openai
import pytest

from inert.emulator import Emulator

from ._support import chat_line, jsonl

THIRTY_DAYS = 30 * 24 * 3600


def test_batch_files_expire_in_thirty_days_others_never(client: openai.OpenAI) -> None:
    """Batch uploads carry expires_at 30 days after created_at; other purposes none."""
    batch_file = client.files.create(file=("in.jsonl", b"{}\n"), purpose="batch")
    kept = client.files.create(file=("notes.txt", b"hello"), purpose="user_data")
    assert batch_file.expires_at is not None
    assert abs(batch_file.created_at + THIRTY_DAYS - batch_file.expires_at) <= 1
    assert kept.expires_at is None


def test_expires_after_sets_an_uploads_expiry(client: openai.OpenAI) -> None:
    """expires_after {anchor: created_at, seconds} on upload sets expires_at, for any purpose."""
    uploaded = client.files.create(
        file=("notes.txt", b"hello"),
        purpose="user_data",
        expires_after={"anchor": "created_at", "seconds": 3600},
    )
    assert uploaded.expires_at is not None
    assert abs(uploaded.created_at + 3600 - uploaded.expires_at) <= 1


@pytest.mark.parametrize("seconds", [3599, 2_592_001])
def test_expires_after_out_of_range_is_a_400(client: openai.OpenAI, seconds: int) -> None:
    """expires_after seconds outside 3600..2592000 is refused with a 400 naming it."""
    with pytest.raises(openai.BadRequestError) as caught:
        client.files.create(
            file=("in.jsonl", b"{}\n"),
            purpose="batch",
            expires_after={"anchor": "created_at", "seconds": seconds},
        )
    assert "expires_after.seconds" == caught.value.param


def test_expired_output_file_answers_404(client: openai.OpenAI, emu: Emulator) -> None:
    """After expire_files() an output file's download and retrieve answer 404 and it is not listed."""
    uploaded = client.files.create(file=("in.jsonl", jsonl([chat_line("a", "x")])), purpose="batch")
    batch = client.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    emu.settle()
    output_id = client.batches.retrieve(batch.id).output_file_id
    assert output_id is not None
    assert [output_id] == emu.expire_files("batch_output")
    with pytest.raises(openai.NotFoundError) as caught:
        client.files.content(output_id)
    assert f"Error code: 404 - No such File object: {output_id}" == caught.value.message
    with pytest.raises(openai.NotFoundError):
        client.files.retrieve(output_id)
    assert [uploaded.id] == [f.id for f in client.files.list()]


def test_file_ttl_expires_files_on_the_clock() -> None:
    """With file_ttl a batch's input and output files expire by themselves; user files stay."""
    with (
        Emulator(time_scale=0.01, file_ttl=0.3) as emu,
        openai.OpenAI(base_url=emu.base_url, api_key="k", max_retries=0) as sdk,
    ):
        uploaded = sdk.files.create(
            file=("in.jsonl", jsonl([chat_line("a", "x")])), purpose="batch"
        )
        kept = sdk.files.create(file=("notes.txt", b"hello"), purpose="user_data")
        sdk.batches.create(
            input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
        )
        emu.settle()
        time.sleep(0.35)
        assert [kept.id] == [f.id for f in sdk.files.list()]
        with pytest.raises(openai.NotFoundError):
            sdk.files.content(uploaded.id)


def test_an_expired_input_file_cannot_start_a_batch(client: openai.OpenAI, emu: Emulator) -> None:
    """Creating a batch from an expired input file is a 400 naming input_file_id."""
    uploaded = client.files.create(file=("in.jsonl", jsonl([chat_line("a", "x")])), purpose="batch")
    emu.expire_files()
    with pytest.raises(openai.BadRequestError) as caught:
        client.batches.create(
            input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
        )
    assert "input_file_id" == caught.value.param


def test_output_expires_after_sets_the_output_files_expiry(
    client: openai.OpenAI, emu: Emulator
) -> None:
    """A batch's output_expires_after gives its output file that lifetime from its creation."""
    uploaded = client.files.create(file=("in.jsonl", jsonl([chat_line("a", "x")])), purpose="batch")
    batch = client.batches.create(
        input_file_id=uploaded.id,
        endpoint="/v1/chat/completions",
        completion_window="24h",
        output_expires_after={"anchor": "created_at", "seconds": 7200},
    )
    emu.settle()
    output_id = client.batches.retrieve(batch.id).output_file_id
    assert output_id is not None
    output = client.files.retrieve(output_id)
    assert output.expires_at is not None
    assert abs(output.created_at + 7200 - output.expires_at) <= 1


def test_file_ttl_none_never_expires() -> None:
    """file_ttl=None leaves batch files without expires_at."""
    with (
        Emulator(file_ttl=None) as emu,
        openai.OpenAI(base_url=emu.base_url, api_key="k", max_retries=0) as sdk,
    ):
        assert sdk.files.create(file=("in.jsonl", b"{}\n"), purpose="batch").expires_at is None
        assert [] == emu.expire_files()
