"""Fixtures for the immediate runner's tests: one emulator, and a recording client."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator

import httpx2
import openai
import pytest
from pydantic import BaseModel

from inert.emulator import Emulator, Faults

SLOW_MARK = "SLOW"
"""A prompt containing this is held back by :class:`Recorder` for ``slow_seconds``."""


class Synonyms(BaseModel):
    """A small structured answer, like the workload's."""

    words: list[str]


class Recorder(httpx2.AsyncBaseTransport):
    """A transport that records every request body, its timing and the in-flight peak.

    The whole exchange (request and response body) counts as in flight, so the peak
    is what the server saw.
    """

    def __init__(self) -> None:
        self.inner = httpx2.AsyncHTTPTransport()
        self.bodies: list[bytes] = []
        self.spans: list[tuple[bytes, float, float]] = []
        self.answers: list[tuple[float, float, int, float | None]] = []
        """(sent, answered, status, retry-after seconds) of every request that got an answer."""
        self.in_flight = 0
        self.peak = 0
        self.slow_seconds = 0.0
        self._changed = asyncio.Event()

    async def until(self, condition: Callable[[Recorder], bool]) -> None:
        """Wait until ``condition(self)`` holds (checked whenever a request starts or ends)."""
        while not condition(self):
            self._changed.clear()
            await self._changed.wait()

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        body = request.content
        self.bodies.append(body)
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        self._changed.set()
        started = time.perf_counter()
        try:
            if self.slow_seconds and SLOW_MARK.encode() in body:
                await asyncio.sleep(self.slow_seconds)
            response = await self.inner.handle_async_request(request)
            await response.aread()
            wait = response.headers.get("retry-after-ms")
            retry_after = None if wait is None else float(wait) / 1000
            self.answers.append((started, time.perf_counter(), response.status_code, retry_after))
        finally:
            self.in_flight -= 1
            self.spans.append((body, started, time.perf_counter()))
            self._changed.set()
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


@pytest.fixture(scope="session")
def emulator_server() -> Iterator[Emulator]:
    """One emulator for the whole session (tests reset it)."""
    with Emulator(seed=7) as emu:
        yield emu


@pytest.fixture
def emulator(emulator_server: Emulator) -> Emulator:
    """The shared emulator: no faults, latency or rate limits, and an empty ledger."""
    emulator_server.reset()
    emulator_server.set_faults(Faults())
    emulator_server.set_latency_ms(0)
    emulator_server.set_time_scale(1.0)
    emulator_server.set_rate_limits(window=60.0)
    return emulator_server


@pytest.fixture
def recorder() -> Recorder:
    """A fresh recording transport."""
    return Recorder()


@pytest.fixture
async def client(emulator: Emulator, recorder: Recorder) -> AsyncIterator[openai.AsyncOpenAI]:
    """A real ``AsyncOpenAI`` pointed at the emulator, through the recorder."""
    http = openai.DefaultAsyncHttpxClient(transport=recorder)
    async with openai.AsyncOpenAI(
        base_url=emulator.base_url, api_key="test-key", http_client=http
    ) as sdk:
        yield sdk
