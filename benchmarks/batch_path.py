"""The batch path at 5,000 and 50,000 ops in one round: every phase should grow with the ops.

Run: ``.venv/bin/python benchmarks/batch_path.py [--sizes 5000 50000] [--repeats 3]
[--time-scale X]``.

One round of N distinct structured requests goes through ``BatchRunner`` against the
emulator (in its own process, as a user would run it, so its work is not ours).
Each size runs in a fresh child process, so its peak memory is its own; the sizes
are run ``--repeats`` times, interleaved (small, large, large, small, ...), and each
figure is the median of its runs. Printed per phase, at each size, and the ratio
of the largest size to the smallest (the goal is at most 1.1 × the ratio of the
sizes: 11× for 10× ops):

- build: the N ``structured(...)`` requests (bodies and keys);
- journal: the journal's writes and lookups (pending shards, the shard's intent and
  lines, its custom ids);
- jsonl: planning the shards and writing the input file;
- upload, create: the files and batches calls (the upload carries the whole file);
- collect: downloading the output and error files, parsing and matching the lines;
- decode: each op's decoder over its answer (the engine's work, with the collector
  paused as the engine does; timed again after the run, over the stored answers
  each beside its op, since the engine does it inside ``run_all``);
- store write: storing the answers and closing the shard (one transaction).

Waiting for the server (the batch running, the pauses between polls) is no phase,
and no work counts in two phases: a phase timed inside another (the shards planned
inside the journal's claim, the input file written inside the upload) counts only
as itself (see ``inert._runners._batch._phases``).
Beside them, the time the cyclic garbage collector took during the build and during
``run_all`` (wall time, from ``gc.callbacks``) and how much of it went to full
collections: those traverse every object of the process, the libraries' own from
their import included, so where they fall shows in a phase's growth.
Peak memory is the child's peak RSS (``VmHWM``) less its RSS before building the
requests, per op; beside it, the bytes of the bodies (canonical JSON) and of the
answers (stored JSON) per op, and what is left per op above them (the goal at the
largest size is 2.5 KB).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import openai
import pydantic

from inert import BatchRunner, Request, Store
from inert._gc import paused_gc
from inert.openai import structured
from inert.testing import op_of

PHASES: Final = (
    "build",
    "journal",
    "jsonl",
    "upload",
    "create",
    "collect",
    "decode",
    "store write",
)
GROWTH_SLACK: Final = 1.1
"""A phase may grow at most this many times faster than the ops (11× for 10×)."""
OVERHEAD_GOAL_KB: Final = 2.5
"""Peak RSS per op above the bodies and the answers, at the largest size."""


class Synonyms(pydantic.BaseModel):
    """A small answer like the workload's: a list of words and a score."""

    words: list[str]
    confidence: float


def build(n: int) -> list[Request[Synonyms]]:
    """``n`` distinct structured requests, as synthesis code builds them."""
    return [
        structured(
            model="gpt-4o-mini",
            messages=[
                {
                    "role": "user",
                    "content": f"Give synonyms for sense {i % 7} of the word number {i}, "
                    "as used in everyday English, with a confidence from 0 to 1.",
                }
            ],
            response_format=Synonyms,
            max_completion_tokens=200,
        )
        for i in range(n)
    ]


