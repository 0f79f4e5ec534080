"""Calls paid twice when several runs share one store: two processes, two runners, two run_all.

Run: ``.venv/bin/python benchmarks/paid_twice.py [--requests 6] [--offsets 0 0.5 1.5]``.

Each scenario runs the same two-round requests (the second call of each depends on
the first one's answer: ``--requests 6`` is 12 calls) twice on one fresh store, the
second run started ``offset`` seconds after the first:

- processes: two child processes (this file with ``--child``);
- two runners: two ``BatchRunner`` on the same ``Store`` object in one event loop;
- one runner, two run_all: two concurrent ``run_all`` on one ``BatchRunner``.

They talk to the emulator (in this process) through the real openai SDK, over a
network on which each batch input upload and each batch create takes
``--network-delay`` seconds (as a large input file does): the window in which a
shard is journaled but its batch is not at the server yet is where runs collide.
After both runs every batch at the server is run to its end (``Emulator.settle``),
then the ledger is read. Printed per scenario and offset:

- calls: the distinct calls the requests need (asked once without batches first);
- billed: calls the settled ledger billed; paid twice: billings beyond the first;
- answers lost: requests of either run that ended without the right answer.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
from collections.abc import Generator, Sequence
from pathlib import Path
from typing import Any, Final

import attrs
import httpx2
import openai
import pydantic
from returns.result import Success

from inert import BatchRunner, ImmediateRunner, Request, Store, program
from inert.emulator import Emulator
from inert.openai import structured

SCENARIOS: Final = ("processes", "two runners", "one runner, two run_all")
OFFSETS: Final = (0.0, 0.5, 1.5)
TIME_SCALE: Final = 0.5
"""The emulator's pace: a batch takes about 0.55 s."""
NETWORK_DELAY: Final = 0.4
ROOT: Final = Path(__file__).resolve().parents[1]


class Words(pydantic.BaseModel):
    """A small structured answer."""

    words: list[str]


def ask(prompt: str) -> Request[Words]:
    """One structured request with a single user message."""
    return structured(
        model="gpt-4o-mini", messages=[{"role": "user", "content": prompt}], response_format=Words
    )


@program
def two_rounds(i: int) -> Generator[Request[object], Any, list[str]]:
    """A first call, then a second one whose prompt carries the first one's answer."""
    first = yield from ask(f"paid twice {i}: name three colours")
    second = yield from ask(f"paid twice {i}: a word for each of {' '.join(first.words)}")
    return second.words


def requests(n: int) -> list[Request[list[str]]]:
    """The ``n`` two-round requests (``2 n`` calls) of every run."""
    return [two_rounds(i) for i in range(n)]


class SlowNetwork(httpx2.AsyncBaseTransport):
    """Holds each file upload and each batch create ``delay`` seconds before sending it."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.inner = httpx2.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        if request.method == "POST" and request.url.path in ("/v1/files", "/v1/batches"):
            await asyncio.sleep(self.delay)
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


def client(base_url: str, delay: float) -> openai.AsyncOpenAI:
    """An SDK client (default retries) over the slow network."""
    return openai.AsyncOpenAI(
        base_url=base_url,
        api_key="sk-bench",
        http_client=httpx2.AsyncClient(transport=SlowNetwork(delay)),
    )


def runner(sdk: openai.AsyncOpenAI, store: Store) -> BatchRunner:
    """A batch runner that polls fast and shows nothing (default lease)."""
    return BatchRunner(sdk, store=store, poll_interval=0.02, poll_interval_max=0.05, progress=False)


Answers = list[list[str] | None]
"""One run's answers in request order; None where the request ended in an error."""


async def one_run(batch: BatchRunner, n: int) -> Answers:
    """Run the requests; a run that raises (not per request) loses every answer."""
    try:
        settled = await batch.run_all_settled(requests(n))
    except Exception:  # a run that dies loses its answers: that is the figure
        return [None] * n
    return [r.unwrap() if isinstance(r, Success) else None for r in settled]


async def after(delay: float, batch: BatchRunner, n: int) -> Answers:
    """:func:`one_run`, started ``delay`` seconds from now."""
    await asyncio.sleep(delay)
    return await one_run(batch, n)


async def child_main(base_url: str, store_path: str, n: int, delay: float) -> None:
    """One run in a child process; prints its answers as JSON."""
    async with client(base_url, delay) as sdk:
        try:
            with Store(store_path) as store:
                answers = await one_run(runner(sdk, store), n)
        except Exception:  # a store that refuses the run: every answer lost
            answers = [None] * n
    print(json.dumps(answers))


