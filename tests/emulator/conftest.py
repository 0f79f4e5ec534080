"""Fixtures: one shared emulator per session, reset before every test."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import openai
import pytest
from openai.types import Batch

from inert.emulator import Emulator, Faults

from ._support import TERMINAL


@pytest.fixture(scope="session")
def shared_emulator() -> Iterator[Emulator]:
    """The emulator every test shares; batches run ten times faster than by default."""
    with Emulator(time_scale=0.1, seed=0) as emulator:
        yield emulator


@pytest.fixture
def emu(shared_emulator: Emulator) -> Emulator:
    """The shared emulator with no faults, no latency, and nothing stored or billed."""
    shared_emulator.set_faults(Faults())
    shared_emulator.set_latency_ms(0)
    shared_emulator.set_time_scale(0.1)
    shared_emulator.reset()
    return shared_emulator


@pytest.fixture
def client(emu: Emulator) -> Iterator[openai.OpenAI]:
    """A synchronous SDK client on the emulator that does not retry."""
    with openai.OpenAI(base_url=emu.base_url, api_key="test", max_retries=0) as sdk:
        yield sdk


@pytest.fixture
def aclient(emu: Emulator) -> openai.AsyncOpenAI:
    """An asynchronous SDK client on the emulator that does not retry."""
    return openai.AsyncOpenAI(base_url=emu.base_url, api_key="test", max_retries=0)


SubmitBatch = Callable[[bytes], Batch]
WaitBatch = Callable[[str], Batch]


@pytest.fixture
def submit(client: openai.OpenAI) -> SubmitBatch:
    """Upload a JSONL input file and create a chat batch from it."""

    def submit(content: bytes) -> Batch:
        uploaded = client.files.create(file=("input.jsonl", content), purpose="batch")
        return client.batches.create(
            input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
        )

    return submit


@pytest.fixture
def wait(client: openai.OpenAI) -> WaitBatch:
    """Poll a batch until it reaches a terminal status."""

    def wait(batch_id: str) -> Batch:
        deadline = time.monotonic() + 10
        while True:
            batch = client.batches.retrieve(batch_id)
            if batch.status in TERMINAL or time.monotonic() > deadline:
                return batch
            time.sleep(0.01)

    return wait
