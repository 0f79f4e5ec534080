"""Immediate mode at the rate limit: ImmediateRunner against the emulator's RPM and TPM limits.

Run: ``.venv/bin/python benchmarks/rate_limits.py [--requests N] [--rpm R] [--tpm T] ...``.

The emulator runs in its own process with per-model limits (``--rpm``, ``--tpm``)
and a short rate window (``--rate-window``, 2 s by default): OpenAI's limits are
per minute and refill continuously, and its bucket holds a minute's worth; here
the rates are the same but the bucket holds only ``window`` seconds' worth, so the
start-up burst a full bucket allows is small and what is measured is the pace a
client keeps. The headers still state the limits per minute, as OpenAI's do.

N chat requests of mixed sizes (prompts of about 10, 100 and 500 tokens,
``max_tokens`` of 50, 200 and 500) go through three contenders, one after another
(with a pause that refills the buckets between them), each at concurrency 64:

- ``inert (learns limits)``: ``ImmediateRunner(client)``, nothing configured;
- ``raw SDK + semaphore``: ``client.chat.completions.create`` under an
  ``asyncio.Semaphore``, with the SDK's own retries (2, honouring Retry-After);
- ``inert with fixed rpm``: ``ImmediateRunner(client, requests_per_minute=RPM,
  learn_limits=False)``, the limit a user would copy from the dashboard.

For each: wall time, the sustained pace (requests and tokens per second between
the 10th and the 90th percentile of answers, tokens as the emulator counts them
for TPM) against the binding limit, 429 answers seen on the wire, and requests
answered. Goals for the learning runner: sustained pace >= 95% of the binding
limit, fewer than 1% of calls answered 429, every request answered.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Final

import httpx2
import openai
from openai.types.chat import ChatCompletionMessageParam
from returns.result import Failure

from inert import ImmediateRunner, Request
from inert.emulator import RateLimits
from inert.openai import chat

MODEL: Final = "gpt-4o-mini"
CONCURRENCY: Final = 64
PROMPT_WORDS: Final = (10, 100, 500)
MAX_TOKENS: Final = (50, 200, 500)


def workload(n: int) -> list[dict[str, Any]]:
    """N request bodies of mixed sizes (deterministic)."""
    rng = random.Random(18)
    bodies = []
    for i in range(n):
        words = rng.choice(PROMPT_WORDS)
        text = f"request {i}: " + " ".join("word" for _ in range(words))
        bodies.append(
            {
                "model": MODEL,
                "messages": [{"role": "user", "content": text}],
                "max_tokens": rng.choice(MAX_TOKENS),
            }
        )
    return bodies


class Wire:
    """Counts the answers on the wire by status, through an httpx event hook."""

    def __init__(self) -> None:
        self.statuses: dict[int, int] = {}

    async def hook(self, response: httpx2.Response) -> None:
        self.statuses[response.status_code] = self.statuses.get(response.status_code, 0) + 1

    def client(self, base_url: str, *, max_retries: int = 2) -> openai.AsyncOpenAI:
        http = openai.DefaultAsyncHttpxClient(event_hooks={"response": [self.hook]})
        return openai.AsyncOpenAI(
            base_url=base_url, api_key="bench", http_client=http, max_retries=max_retries
        )


Done = list[tuple[float, int]]
"""(time answered, tokens the emulator counts for it) of every request answered."""


async def run_inert(
    base_url: str, wire: Wire, bodies: Sequence[dict[str, Any]], **settings: Any
) -> tuple[Done, int]:
    """The bodies through an ImmediateRunner; (answers, failures)."""
    done: Done = []

    def request(body: dict[str, Any]) -> Request[str]:
        messages: list[ChatCompletionMessageParam] = body["messages"]
        tokens = RateLimits.count_tokens("/v1/chat/completions", body)
        return chat(model=MODEL, messages=messages, max_tokens=body["max_tokens"]).map(
            lambda text: _mark(done, tokens, text)
        )

    async with wire.client(base_url) as client:
        runner = ImmediateRunner(client, max_concurrency=CONCURRENCY, **settings)
        results = await runner.run_all_settled([request(b) for b in bodies])
    return done, sum(1 for r in results if isinstance(r, Failure))


def _mark(done: Done, tokens: int, text: str) -> str:
    done.append((time.perf_counter(), tokens))
    return text


async def run_raw(base_url: str, wire: Wire, bodies: Sequence[dict[str, Any]]) -> tuple[Done, int]:
    """The bodies through ``chat.completions.create`` under a semaphore; (answers, failures)."""
    done: Done = []
    semaphore = asyncio.Semaphore(CONCURRENCY)
    failures = 0

    async with wire.client(base_url) as client:

        async def one(body: dict[str, Any]) -> None:
            nonlocal failures
            async with semaphore:
                try:
                    await client.chat.completions.create(
                        model=MODEL, messages=body["messages"], max_tokens=body["max_tokens"]
                    )
                except openai.APIError:
                    failures += 1
                    return
            done.append(
                (time.perf_counter(), RateLimits.count_tokens("/v1/chat/completions", body))
            )

        await asyncio.gather(*(one(b) for b in bodies))
    return done, failures


def sustained(done: Done) -> tuple[float, float]:
    """Requests and tokens per second between the 10th and 90th percentile of answers."""
    times = sorted(done)
    if len(times) < 10:
        return 0.0, 0.0
    low, high = len(times) // 10, len(times) * 9 // 10
    span = times[high][0] - times[low][0]
    if span <= 0:
        return 0.0, 0.0
    tokens = sum(t for _, t in times[low + 1 : high + 1])
    return (high - low) / span, tokens / span


Contender = Callable[[str, Wire, Sequence[dict[str, Any]]], Awaitable[tuple[Done, int]]]


def report(
    name: str,
    wall: float,
    done: Done,
    failures: int,
    wire: Wire,
    n: int,
    rpm: float,
    tpm: float,
) -> str:
    """One line of figures for one contender."""
    requests_per_s, tokens_per_s = sustained(done)
    request_share, token_share = requests_per_s / (rpm / 60), tokens_per_s / (tpm / 60)
    binding = "tokens" if token_share >= request_share else "requests"
    share = max(request_share, token_share)
    refused = wire.statuses.get(429, 0)
    return (
        f"{name}: wall {wall:.1f} s, sustained {requests_per_s:.1f} req/s and "
        f"{tokens_per_s:,.0f} tokens/s ({100 * share:.1f}% of the binding limit: {binding}), "
        f"429s {refused} ({100 * refused / n:.2f}% of calls), "
        f"answered {len(done)}/{n}, failed {failures}"
    )


async def contend(
    base_url: str, bodies: list[dict[str, Any]], args: argparse.Namespace
) -> list[str]:
    """Run the three contenders one after another; their report lines."""
    contenders: list[tuple[str, Contender]] = [
        ("inert (learns limits)", lambda u, w, b: run_inert(u, w, b)),
        ("raw SDK + semaphore", run_raw),
        (
            f"inert with fixed rpm={args.rpm:g}",
            lambda u, w, b: run_inert(u, w, b, requests_per_minute=args.rpm, learn_limits=False),
        ),
    ]
    lines = []
    for name, contender in contenders:
        await asyncio.sleep(args.rate_window * 1.5)  # full buckets for everyone
        wire = Wire()
        started = time.perf_counter()
        done, failures = await contender(base_url, wire, bodies)
        wall = time.perf_counter() - started
        line = report(name, wall, done, failures, wire, len(bodies), args.rpm, args.tpm)
        print(line, flush=True)
        lines.append(line)
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    """Start the emulator with limits, run the contenders, print their figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=5000, help="requests (default 5000)")
    parser.add_argument("--rpm", type=float, default=6000, help="requests per minute")
    parser.add_argument("--tpm", type=float, default=2_400_000, help="tokens per minute")
    parser.add_argument("--rate-window", type=float, default=2.0, help="bucket, in seconds")
    parser.add_argument("--latency-ms", type=float, default=50.0, help="emulator latency")
    args = parser.parse_args(argv)
    bodies = workload(args.requests)
    average = sum(RateLimits.count_tokens("/v1/chat/completions", b) for b in bodies) / len(bodies)
    print(
        f"rate limits: {args.requests} requests of {average:.0f} tokens on average, RPM "
        f"{args.rpm:,.0f}, TPM {args.tpm:,.0f}, rate window {args.rate_window:g} s, latency "
        f"{args.latency_ms:g} ms, concurrency {CONCURRENCY}",
        flush=True,
    )
    command = [
        sys.executable, "-m", "inert.emulator", "--port", "0",
        "--rpm", f"{args.rpm:g}", "--tpm", f"{args.tpm:g}",
        "--rate-window", f"{args.rate_window:g}", "--latency-ms", f"{args.latency_ms:g}",
    ]  # fmt: skip
    server = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        base_url = server.stdout.readline().rsplit(" ", 1)[-1].strip()
        asyncio.run(contend(base_url, bodies, args))
    finally:
        server.terminate()
        server.wait(timeout=10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
