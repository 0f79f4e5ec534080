"""Fixtures for the providers' tests: one fast emulator, SDK clients on it, a store per test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import anthropic
import httpx2
import openai
import pytest

from inert import Store
from inert.emulator import Emulator, Faults

TIME_SCALE = 0.05
"""A whole emulated batch takes about 1.1 * TIME_SCALE seconds."""


class Recorder(httpx2.AsyncBaseTransport):
    """A transport that records the body of every request it carries."""

    def __init__(self) -> None:
        self.inner = httpx2.AsyncHTTPTransport()
        self.bodies: list[bytes] = []
        self.paths: list[str] = []

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        self.bodies.append(await request.aread())
        self.paths.append(request.url.path)
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


@pytest.fixture(scope="session")
def providers_emulator() -> Iterator[Emulator]:
    """One emulator for the providers' tests, with fast batches."""
    with Emulator(time_scale=TIME_SCALE, seed=3) as emulator:
        yield emulator


@pytest.fixture
def emu(providers_emulator: Emulator) -> Emulator:
    """The shared emulator with no faults and nothing stored or billed."""
    providers_emulator.set_faults(Faults())
    providers_emulator.set_latency_ms(0)
    providers_emulator.set_time_scale(TIME_SCALE)
    providers_emulator.reset()
    return providers_emulator


@pytest.fixture
def recorder() -> Recorder:
    """A fresh recording transport."""
    return Recorder()


@pytest.fixture
async def openai_client(emu: Emulator, recorder: Recorder) -> AsyncIterator[openai.AsyncOpenAI]:
    """An ``AsyncOpenAI`` on the emulator, through the recorder."""
    http = openai.DefaultAsyncHttpxClient(transport=recorder)
    async with openai.AsyncOpenAI(
        base_url=emu.base_url, api_key="sk-test-SECRET-never-stored", http_client=http
    ) as sdk:
        yield sdk


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    """Where this test's store lives."""
    return tmp_path / "store.sqlite3"


@pytest.fixture
def open_store(store_path: Path) -> Iterator[Callable[[], Store]]:
    """Opens this test's store (each call a new connection); closes them all at the end."""
    opened: list[Store] = []

    def open_() -> Store:
        store = Store(store_path)
        opened.append(store)
        return store

    yield open_
    for store in opened:
        store.close()


@pytest.fixture
async def anthropic_client(
    emu: Emulator, recorder: Recorder
) -> AsyncIterator[anthropic.AsyncAnthropic]:
    """An ``AsyncAnthropic`` on the emulator's Anthropic routes, through the recorder."""
    http = anthropic.DefaultAsyncHttpxClient(transport=recorder)
    async with anthropic.AsyncAnthropic(
        base_url=emu.anthropic_base_url, api_key="sk-ant-test-SECRET", http_client=http
    ) as sdk:
        yield sdk
