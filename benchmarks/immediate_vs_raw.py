"""ImmediateRunner against raw ``AsyncOpenAI`` + ``asyncio.Semaphore`` + ``gather``.

Both send the same N structured chat requests to the emulator (fixed added
latency) at the same concurrency, in the same process, alternating which goes
first, for several repetitions. Each side's time includes building its requests
(inert's builders, or the SDK's own transform inside ``parse``) and decoding the
answers into the pydantic model. Prints the median wall-time and CPU-time ratios
(ImmediateRunner / raw); the goal is a wall ratio of at most 0.6.

Then one more inert run under ``cProfile`` (this thread only: the emulator serves from
its own thread): the share of the profile's CPU time spent in inert's own functions
(``inert`` outside ``inert.emulator``), against the SDK's HTTP stack, asyncio and
pydantic; the goal is at most 5%.

    .venv/bin/python benchmarks/immediate_vs_raw.py --n 1000 --concurrency 64 --latency-ms 20
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import statistics
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Final

import openai
from pydantic import BaseModel

import inert
from inert import ImmediateRunner
from inert.emulator import Emulator
from inert.openai import structured

MODEL = "gpt-4o-mini"
WALL_GOAL: Final = 0.6
"""ImmediateRunner's wall time, at most, as a fraction of the raw SDK loop's."""
OWN_SHARE_GOAL: Final = 5.0
"""Per cent of the inert run's CPU profile, at most, in inert's own functions."""
_PACKAGE: Final = str(Path(inert.__path__[0]).resolve())
_EMULATOR: Final = str(Path(_PACKAGE) / "emulator")


class Synonyms(BaseModel):
    """A small structured answer, like the workload's."""

    words: list[str]


def _prompt(i: int, rep: int) -> str:
    # A fresh prompt per repetition: nothing is answered from memory.
    return f"Synonyms of word {i} (repetition {rep})."


async def run_inert(client: openai.AsyncOpenAI, n: int, concurrency: int, rep: int) -> int:
    """Build N structured requests and run them with ImmediateRunner."""
    requests = [
        structured(
            model=MODEL,
            messages=[{"role": "user", "content": _prompt(i, rep)}],
            response_format=Synonyms,
        )
        for i in range(n)
    ]
    results = await ImmediateRunner(client, max_concurrency=concurrency).run_all(requests)
    return len(results)


async def run_raw(client: openai.AsyncOpenAI, n: int, concurrency: int, rep: int) -> int:
    """The same requests through ``client.chat.completions.parse`` under a semaphore."""
    semaphore = asyncio.Semaphore(concurrency)

    async def one(i: int) -> Synonyms:
        async with semaphore:
            completion = await client.chat.completions.parse(
                model=MODEL,
                messages=[{"role": "user", "content": _prompt(i, rep)}],
                response_format=Synonyms,
            )
        parsed = completion.choices[0].message.parsed
        assert parsed is not None
        return parsed

    results = await asyncio.gather(*(one(i) for i in range(n)))
    return len(results)


Contender = Callable[[openai.AsyncOpenAI, int, int, int], Awaitable[int]]


async def measure(
    contender: Contender, client: openai.AsyncOpenAI, n: int, concurrency: int, rep: int
) -> tuple[float, float]:
    """Wall and process-CPU seconds of one run (the emulator's thread shares the CPU)."""
    wall, cpu = time.perf_counter(), time.process_time()
    done = await contender(client, n, concurrency, rep)
    assert done == n
    return time.perf_counter() - wall, time.process_time() - cpu


async def _alternate(
    client: openai.AsyncOpenAI, n: int, concurrency: int, repetitions: int
) -> tuple[list[float], list[float]]:
    """Warm up, then run both contenders per repetition, alternating who goes first."""
    await run_raw(client, min(n, 100), concurrency, -1)  # warm the pool and caches
    await run_inert(client, min(n, 100), concurrency, -2)
    walls: list[float] = []
    cpus: list[float] = []
    for rep in range(repetitions):
        order: list[tuple[str, Contender]] = [("inert", run_inert), ("raw", run_raw)]
        if rep % 2:
            order.reverse()
        figures: dict[str, tuple[float, float]] = {}
        for name, contender in order:
            figures[name] = await measure(contender, client, n, concurrency, rep)
        (iw, ic), (rw, rc) = figures["inert"], figures["raw"]
        walls.append(iw / rw)
        cpus.append(ic / rc)
        print(
            f"rep {rep}: inert {iw:.3f}s wall {ic:.3f}s cpu | "
            f"raw {rw:.3f}s wall {rc:.3f}s cpu | ratio wall {iw / rw:.3f} cpu {ic / rc:.3f}"
        )
    return walls, cpus


def own_share(stats: pstats.Stats) -> float:
    """Per cent of the profile's own time (tottime) spent in inert's functions."""
    total = own = 0.0
    for (filename, _, _), row in stats.stats.items():  # type: ignore[attr-defined]  # pyright: ignore[reportAttributeAccessIssue]  # pstats keeps its table untyped
        tottime = row[2]
        total += tottime
        where = str(Path(filename).resolve()) if filename.startswith("/") else filename
        if where.startswith(_PACKAGE) and not where.startswith(_EMULATOR):
            own += tottime
    return 100.0 * own / total if total else 0.0


async def _profiled(client: openai.AsyncOpenAI, n: int, concurrency: int) -> float:
    """One more inert run under cProfile; the share of its CPU in inert's functions."""
    profile = cProfile.Profile()
    profile.enable()
    try:
        await run_inert(client, n, concurrency, -3)
    finally:
        profile.disable()
    return own_share(pstats.Stats(profile))


async def main(n: int, concurrency: int, latency_ms: float, repetitions: int) -> None:
    """Warm up, then alternate the two contenders and print the ratios."""
    async with Emulator(latency_ms=latency_ms, seed=1) as emulator:
        client = openai.AsyncOpenAI(base_url=emulator.base_url, api_key="bench")
        walls, cpus = await _alternate(client, n, concurrency, repetitions)
        share = await _profiled(client, n, concurrency)
        await client.close()
    wall_ratio, cpu_ratio = statistics.median(walls), statistics.median(cpus)
    verdict = "meets" if wall_ratio <= WALL_GOAL else "misses"
    print(
        f"median over {repetitions} repetitions of N={n}, concurrency {concurrency}, "
        f"latency {latency_ms} ms: wall ratio {wall_ratio:.3f} ({verdict} the {WALL_GOAL} goal), "
        f"CPU ratio {cpu_ratio:.3f}"
    )
    verdict = "meets" if share <= OWN_SHARE_GOAL else "misses"
    print(
        f"inert's own functions: {share:.1f}% of the inert run's CPU profile "
        f"({verdict} the {OWN_SHARE_GOAL:.0f}% goal; the rest is the SDK's HTTP stack, "
        "asyncio and pydantic)"
    )


def _parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--n", type=int, default=1000, help="requests per run (default 1000)")
    parser.add_argument("--concurrency", type=int, default=64, help="in flight at once")
    parser.add_argument("--latency-ms", type=float, default=20.0, help="emulator latency")
    parser.add_argument("--repetitions", type=int, default=4, help="runs of each contender")
    return parser.parse_args()


if __name__ == "__main__":
    args = _parse()
    asyncio.run(main(args.n, args.concurrency, args.latency_ms, args.repetitions))
