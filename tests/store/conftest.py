"""Fixtures of the store tests: an emulator, an SDK client on it, a store path per test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import openai
import pytest

from inert.emulator import Emulator, Faults


@pytest.fixture(scope="session")
def store_emulator() -> Iterator[Emulator]:
    """One emulator for the store tests; batches run in about a twentieth of a second."""
    with Emulator(time_scale=0.05, seed=0) as emulator:
        yield emulator


@pytest.fixture
def emu(store_emulator: Emulator) -> Emulator:
    """The shared emulator with no faults and nothing stored or billed."""
    store_emulator.set_faults(Faults())
    store_emulator.set_latency_ms(0)
    store_emulator.set_time_scale(0.05)
    store_emulator.reset()
    return store_emulator


@pytest.fixture
async def client(emu: Emulator) -> AsyncIterator[openai.AsyncOpenAI]:
    """An async SDK client on the emulator."""
    async with openai.AsyncOpenAI(base_url=emu.base_url, api_key="test", max_retries=0) as sdk:
        yield sdk


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    """Where this test's store lives."""
    return tmp_path / "store.sqlite3"
