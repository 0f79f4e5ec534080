"""A dead, hung or drip-feeding server ends a call in bounded time, with a message that says why.

The hung and drip-feeding servers are real sockets on loopback. Each test bounds
its own wait far above the runner's documented bound (so a slow machine cannot
fail it) and far below what the server would hold the call for without it.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Awaitable, Callable

import openai
import pytest

from inert import ImmediateRunner, Request
from inert.emulator import Emulator
from inert.errors import ApiError, ConnectionFailedError
from inert.openai import chat

MODEL = "gpt-4o-mini"
SAFETY_NET = 30.0
"""Seconds after which a test fails instead of hanging (the bounds under test are ~1 s)."""


def _hello() -> Request[str]:
    return chat(model=MODEL, messages=[{"role": "user", "content": "hello"}])


def _quick(sdk: openai.AsyncOpenAI, *, timeout: float) -> ImmediateRunner:
    return ImmediateRunner(sdk, timeout=timeout, backoff_base=0.01, backoff_max=0.02)


Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@contextlib.asynccontextmanager
async def _serving(handler: Handler) -> AsyncIterator[str]:
    """A raw TCP server on loopback running ``handler``; yields its base URL."""
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        server.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(server.wait_closed(), 1.0)


async def _never_answers(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Accept, read whatever comes, never write a byte."""
    with contextlib.suppress(Exception):
        while await reader.read(65536):
            pass
    writer.close()


async def _drip_feeds(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Answer headers at once, then one byte of body every 50 ms for a minute."""
    with contextlib.suppress(Exception):
        await reader.readuntil(b"\r\n\r\n")
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2000\r\n\r\n"
        )
        for _ in range(1200):
            writer.write(b" ")
            await writer.drain()
            await asyncio.sleep(0.05)
    writer.close()


def _closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_a_refused_connection_fails_fast_naming_the_url_and_attempts() -> None:
    """Nothing listening: three quick attempts, then an error with the URL and the count."""
    port = _closed_port()
    async with openai.AsyncOpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="k") as sdk:
        runner = _quick(sdk, timeout=5.0)
        async with asyncio.timeout(SAFETY_NET):
            with pytest.raises(ConnectionFailedError) as caught:
                await runner.run(_hello())
    message = caught.value.message
    assert f"could not connect to http://127.0.0.1:{port}/v1/chat/completions" in message
    assert "after 3 attempts in" in message
    assert 2 == runner.report.retries


async def test_a_server_that_never_answers_fails_within_two_deadlines() -> None:
    """A socket that accepts and stays silent: two attempts of one deadline each, then an error."""
    async with (
        _serving(_never_answers) as base_url,
        openai.AsyncOpenAI(base_url=base_url, api_key="k") as sdk,
    ):
        runner = _quick(sdk, timeout=0.3)
        async with asyncio.timeout(SAFETY_NET):
            with pytest.raises(ConnectionFailedError) as caught:
                await runner.run(_hello())
    message = caught.value.message
    assert f"{base_url}/chat/completions" in message
    assert "0.3 s" in message
    assert "after 2 attempts in" in message


async def test_a_drip_feeding_server_cannot_stretch_the_deadline_of_an_attempt() -> None:
    """A byte every 50 ms never trips a read timeout; the attempt's own deadline still ends it."""
    async with (
        _serving(_drip_feeds) as base_url,
        openai.AsyncOpenAI(base_url=base_url, api_key="k") as sdk,
    ):
        runner = _quick(sdk, timeout=0.5)
        # Without a per-attempt deadline this call would last the whole minute of drip.
        async with asyncio.timeout(SAFETY_NET):
            with pytest.raises(ConnectionFailedError) as caught:
                await runner.run(_hello())
    assert "within the 0.5 s deadline" in caught.value.message
    assert "after 2 attempts in" in caught.value.message


async def test_a_base_url_without_v1_gets_a_hint_on_404(emulator: Emulator) -> None:
    """The emulator's root instead of its /v1: the 404 says how to fix the base URL."""
    async with openai.AsyncOpenAI(base_url=emulator.url, api_key="k") as sdk:
        with pytest.raises(ApiError) as caught:
            await ImmediateRunner(sdk).run(_hello())
    assert 404 == caught.value.status
    assert f"try base_url='{emulator.url}/v1'" in caught.value.message


async def test_messages_never_carry_credentials_from_the_base_url() -> None:
    """A base URL with user:password@ is shown without them."""
    port = _closed_port()
    base_url = f"http://user:s3cret@127.0.0.1:{port}/v1"
    async with openai.AsyncOpenAI(base_url=base_url, api_key="k") as sdk:
        with pytest.raises(ConnectionFailedError) as caught:
            await _quick(sdk, timeout=1.0).run(_hello())
    assert "s3cret" not in caught.value.message
    assert f"127.0.0.1:{port}/v1/chat/completions" in caught.value.message