class CollectorClock:
    """Time the cyclic garbage collector takes while this clock is installed.

    Installed in ``gc.callbacks`` around the build and around ``run_all``: full
    (oldest-generation) collections traverse every object of the process, the
    libraries' own from their import included, so where they fall (none at 5,000
    requests, two at 50,000) shows in a phase's growth; printed beside it.
    """

    def __init__(self) -> None:
        self.seconds = 0.0
        self.full_seconds = 0.0
        self.full = 0
        self._started = 0.0

    def __call__(self, phase: str, info: Mapping[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            return
        took = time.perf_counter() - self._started
        self.seconds += took
        if info["generation"] == 2:
            self.full += 1
            self.full_seconds += took

    def __enter__(self) -> CollectorClock:
        gc.callbacks.append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self)

    def figures(self) -> dict[str, float]:
        return {"seconds": self.seconds, "full_seconds": self.full_seconds, "full": self.full}


def _status_kb(field: str) -> float:
    """A ``/proc/self/status`` memory figure (``VmRSS``, ``VmHWM``), in KB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return float(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


async def measure(n: int, base_url: str, folder: Path) -> dict[str, Any]:
    """One round of ``n`` requests through a new BatchRunner; its figures."""
    gc.collect()
    rss_start = _status_kb("VmRSS")
    started, cpu = time.perf_counter(), time.thread_time()
    with CollectorClock() as build_gc:
        requests = build(n)
    build_seconds, build_cpu = time.perf_counter() - started, time.thread_time() - cpu
    async with openai.AsyncOpenAI(base_url=base_url, api_key="bench") as client:
        with Store(folder / f"store-{n}.sqlite3") as store:
            runner = BatchRunner(
                client, store=store, poll_interval=0.05, poll_interval_max=0.2, progress=False
            )
            started = time.perf_counter()
            cpu = time.process_time()
            with CollectorClock() as run_gc:
                results = await runner.run_all(requests)
            run_seconds = time.perf_counter() - started
            run_cpu = time.process_time() - cpu
            peak_kb = _status_kb("VmHWM")
            assert n == len(results) == runner.report.ops_paid
            ops = [op_of(r) for r in requests]
            stored = store.get_responses([op.key for op in ops])
    body_bytes = sum(len(op.canonical_body().encode()) for op in ops)
    texts = {
        key: json.dumps(raw, ensure_ascii=False, separators=(",", ":"))
        for key, raw in stored.items()
    }
    answer_bytes = sum(len(text.encode()) for text in texts.values())
    decoded = 0
    # Each op beside its answer first: looking 50,000 keys up in a dict of 50,000 is
    # this script's work, not the decoder's (the engine hands each op its outcome).
    pairs = [(op.decode, stored[op.key]) for op in ops]
    started, cpu = time.perf_counter(), time.thread_time()
    with paused_gc():  # as the engine decodes: with the collector paused
        for decode, raw in pairs:
            decoded += decode(raw) is not None
    decode_seconds, decode_cpu = time.perf_counter() - started, time.thread_time() - cpu
    assert n == decoded
    seconds = {"build": build_seconds, "decode": decode_seconds, **runner._phases.seconds}
    cpu_seconds = {"build": build_cpu, "decode": decode_cpu, **runner._phases.cpu_seconds}
    return {
        "n": n,
        "seconds": {phase: seconds[phase] for phase in PHASES},
        "cpu_seconds": {phase: cpu_seconds[phase] for phase in PHASES},
        "run_seconds": run_seconds,
        "run_cpu_seconds": run_cpu,
        "build_gc": build_gc.figures(),
        "run_gc": run_gc.figures(),
        "peak_above_start_kb": peak_kb - rss_start,
        "body_bytes": body_bytes,
        "answer_bytes": answer_bytes,
    }


def per_op_kb(figures: Mapping[str, Any]) -> dict[str, float]:
    """Peak RSS, body and answer sizes per op, and what is left above the two, in KB."""
    n = figures["n"]
    peak = figures["peak_above_start_kb"] / n
    body = figures["body_bytes"] / 1024 / n
    answer = figures["answer_bytes"] / 1024 / n
    return {"peak": peak, "body": body, "answer": answer, "overhead": peak - body - answer}


def median_run(samples: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """One size's figures: the median of each over its repeated runs."""
    first = samples[0]

    def med(get: Callable[[Mapping[str, Any]], float]) -> float:
        return statistics.median(get(s) for s in samples)

    return {
        "n": first["n"],
        "repeats": len(samples),
        "seconds": {p: statistics.median(s["seconds"][p] for s in samples) for p in PHASES},
        "cpu_seconds": {p: statistics.median(s["cpu_seconds"][p] for s in samples) for p in PHASES},
        "run_seconds": med(lambda s: s["run_seconds"]),
        "run_cpu_seconds": med(lambda s: s["run_cpu_seconds"]),
        **{
            part: {
                key: statistics.median(s[part][key] for s in samples)
                for key in ("seconds", "full_seconds", "full")
            }
            for part in ("build_gc", "run_gc")
            if all(part in s for s in samples)
        },
        "peak_above_start_kb": med(lambda s: s["peak_above_start_kb"]),
        "body_bytes": first["body_bytes"],
        "answer_bytes": first["answer_bytes"],
    }


def report(runs: Sequence[Mapping[str, Any]]) -> tuple[str, bool]:
    """The printed table, and whether every goal was met."""
    small, large = runs[0], runs[-1]
    factor = large["n"] / small["n"]
    limit = GROWTH_SLACK * factor
    head = "phase       " + "".join(f"{r['n']:>18,} ops" for r in runs)
    repeats = min(r.get("repeats", 1) for r in runs)
    lines = [
        "batch path: one round of structured requests through BatchRunner on the emulator",
        "CPU time of this process per phase (wall time in brackets; the goal is judged on CPU,",
        "this process's own work, since the emulator and other programs share the machine);",
        f"medians of {repeats} run(s) per size, the sizes interleaved",
        head + f"   CPU ratio (goal <= {limit:.0f}x)   wall ratio",
    ]
    met = True
    for phase in PHASES:
        cpu = [r["cpu_seconds"][phase] for r in runs]
        wall = [r["seconds"][phase] for r in runs]
        ratio = cpu[-1] / cpu[0] if cpu[0] > 0 else float("inf")
        wall_ratio = wall[-1] / wall[0] if wall[0] > 0 else float("inf")
        ok = ratio <= limit
        met &= ok
        cells = "".join(
            f"{c * 1000:>8.1f} ms [{w * 1000:>7.0f}]" for c, w in zip(cpu, wall, strict=True)
        )
        lines.append(
            f"{phase:<12}{cells}   {ratio:6.2f}x{'' if ok else ' (over)'}   {wall_ratio:6.2f}x"
        )
    cells = "".join(f"{r['run_seconds']:>14.2f} s" for r in runs)
    lines.append(f"{'run_all wall':<12}{cells}   (waiting for the server included)")
    cells = "".join(f"{r['run_cpu_seconds']:>14.2f} s" for r in runs)
    lines.append(f"{'run_all CPU':<12}{cells}")
    for part, label in (("build_gc", "build"), ("run_gc", "run_all")):
        if not all(part in r for r in runs):
            continue
        cells = "; ".join(
            f"{r['n']:,} ops {r[part]['seconds'] * 1000:.0f} ms, of it "
            f"{r[part]['full_seconds'] * 1000:.0f} ms in {r[part]['full']:.0f} full"
            for r in runs
        )
        lines.append(f"collector in {label} (wall): {cells}")
    if all("build_gc" in r for r in runs):
        rest = [r["cpu_seconds"]["build"] - r["build_gc"]["full_seconds"] for r in runs]
        if rest[0] > 0:
            lines.append(
                f"build less its full collections: {rest[-1] / rest[0]:.2f}x for "
                f"{factor:.0f}x requests (for reading only: the goal is judged on the build row)"
            )
    for r in runs:
        kb = per_op_kb(r)
        lines.append(
            f"memory at {r['n']:,} ops: peak RSS {r['peak_above_start_kb'] / 1024:.1f} MB above "
            f"the start = {kb['peak']:.2f} KB/op; bodies {kb['body']:.2f} KB/op, answers "
            f"{kb['answer']:.2f} KB/op; above them {kb['overhead']:.2f} KB/op"
        )
    overhead = per_op_kb(large)["overhead"]
    ok = overhead <= OVERHEAD_GOAL_KB
    met &= ok
    lines.append(
        f"overhead at {large['n']:,} ops: {overhead:.2f} KB/op (goal <= {OVERHEAD_GOAL_KB} KB/op)"
        + ("" if ok else "  (over)")
    )
    lines.append("all goals met" if met else "some goals NOT met")
    return "\n".join(lines), met


def _child(n: int, base_url: str) -> int:
    with tempfile.TemporaryDirectory() as folder:
        figures = asyncio.run(measure(n, base_url, Path(folder)))
    print(json.dumps(figures))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: start the emulator, measure each size in a child process, print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[5_000, 50_000])
    parser.add_argument("--repeats", type=int, default=3, help="runs per size (median)")
    parser.add_argument("--time-scale", type=float, default=0.05, help="of the emulator")
    parser.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--base-url", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is not None:
        return _child(args.child, args.base_url)
    sizes = sorted(args.sizes)
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "inert.emulator",
            "--port",
            "0",
            "--time-scale",
            str(args.time_scale),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        base_url = server.stdout.readline().rsplit(" ", 1)[-1].strip()
        samples: dict[int, list[dict[str, Any]]] = {n: [] for n in sizes}
        for rep in range(max(1, args.repeats)):
            for n in sizes if rep % 2 == 0 else reversed(sizes):
                done = subprocess.run(
                    [sys.executable, __file__, "--child", str(n), "--base-url", base_url],
                    capture_output=True,
                    text=True,
                    check=False,
                )
                if done.returncode != 0:
                    print(done.stdout + done.stderr, file=sys.stderr)
                    return 1
                samples[n].append(json.loads(done.stdout.strip().splitlines()[-1]))
    finally:
        server.terminate()
        server.wait(timeout=10)
    text, _ = report([median_run(samples[n]) for n in sizes])
    print(text)  # the verdict is printed; the status says only whether it ran
    return 0


if __name__ == "__main__":
    sys.exit(main())
