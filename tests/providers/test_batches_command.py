"""``inert batches`` on a journal holding Anthropic Message Batches beside OpenAI batches.

Each command reads the shard's provider from its endpoint and reaches that
provider's batch API with the SDK's own environment (``ANTHROPIC_API_KEY``, and
``--anthropic-base-url`` or ``ANTHROPIC_BASE_URL``), through the emulator here.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest
from tests.billing import assert_billed_once, keys_of

from inert import BatchRunner, Request, Store
from inert._cli import main
from inert.emulator import Emulator
from inert.openai import chat

from ._anthropic_support import claude_requests

CLAUDE = claude_requests()
GPT: list[Request[Any]] = [
    chat(model="gpt-4o-mini", messages=[{"role": "user", "content": f"cli {i}"}]) for i in range(2)
]
MIXED: list[Request[Any]] = [*CLAUDE, *GPT]


def run(emu: Emulator, store_path: Path, requests: list[Request[Any]], *, stop: bool) -> None:
    """Run ``requests`` on both providers; with ``stop``, stop once every batch is created."""

    async def go() -> None:
        with Store(store_path) as store:
            async with (
                openai.AsyncOpenAI(base_url=emu.base_url, api_key="test") as gpt,
                anthropic.AsyncAnthropic(base_url=emu.anthropic_base_url, api_key="t") as claude,
            ):
                runner = BatchRunner(
                    openai=gpt, anthropic=claude, store=store, poll_interval=0.01, progress=False
                )
                task = asyncio.create_task(runner.run_all(requests))
                if not stop:
                    await task
                    return
                wanted = 2 if any(r in GPT for r in requests) else 1  # shards: one per provider
                while len(store.shards(states=("created",))) < wanted:  # noqa: ASYNC110 - polling the journal is the point
                    await asyncio.sleep(0.005)
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)

    asyncio.run(go())


@pytest.fixture
def keys(monkeypatch: pytest.MonkeyPatch) -> None:
    """Both providers' keys in the environment, as the SDKs read them."""
    monkeypatch.setenv("OPENAI_API_KEY", "test")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "test")


def argv(emu: Emulator, store_path: Path) -> list[str]:
    """``inert batches`` on this store, with both base URLs on the emulator."""
    return [
        "batches",
        "--store",
        str(store_path),
        "--base-url",
        emu.base_url,
        "--anthropic-base-url",
        emu.anthropic_base_url,
    ]


def test_list_names_each_batchs_provider_and_filters_by_it(
    emu: Emulator, store_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`list` shows the Message Batch with API "anthropic"; `--provider openai` leaves it out."""
    run(emu, store_path, MIXED, stop=False)
    (message_batch,) = emu.message_batch_ids()
    (openai_batch,) = emu.batch_ids()
    assert 0 == main(["batches", "--store", str(store_path), "list"])
    out = capsys.readouterr().out
    assert out.splitlines()[0].split()[4] == "API"
    row = next(line for line in out.splitlines() if message_batch in line)
    assert ["anthropic", "downloaded"] == row.split()[4:6]
    assert 0 == main(["batches", "--store", str(store_path), "list", "--provider", "openai"])
    out = capsys.readouterr().out
    assert openai_batch in out
    assert message_batch not in out


def test_show_remote_reads_the_message_batch_from_anthropic(
    emu: Emulator, store_path: Path, capsys: pytest.CaptureFixture[str], keys: None
) -> None:
    """`show ID --remote` of a Message Batch prints Anthropic's own status and counts."""
    run(emu, store_path, CLAUDE, stop=False)
    (batch_id,) = emu.message_batch_ids()
    assert 0 == main([*argv(emu, store_path), "show", batch_id, "--remote"])
    fields = {line[:18].strip(): line[18:].strip() for line in capsys.readouterr().out.splitlines()}
    assert "Anthropic" == fields["provider"]
    assert "/v1/messages" == fields["endpoint"]
    assert "ended" == fields["remote status"]
    assert fields["remote counts"].startswith(f"{len(CLAUDE)} succeeded, 0 errored")


def test_resume_collects_both_providers_batches_of_a_stopped_run(
    emu: Emulator, store_path: Path, capsys: pytest.CaptureFixture[str], keys: None
) -> None:
    """`resume` waits for the OpenAI batch and the Message Batch and stores every answer once."""
    emu.set_time_scale(0.3)
    run(emu, store_path, MIXED, stop=True)
    assert 0 == main([*argv(emu, store_path), "resume", "--poll-interval", "0.01"])
    out = capsys.readouterr().out
    (message_batch,) = emu.message_batch_ids()
    (openai_batch,) = emu.batch_ids()
    assert f"{message_batch}: completed, {len(CLAUDE)} answers stored" in out
    assert f"{openai_batch}: completed, {len(GPT)} answers stored" in out
    with Store(store_path) as store:
        assert len(MIXED) == store.response_count()
        assert ["downloaded", "downloaded"] == [r.state for r in store.shards()]
    assert_billed_once(emu, keys_of(MIXED))


def test_cancel_cancels_an_unfinished_message_batch(
    emu: Emulator,
    store_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`cancel` reaches Anthropic for a Message Batch (no OpenAI key needed): it is canceling
    there, cancelling in the journal."""
    monkeypatch.setenv("ANTHROPIC_API_KEY", "test")
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    emu.set_time_scale(5.0)
    run(emu, store_path, CLAUDE, stop=True)
    (batch_id,) = emu.message_batch_ids()
    assert 0 == main([*argv(emu, store_path), "cancel", batch_id])
    assert f"cancelling {batch_id}" in capsys.readouterr().out

    async def remote() -> str:
        async with anthropic.AsyncAnthropic(base_url=emu.anthropic_base_url, api_key="t") as claude:
            return (await claude.messages.batches.retrieve(batch_id)).processing_status

    assert asyncio.run(remote()) in ("canceling", "ended")
    with Store(store_path) as store:
        assert ["cancelling"] == [r.state for r in store.shards()]


def test_a_missing_anthropic_key_is_explained_and_provider_openai_goes_without(
    emu: Emulator,
    store_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Pending Message Batches without ANTHROPIC_API_KEY: exit 2 naming the variable and the
    way round; `--provider openai` cancels the OpenAI batch alone."""
    monkeypatch.setenv("OPENAI_API_KEY", "test")
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.delenv("ANTHROPIC_AUTH_TOKEN", raising=False)
    emu.set_time_scale(5.0)
    run(emu, store_path, MIXED, stop=True)
    assert 2 == main([*argv(emu, store_path), "cancel"])
    err = capsys.readouterr().err
    assert "set ANTHROPIC_API_KEY" in err
    assert "--provider openai" in err
    with Store(store_path) as store:
        assert ["created", "created"] == [r.state for r in store.shards()]  # nothing cancelled

    assert 0 == main([*argv(emu, store_path), "cancel", "--provider", "openai"])
    (openai_batch,) = emu.batch_ids()
    assert f"cancelling {openai_batch}" in capsys.readouterr().out
    with Store(store_path) as store:
        states = {r.endpoint: r.state for r in store.shards()}
    assert {"/v1/chat/completions": "cancelling", "/v1/messages": "created"} == states
