"""Emulator start time and chat requests per second from a concurrent AsyncOpenAI client.

Run: ``.venv/bin/python benchmarks/emulator_throughput.py [--requests N] [--concurrency C]``.
The emulator runs in its own process (``python -m inert.emulator --port 0``), as a
user would run it, so client and server do not share one interpreter lock.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import time

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
        rate = asyncio.run(measure(base_url, args.requests, args.concurrency))
    finally:
        server.terminate()
        server.wait(timeout=10)
    print(f"start (new process to first answer): {ready:.2f} s")
    print(
        f"chat completions: {rate:.0f} req/s ({args.requests} requests, concurrency {args.concurrency})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
