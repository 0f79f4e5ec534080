"""What the many-runs tests share with their child process: two-round requests, a fast runner.

Several runs on one store (two processes, two runners in one process, two
``run_all`` on one runner) ask for the same two-round requests: the second call of
each depends on the first one's answer, so every run needs two batch rounds.

Their clients talk through a :class:`SlowNetwork`: each batch input upload and each
batch create takes a while, as a large input file does over a real network. That
keeps wide open the window in which two runs used to collide: a shard journaled by
one run whose batch does not exist at the server yet.
"""

from __future__ import annotations

import asyncio
from collections.abc import Generator
from typing import Any

import httpx2
import openai

from inert import BatchRunner, Request, Store, program
from inert._runners._batch._lines import MAX_REQUESTS_PER_BATCH

from ._support import ask
from ._transport import LossyTransport

NETWORK_DELAY = 0.4
"""Seconds each batch input upload and each batch create spends on the slow network."""

DEFAULT_LEASE = 60.0
"""``BatchRunner``'s own lease, kept where a test names none."""

REQUESTS = 6
"""Two-round requests per run: 12 calls, each to be billed once however many runs ask."""


@program
def two_rounds(i: int) -> Generator[Request[object], Any, list[str]]:
    """A first call, then a second one whose prompt carries the first one's answer."""
    first = yield from ask(f"many runs {i}: name three colours")
    second = yield from ask(f"many runs {i}: a word for each of {' '.join(first.words)}")
    return second.words


def many_run_requests(n: int = REQUESTS) -> list[Request[list[str]]]:
    """The ``n`` two-round requests every run of a scenario asks for."""
    return [two_rounds(i) for i in range(n)]


def batch_runner(
    client: openai.AsyncOpenAI,
    store: Store,
    *,
    lease: float | None = None,
    max_requests_per_batch: int | None = None,
) -> BatchRunner:
    """A batch runner that polls fast and shows nothing, with ``lease`` seconds if given.

    ``lease`` is the claim a run holds on its shards (#12); ``max_requests_per_batch``
    cuts a round into several shards; ``None`` keeps the default of either.
    """
    return BatchRunner(
        client,
        store=store,
        poll_interval=0.02,
        poll_interval_max=0.05,
        progress=False,
        lease=DEFAULT_LEASE if lease is None else lease,
        max_requests_per_batch=(
            MAX_REQUESTS_PER_BATCH if max_requests_per_batch is None else max_requests_per_batch
        ),
    )


class SlowNetwork(httpx2.AsyncBaseTransport):
    """Holds each file upload ``delay`` and each batch create ``create_delay`` seconds before
    sending it (the event loop runs on meanwhile), and says when an upload has arrived.

    ``inner`` forwards the requests (a :class:`LossyTransport`, whose rules still apply).
    """

    def __init__(
        self,
        delay: float = NETWORK_DELAY,
        *,
        create_delay: float | None = None,
        inner: LossyTransport | None = None,
    ) -> None:
        self.delay = delay
        self.create_delay = delay if create_delay is None else create_delay
        self.inner = LossyTransport() if inner is None else inner
        self.uploaded = asyncio.Event()

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        upload = request.method == "POST" and request.url.path == "/v1/files"
        if upload:
            await asyncio.sleep(self.delay)
        elif request.method == "POST" and request.url.path == "/v1/batches":
            await asyncio.sleep(self.create_delay)
        response = await self.inner.handle_async_request(request)
        if upload:
            self.uploaded.set()
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


def slow_client(base_url: str, network: SlowNetwork | None = None) -> openai.AsyncOpenAI:
    """An SDK client (default retries) on ``base_url`` through ``network`` (a fresh one)."""
    return openai.AsyncOpenAI(
        base_url=base_url,
        api_key="sk-test-SECRET-never-stored",
        http_client=httpx2.AsyncClient(transport=SlowNetwork() if network is None else network),
    )