def start_child(base_url: str, store_path: Path, n: int, delay: float) -> subprocess.Popen[str]:
    """Start one run in a child process."""
    return subprocess.Popen(
        [sys.executable, __file__, "--child", base_url, str(store_path), str(n), str(delay)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def child_answers(child: subprocess.Popen[str], n: int) -> Answers:
    """What a child printed; a child that crashed lost every answer."""
    out, _ = child.communicate(timeout=600)
    lines = out.splitlines()
    if child.returncode != 0 or not lines:
        return [None] * n
    answers: Answers = json.loads(lines[-1])
    return answers


@attrs.frozen
class Row:
    """One scenario at one offset."""

    scenario: str
    offset: float
    calls: int
    billed: int
    paid_twice: int
    answers_lost: int


async def both_runs(
    scenario: str, offset: float, emu: Emulator, store_path: Path, n: int, delay: float
) -> list[Answers]:
    """The two runs of ``scenario``, the second started ``offset`` seconds after the first."""
    if scenario == "processes":
        first = start_child(emu.base_url, store_path, n, delay)
        await asyncio.sleep(offset)
        second = start_child(emu.base_url, store_path, n, delay)
        return list(
            await asyncio.gather(
                asyncio.to_thread(child_answers, first, n),
                asyncio.to_thread(child_answers, second, n),
            )
        )
    async with client(emu.base_url, delay) as sdk:
        with Store(store_path) as store:
            one = runner(sdk, store)
            other = one if scenario == "one runner, two run_all" else runner(sdk, store)
            return list(await asyncio.gather(one_run(one, n), after(offset, other, n)))


async def measure(
    scenario: str,
    offset: float,
    emu: Emulator,
    workdir: Path,
    *,
    n: int,
    delay: float,
    scale: float = TIME_SCALE,
) -> Row:
    """Run ``scenario`` at ``offset`` on a fresh store and read the settled ledger."""
    emu.reset()
    async with openai.AsyncOpenAI(base_url=emu.base_url, api_key="sk-bench") as direct:
        truth = await ImmediateRunner(direct).run_all(requests(n))
    calls = len(emu.ledger.counts())
    emu.reset()
    emu.set_time_scale(scale)
    store_path = Path(tempfile.mkdtemp(dir=workdir)) / "store.sqlite3"
    runs = await both_runs(scenario, offset, emu, store_path, n, delay)
    emu.settle()  # every batch at the server runs to its end before the ledger is read
    counts = emu.ledger.counts()
    lost = sum(got != want for answers in runs for got, want in zip(answers, truth, strict=True))
    return Row(
        scenario,
        offset,
        calls,
        sum(counts.values()),
        sum(times - 1 for times in counts.values() if times > 1),
        lost,
    )


def report(rows: Sequence[Row], *, n: int, delay: float) -> str:
    """The table of calls needed, billed, paid twice and answers lost."""
    lines = [
        f"paid twice: {n} two-round requests ({2 * n} calls) per run, two runs per store, "
        f"uploads and creates {delay:g} s each, batches {1.1 * TIME_SCALE:.2f} s",
        f"{'scenario':<26}{'offset':>8}{'calls':>7}{'billed':>8}{'paid twice':>12}"
        f"{'answers lost':>14}",
    ]
    lines += [
        f"{r.scenario:<26}{r.offset:>7g}s{r.calls:>7}{r.billed:>8}{r.paid_twice:>12}"
        f"{r.answers_lost:>14}"
        for r in rows
    ]
    by = {s: "/".join(str(r.paid_twice) for r in rows if r.scenario == s) for s in SCENARIOS}
    lines.append("paid twice by offset: " + "; ".join(f"{s} {v}" for s, v in by.items() if v))
    return "\n".join(lines)


async def run(
    scenarios: Sequence[str], offsets: Sequence[float], *, n: int, delay: float
) -> list[Row]:
    """Every scenario at every offset, each on a fresh store, on one emulator."""
    rows: list[Row] = []
    with (
        tempfile.TemporaryDirectory() as tmp,
        Emulator(time_scale=TIME_SCALE, seed=0) as emu,
    ):
        for scenario in scenarios:
            for offset in offsets:
                rows.append(await measure(scenario, offset, emu, Path(tmp), n=n, delay=delay))
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=6, help="two-round requests per run")
    parser.add_argument("--offsets", type=float, nargs="+", default=list(OFFSETS))
    parser.add_argument("--scenarios", nargs="+", choices=SCENARIOS, default=list(SCENARIOS))
    parser.add_argument("--network-delay", type=float, default=NETWORK_DELAY)
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        base_url, store_path, n, delay = args.child
        asyncio.run(child_main(base_url, store_path, int(n), float(delay)))
        return 0
    rows = asyncio.run(run(args.scenarios, args.offsets, n=args.requests, delay=args.network_delay))
    print(report(rows, n=args.requests, delay=args.network_delay))
    return 0


if __name__ == "__main__":
    sys.exit(main())
