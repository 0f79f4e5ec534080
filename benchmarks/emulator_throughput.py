"""Emulator start time and chat requests per second from a concurrent client.

Run: ``.venv/bin/python benchmarks/emulator_throughput.py [--requests N] [--concurrency C]``.
The emulator runs in its own process (``python -m inert.emulator --port 0``), as a
user would run it, so client and server do not share one interpreter lock.

Two clients are measured against the same server: a plain HTTP client (httpx2,
what the server can serve) and the SDK's ``AsyncOpenAI`` (whose response parsing
costs more CPU than the server's answer on this 2-core machine, so it measures the
client as much as the server).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time

import httpx2
import openai


async def measure(base_url: str, requests: int, concurrency: int) -> float:
    """Requests per second for ``requests`` distinct chat calls, ``concurrency`` at a time."""
    gate = asyncio.Semaphore(concurrency)
    async with openai.AsyncOpenAI(base_url=base_url, api_key="bench", max_retries=0) as client:

        async def one(i: int) -> None:
            async with gate:
                await client.chat.completions.create(
                    model="gpt-bench", messages=[{"role": "user", "content": f"question {i}"}]
                )

        await asyncio.gather(*(one(i) for i in range(concurrency)))  # warm the connection pool
        started = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(requests)))
        return requests / (time.perf_counter() - started)


async def measure_http(base_url: str, requests: int, concurrency: int) -> float:
    """Requests per second for distinct chat calls posted by a plain HTTP client."""
    gate = asyncio.Semaphore(concurrency)
    limits = httpx2.Limits(max_connections=concurrency)
    headers = {"Authorization": "Bearer bench", "Content-Type": "application/json"}
    async with httpx2.AsyncClient(base_url=base_url, headers=headers, limits=limits) as client:

        async def one(i: int) -> None:
            async with gate:
                body = json.dumps(
                    {"model": "gpt-bench", "messages": [{"role": "user", "content": f"q {i}"}]}
                )
                response = await client.post("/chat/completions", content=body)
                response.raise_for_status()

        await asyncio.gather(*(one(i) for i in range(concurrency)))  # warm the connection pool
        started = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(requests)))
        return requests / (time.perf_counter() - started)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    started = time.perf_counter()
    server = subprocess.Popen(
        [sys.executable, "-m", "inert.emulator", "--port", "0"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert server.stdout is not None
        base_url = server.stdout.readline().rsplit(" ", 1)[-1].strip()
        with openai.OpenAI(base_url=base_url, api_key="bench", max_retries=5) as client:
            client.chat.completions.create(model="m", messages=[{"role": "user", "content": "up?"}])
        ready = time.perf_counter() - started
        served = asyncio.run(measure_http(base_url, args.requests, args.concurrency))
        rate = asyncio.run(measure(base_url, args.requests, args.concurrency))
    finally:
        server.terminate()
        server.wait(timeout=10)
    print(f"start (new process to first answer): {ready:.2f} s")
    print(
        f"chat completions: {served:.0f} req/s ({args.requests} requests, concurrency "
        f"{args.concurrency}, plain HTTP client)"
    )
    print(f"chat completions through AsyncOpenAI: {rate:.0f} req/s (same requests)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
