"""Fixtures of the money tests: one fast emulator, SDK clients with default retries, a store."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import openai
import pytest

from inert import Store
from inert.emulator import Emulator, Faults

TIME_SCALE = 0.05
"""A whole emulated batch takes about 1.1 * TIME_SCALE seconds."""


@pytest.fixture(scope="session")
def money_emulator() -> Iterator[Emulator]:
    """One emulator for the money tests, with batches twenty times faster than default."""
    with Emulator(time_scale=TIME_SCALE, seed=0) as emulator:
        yield emulator


@pytest.fixture
def emu(money_emulator: Emulator) -> Emulator:
    """The shared emulator with no faults and nothing stored or billed."""
    money_emulator.set_faults(Faults())
    money_emulator.set_latency_ms(0)
    money_emulator.set_time_scale(TIME_SCALE)
    money_emulator.reset()
    return money_emulator


@pytest.fixture
async def client(emu: Emulator) -> AsyncIterator[openai.AsyncOpenAI]:
    """An async SDK client on the emulator, with the SDK's default retries (as users have)."""
    async with openai.AsyncOpenAI(base_url=emu.base_url, api_key="sk-test-money") as sdk:
        yield sdk


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    """A fresh store for this test."""
    with Store(tmp_path / "store.sqlite3") as opened:
        yield opened
