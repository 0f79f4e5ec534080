"""Run every benchmark and write ``docs/benchmarks.md``.

Run: ``.venv/bin/python benchmarks/run_all.py [--quick] [--output PATH]``.

The engine benchmarks (``engine_overhead``, ``lexicon_rounds``) are imported and
return their figures. The others (``immediate_vs_raw``, ``batch_jsonl``,
``batch_path``, ``emulator_throughput``) print text: they run as subprocesses, their figures are
read from their output, and their output is kept whole in the report. A benchmark
that is missing or fails is reported as such; the others still run.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import re
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final

if __package__ in (None, ""):  # run as a script: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import batch_path, builder_overhead, engine_overhead, import_time, lexicon_rounds

ROOT: Final = Path(__file__).resolve().parent.parent
BENCHMARKS: Final = ROOT / "benchmarks"
DEFAULT_OUTPUT: Final = ROOT / "docs" / "benchmarks.md"
SUBPROCESS_TIMEOUT: Final = 1800.0

IMMEDIATE_GOAL: Final = 0.6
"""ImmediateRunner's wall time against the raw SDK loop's, at most."""
OWN_SHARE_GOAL: Final = 5.0
"""Per cent of ImmediateRunner's CPU profile in inert's own functions, at most."""
KEPT_BLOCK: Final = re.compile(r"<!-- begin: (\S+).*?-->.*?<!-- end: \1 -->", re.DOTALL)
"""A block of the old report written by another script (``store_throughput``), kept."""
RATE_SHARE_GOAL: Final = 95.0
"""Per cent of the binding rate limit the learning runner must sustain."""
RATE_429_GOAL: Final = 1.0
"""Per cent of calls the learning runner may see answered 429."""
RATE_CONTENDERS: Final = (
    ("inert", r"inert \(learns limits\)"),
    ("raw", r"raw SDK \+ semaphore"),
    ("fixed", r"inert with fixed rpm=[\d.]+"),
)
BATCH_GOAL: Final = 1.5
LINEAR_SLOPE_LIMIT: Final = 1.15
"""A log-log slope of time against size at most this is counted as linear growth."""


# --- subprocess benchmarks -------------------------------------------------------------


def run_script(name: str, args: Sequence[str]) -> dict[str, Any]:
    """Run ``benchmarks/<name>.py`` with ``args``; its output, status and duration."""
    path = BENCHMARKS / f"{name}.py"
    if not path.exists():
        return {"name": name, "args": list(args), "missing": True, "ok": False, "output": ""}
    started = time.perf_counter()
    try:
        done = subprocess.run(
            [sys.executable, str(path), *args],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=SUBPROCESS_TIMEOUT,
            check=False,
        )
        output, ok = done.stdout + done.stderr, done.returncode == 0
    except subprocess.TimeoutExpired as exc:
        output, ok = f"timed out after {exc.timeout} s", False
    return {
        "name": name,
        "args": list(args),
        "missing": False,
        "ok": ok,
        "output": output.strip(),
        "seconds": time.perf_counter() - started,
    }


def _number(pattern: str, text: str) -> float | None:
    found = re.search(pattern, text)
    return float(found.group(1).replace(",", "")) if found else None


def parse_immediate(text: str) -> dict[str, float | None]:
    """The median wall and CPU ratios ``immediate_vs_raw`` prints."""
    return {
        "wall_ratio": _number(r"wall ratio ([\d.]+) \(", text),
        "cpu_ratio": _number(r"CPU ratio ([\d.]+)", text),
        "own_share": _number(r"inert's own functions: ([\d.]+)%", text),
    }


def parse_batch(text: str) -> dict[str, float | None]:
    """Times, ratios and peak memory ``batch_jsonl`` prints."""
    return {
        "requests": _number(r"^([\d,]+) requests", text),
        "write_inert_ms": _number(r"build\+write JSONL : inert\s+([\d.]+) ms", text),
        "write_bare_ms": _number(r"json\.dumps loop\s+([\d.]+) ms", text),
        "write_ratio": _number(r"build\+write JSONL .*?ratio ([\d.]+)x", text),
        "write_peak_mb": _number(r"build\+write JSONL .*?peak ([\d.]+) MB", text),
        "write_peak_bare_mb": _number(r"build\+write JSONL .*?\(bare ([\d.]+) MB\)", text),
        "decode_inert_ms": _number(r"parse\+decode\s+: inert\s+([\d.]+) ms", text),
        "decode_bare_ms": _number(r"model_validate_json\s+([\d.]+) ms", text),
        "decode_ratio": _number(r"parse\+decode .*?ratio ([\d.]+)x", text),
        "decode_envelope_ratio": _number(
            r"against json\.loads of each line \+ model_validate_json: [\d.]+ ms, ratio ([\d.]+)x",
            text,
        ),
        "decode_peak_mb": _number(r"parse\+decode .*?peak ([\d.]+) MB", text),
        "decode_peak_bare_mb": _number(r"parse\+decode .*?\(bare ([\d.]+) MB\)", text),
        "store_ms": _number(r"store answers\s+:\s+([\d.]+) ms", text),
    }


def parse_batch_path(text: str) -> dict[str, Any]:
    """Each phase's CPU growth, its goal, and the memory per op ``batch_path`` prints."""
    ratios = {
        phase: _number(rf"(?m)^{re.escape(phase)} .*\]\s+([\d.]+)x", text)
        for phase in batch_path.PHASES
    }
    sizes = re.search(r"overhead at ([\d,]+) ops: ([\d.-]+) KB/op", text)
    return {
        "ratios": ratios,
        "limit": _number(r"CPU ratio \(goal <= ([\d.]+)x\)", text),
        "largest": float(sizes.group(1).replace(",", "")) if sizes else None,
        "overhead_kb": float(sizes.group(2)) if sizes else None,
        "peak_kb": _number(
            r"(?m)^memory at [\d,]+ ops: .*? = ([\d.]+) KB/op(?![\s\S]*^memory at)", text
        ),
    }


def parse_rate_limits(text: str) -> dict[str, float | None]:
    """Each contender's share of the binding limit, 429 share and answers from ``rate_limits``."""
    figures: dict[str, float | None] = {"requests": _number(r"^rate limits: (\d+) requests", text)}
    for key, name in RATE_CONTENDERS:
        line = rf"(?m)^{name}: .*?"
        figures[f"{key}_share"] = _number(line + r"\(([\d.]+)% of the binding limit", text)
        figures[f"{key}_429_share"] = _number(line + r"429s \d+ \(([\d.]+)% of calls\)", text)
        figures[f"{key}_answered"] = _number(line + r"answered (\d+)/", text)
        figures[f"{key}_wall"] = _number(line + r"wall ([\d.]+) s", text)
    return figures


def parse_throughput(text: str) -> dict[str, float | None]:
    """Start time and requests per second ``emulator_throughput`` prints."""
    return {
        "start_s": _number(r"start .*?: ([\d.]+) s", text),
        "requests_per_s": _number(r"chat completions: ([\d.]+) req/s", text),
        "sdk_requests_per_s": _number(r"through AsyncOpenAI: ([\d.]+) req/s", text),
    }


# --- collecting ------------------------------------------------------------------------


def collect(*, quick: bool, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Run every benchmark; the figures of each, plus the machine and the date."""
    results: dict[str, Any] = {"quick": quick, "started": _now(), "machine": machine()}
    results["load"] = [_load()]
    log("engine_overhead ...")
    results["engine_overhead"] = engine_overhead.run(quick=quick)
    log(engine_overhead.render_text(results["engine_overhead"]))
    log("lexicon_rounds ...")
    results["lexicon_rounds"] = lexicon_rounds.run(quick=quick)
    log(lexicon_rounds.render_text(results["lexicon_rounds"]))
    log("builder_overhead ...")
    results["builder_overhead"] = builder_overhead.run(
        requests=2_000 if quick else 20_000, repeats=3 if quick else 7
    )
    log(builder_overhead.render_text(results["builder_overhead"]))
    log("import_time ...")
    results["import_time"] = import_time.run(repeats=3 if quick else 15)
    log(import_time.render_text(results["import_time"]))

    immediate_sizes = (200,) if quick else (1_000, 5_000)
    repetitions = "2" if quick else "4"
    immediate = []
    for n in immediate_sizes:
        log(f"immediate_vs_raw n={n} ...")
        run = run_script(
            "immediate_vs_raw",
            [
                "--n",
                str(n),
                "--concurrency",
                "64",
                "--latency-ms",
                "20",
                "--repetitions",
                repetitions,
            ],
        )
        run.update(n=n, **parse_immediate(run["output"]))
        log(run["output"])
        immediate.append(run)
    results["immediate_vs_raw"] = immediate

    log("rate_limits ...")
    rate_args = ["--requests", "1000", "--rpm", "3000", "--tpm", "1200000"] if quick else []
    run = run_script("rate_limits", rate_args)
    run.update(parse_rate_limits(run["output"]))
    log(run["output"])
    results["rate_limits"] = run

    batch_sizes = (2_000,) if quick else (1_000, 10_000, 50_000)
    batch = []
    for n in batch_sizes:
        log(f"batch_jsonl requests={n} ...")
        run = run_script("batch_jsonl", ["--requests", str(n), "--repeat", "2" if quick else "5"])
        run.update(n=n, **parse_batch(run["output"]))
        log(run["output"])
        batch.append(run)
    results["batch_jsonl"] = batch

    log("batch_path ...")
    run = run_script("batch_path", ["--sizes", "500", "5000"] if quick else [])
    run.update(parse_batch_path(run["output"]))
    log(run["output"])
    results["batch_path"] = run

    log("emulator_throughput ...")
    run = run_script("emulator_throughput", ["--requests", "300" if quick else "3000"])
    run.update(parse_throughput(run["output"]))
    log(run["output"])
    results["emulator_throughput"] = run
    results["finished"] = _now()
    results["load"].append(_load())
    return results


def _load() -> float | None:
    """The machine's load average over the last minute (other programs share it)."""
    try:
        return os.getloadavg()[0]
    except OSError:  # pragma: no cover - not on this platform
        return None


def _load_line(load: Sequence[float | None] | None) -> list[str]:
    """The header line with the load average at the start and the end of the run."""
    if not load or any(value is None for value in load):
        return []
    shown = " and ".join(f"{value:.1f}" for value in load if value is not None)
    return [f"- load average (1 min) at the start and the end: {shown} on {os.cpu_count()} CPUs"]


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    cpu = platform.processor() or "unknown"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
    }


# --- the report ------------------------------------------------------------------------


def _fmt(value: float | None, spec: str = ".2f", suffix: str = "") -> str:
    return "n/a" if value is None else f"{value:{spec}}{suffix}"


def _verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("yes" if ok else "**no**")


def _slope_of(sizes: Sequence[float], values: Sequence[float | None]) -> float | None:
    pairs = [(s, v) for s, v in zip(sizes, values, strict=True) if v is not None and v > 0]
    if len(pairs) < 2:
        return None
    return engine_overhead.slope([p[0] for p in pairs], [p[1] for p in pairs])


def summary_rows(results: Mapping[str, Any]) -> list[tuple[str, str, str, str]]:
    """``(measure, result, goal, met)`` rows of the summary table."""
    rows: list[tuple[str, str, str, str]] = []
    for run in results["immediate_vs_raw"]:
        label = f"ImmediateRunner / raw AsyncOpenAI + semaphore, {run['n']:,} requests"
        if run["missing"] or not run["ok"]:
            rows.append((label, "did not run", f"wall ≤ {IMMEDIATE_GOAL}", "n/a"))
            continue
        wall, cpu = run["wall_ratio"], run["cpu_ratio"]
        rows.append(
            (
                label,
                f"wall {_fmt(wall, '.3f')}x, CPU {_fmt(cpu, '.3f')}x",
                f"wall ≤ {IMMEDIATE_GOAL}",
                _verdict(None if wall is None else wall <= IMMEDIATE_GOAL),
            )
        )
        share = run.get("own_share")
        rows.append(
            (
                f"ImmediateRunner: inert's own functions in its CPU profile, {run['n']:,} requests",
                _fmt(share, ".1f", "%"),
                f"≤ {OWN_SHARE_GOAL:.0f}%",
                _verdict(None if share is None else share <= OWN_SHARE_GOAL),
            )
        )
    rows += _rate_limit_rows(results.get("rate_limits"))
    for run in results["batch_jsonl"]:
        if run["missing"] or not run["ok"]:
            rows.append((f"BatchRunner JSONL, {run['n']:,} requests", "did not run", "", "n/a"))
            continue
        for what, key in (("build+write", "write"), ("parse+decode", "decode")):
            ratio = run[f"{key}_ratio"]
            rows.append(
                (
                    f"BatchRunner JSONL {what} / bare loop, {run['n']:,} requests",
                    f"{_fmt(ratio)}x (peak {_fmt(run[f'{key}_peak_mb'], '.1f')} MB vs "
                    f"{_fmt(run[f'{key}_peak_bare_mb'], '.1f')} MB)",
                    f"≤ {BATCH_GOAL}x",
                    _verdict(None if ratio is None else ratio <= BATCH_GOAL),
                )
            )
        envelope = run["decode_envelope_ratio"]
        rows.append(
            (
                f"BatchRunner JSONL parse+decode / json.loads of each line + "
                f"model_validate_json, {run['n']:,} requests",
                f"{_fmt(envelope)}x",
                f"≤ {BATCH_GOAL}x (the least any client of the Batch API must do)",
                _verdict(None if envelope is None else envelope <= BATCH_GOAL),
            )
        )
    for row in results["lexicon_rounds"]["rows"]:
        inert, hand = row["inert"], row["hand_written"]
        rows.append(
            (
                f"lexicon pipeline, {row['words']:,} words: rounds",
                f"inert {inert['rounds']} vs hand-written {hand['rounds']:,}",
                "inert = 3",
                _verdict(inert["rounds"] == 3),
            )
        )
        rows.append(
            (
                f"lexicon pipeline, {row['words']:,} words: API calls",
                f"inert {inert['calls_sent']:,} vs hand-written {hand['calls_sent']:,} "
                f"({hand['duplicate_calls']:,} duplicates)",
                "inert sends no duplicate",
                _verdict(inert["calls_sent"] == hand["distinct_calls"]),
            )
        )
    engine = results["engine_overhead"]
    for row in engine["rows"]:
        if row["ratio_vs_floor"] is None or row["size"] not in engine_overhead.TABLE_SIZES:
            continue
        # The goal holds for the sizes the performance goal names: wide at 100k, deep at 10k.
        named = (row["shape"], row["size"]) in (("wide", 100_000), ("deep", 10_000))
        rows.append(
            (
                f"engine / floor (canonical JSON + sha256 key, dict dedup, decode), "
                f"{row['shape']}, {row['ops_requested']:,} ops",
                f"{row['inert_us_per_op']:.2f} µs/op vs floor {row['floor_us_per_op']:.2f} "
                f"µs/op ({row['ratio_vs_floor']:.2f}x)",
                f"≤ {engine_overhead.FLOOR_GOAL}x" if named else "(measured)",
                _verdict(row["ratio_vs_floor"] <= engine_overhead.FLOOR_GOAL) if named else "",
            )
        )
    builder = results["builder_overhead"]
    rows.append(
        (
            f"structured() build + key / body dict + key, {builder['requests']:,} requests",
            f"{builder['inert_us_per_request']:.2f} µs vs {builder['floor_us_per_request']:.2f} "
            f"µs ({builder['ratio']:.2f}x)",
            f"≤ {builder_overhead.GOAL}x",
            _verdict(builder["ratio"] <= builder_overhead.GOAL),
        )
    )
    started = results["import_time"]["seconds"]
    for name, goal in import_time.GOALS.items():
        rows.append(
            (
                f"`{name}` wall time (fresh interpreter)",
                f"{started[name]:.3f} s (python -c pass {started['python -c pass']:.3f} s, "
                f"import openai {started['import openai']:.3f} s)",
                f"≤ {goal} s",
                _verdict(started[name] <= goal),
            )
        )
    for shape in engine_overhead.SHAPES:
        for row in engine["rows"]:
            if row["shape"] != shape or row["size"] not in engine_overhead.TABLE_SIZES:
                continue
            text = (
                f"{row['inert_us_per_op']:.1f} µs/op vs loop {row['baseline_us_per_op']:.2f} "
                f"µs/op ({row['ratio']:.1f}x)"
            )
            if row["ratio_vs_sdk_loop"] is not None:
                text += (
                    f"; vs loop with the SDK's body transform {row['sdk_loop_us_per_op']:.1f} "
                    f"µs/op ({row['ratio_vs_sdk_loop']:.2f}x)"
                )
            rows.append(
                (f"engine overhead, {shape}, {row['ops_requested']:,} ops", text, "(measured)", "")
            )
    for shape, growth in engine["growth"].items():
        s = growth["inert_slope"]
        sizes = growth["sizes"]
        rows.append(
            (
                f"growth, engine {shape}, {sizes[0]:,} to {sizes[-1]:,} ops",
                f"slope {_fmt(s, '.3f')} (loop {_fmt(growth['baseline_slope'], '.3f')})",
                f"linear (slope ≤ {LINEAR_SLOPE_LIMIT})",
                _verdict(None if s is None else s <= LINEAR_SLOPE_LIMIT),
            )
        )
    batch_ok = [r for r in results["batch_jsonl"] if r["ok"]]
    for key, what in (("write_inert_ms", "build+write"), ("decode_inert_ms", "parse+decode")):
        s = _slope_of([r["n"] for r in batch_ok], [r[key] for r in batch_ok])
        if s is not None:
            rows.append(
                (
                    f"growth, batch JSONL {what}, {batch_ok[0]['n']:,} to {batch_ok[-1]['n']:,}",
                    f"slope {s:.3f}",
                    f"linear (slope ≤ {LINEAR_SLOPE_LIMIT})",
                    _verdict(s <= LINEAR_SLOPE_LIMIT),
                )
            )
    rows += _batch_path_rows(results.get("batch_path"))
    throughput = results["emulator_throughput"]
    if throughput["ok"]:
        rows.append(
            (
                "emulator (separate process), chat completions",
                f"{_fmt(throughput['requests_per_s'], '.0f')} req/s from a plain HTTP client "
                f"({_fmt(throughput['sdk_requests_per_s'], '.0f')} req/s through AsyncOpenAI), "
                f"start {_fmt(throughput['start_s'])} s",
                "≥ 500 req/s, start < 2 s",
                _verdict(
                    (throughput["requests_per_s"] or 0) >= 500 and (throughput["start_s"] or 99) < 2
                ),
            )
        )
    return rows


def _batch_path_rows(run: Mapping[str, Any] | None) -> list[tuple[str, str, str, str]]:
    """Rows for ``batch_path``: the worst phase's growth, and the memory per op."""
    if run is None:
        return []
    label = "BatchRunner batch path, one round against the emulator"
    if run["missing"] or not run["ok"]:
        return [(label, "did not run", "", "n/a")]
    ratios = {k: v for k, v in run["ratios"].items() if v is not None}
    limit = run["limit"]
    rows: list[tuple[str, str, str, str]] = []
    if ratios and limit is not None:
        worst = max(ratios, key=lambda k: ratios[k])
        shown = ", ".join(f"{k} {v:.2f}x" for k, v in ratios.items())
        rows.append(
            (
                f"{label}: CPU growth of each phase for 10x ops",
                f"worst {worst} {ratios[worst]:.2f}x ({shown})",
                f"every phase ≤ {limit:g}x",
                _verdict(ratios[worst] <= limit),
            )
        )
    overhead = run.get("overhead_kb")
    largest = run.get("largest")
    rows.append(
        (
            f"{label}: peak RSS per op above bodies and answers, {largest or 0:,.0f} ops",
            f"{_fmt(overhead)} KB/op (peak {_fmt(run.get('peak_kb'))} KB/op in all)",
            "≤ 2.5 KB/op",
            _verdict(None if overhead is None else overhead <= 2.5),
        )
    )
    return rows


def _rate_limit_rows(run: Mapping[str, Any] | None) -> list[tuple[str, str, str, str]]:
    """Rows for ``rate_limits``: the learning runner against its goals, the others measured."""
    if run is None:
        return []
    n = run.get("requests")
    label = f"ImmediateRunner at the emulator's RPM/TPM limits, {n or 0:,.0f} mixed requests"
    if run["missing"] or not run["ok"]:
        return [(label, "did not run", "", "n/a")]
    share, refused, answered = run["inert_share"], run["inert_429_share"], run["inert_answered"]
    met = None
    if share is not None and refused is not None and answered is not None:
        met = share >= RATE_SHARE_GOAL and refused < RATE_429_GOAL and answered == n
    rows = [
        (
            f"{label}: learns the limits",
            f"{_fmt(share, '.1f')}% of the binding limit, {_fmt(refused, '.2f')}% of calls "
            f"answered 429, {_fmt(answered, ',.0f')} answered",
            f"≥ {RATE_SHARE_GOAL:g}%, < {RATE_429_GOAL:g}% 429, every request answered",
            _verdict(met),
        )
    ]
    for key, what in (("raw", "raw SDK loop + semaphore"), ("fixed", "runner with a fixed rpm=")):
        rows.append(
            (
                f"{label}: {what}",
                f"{_fmt(run[f'{key}_share'], '.1f')}% of the binding limit, "
                f"{_fmt(run[f'{key}_429_share'], '.2f')}% of calls answered 429, "
                f"{_fmt(run[f'{key}_answered'], ',.0f')} answered",
                "(measured)",
                "",
            )
        )
    return rows


def kept_blocks(old: str) -> list[str]:
    """The marked blocks of the old report that other scripts write (kept verbatim)."""
    return [found.group(0) for found in KEPT_BLOCK.finditer(old)]


def kept_section(kept: Sequence[str]) -> list[str]:
    """The lines that put the kept blocks back, each after a blank line."""
    out: list[str] = []
    for block in kept:
        out += ["", block]
    return out


def render_markdown(results: Mapping[str, Any], *, command: str, kept: Sequence[str] = ()) -> str:
    """The whole ``docs/benchmarks.md``; ``kept`` blocks go before "How to reproduce"."""
    m = results["machine"]
    out: list[str] = [
        "# Benchmarks",
        "",
        "Generated by `benchmarks/run_all.py`; do not edit by hand. "
        + (
            "**Quick smoke run: sizes are small, figures are indicative only.** "
            if results["quick"]
            else ""
        )
        + "Every ratio compares inert with a baseline measured in the same run, on the same",
        "machine, interleaved (the order alternates between repetitions); the machine is",
        "shared, so absolute times are noisy and ratios are what to read.",
        "",
        f"- date: {results['started']} (finished {results['finished']})",
        f"- machine: {m['nproc']} CPUs ({m['cpu']}), {m['platform']}",
        *_load_line(results.get("load")),
        f"- Python: {m['implementation']} {m['python']}",
        f"- command: `{command}`",
        "",
        "## Summary",
        "",
        "| measure | result | goal | met |",
        "|---|---|---|---|",
    ]
    out += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in summary_rows(results)]
    out += _engine_section(results["engine_overhead"])
    out += _lexicon_section(results["lexicon_rounds"])
    out += _subprocess_section(results)
    out += kept_section(kept)
    out += _reproduce_section()
    return "\n".join(out) + "\n"


def _engine_section(engine: Mapping[str, Any]) -> list[str]:
    out = [
        "",
        "## Engine overhead and growth",
        "",
        "Building and running requests with `FakeRunner` (round mode) against two",
        "baselines that make the same calls to the same in-memory API and decode every",
        "answer (`benchmarks/engine_overhead.py`). The *floor* is the least work any",
        "engine that dedups calls must do per op: build the body, its canonical JSON (the",
        "standard library's C encoder called directly, as inert calls it) and sha256",
        "key, one dict lookup, the answer and its decode. The *loop* computes no key at",
        "all: the old comparison, kept as a second column; most of its ratio is the cost",
        "of a key, which any dedup or cache pays, not of inert.",
        "",
        "`wide` is one `traverse` of N calls (the requests are built inside inert, with",
        "the collector paused); `wide_list` is the same calls built into a list by the",
        "caller first (the collector's passes over 100,000 live requests land in the",
        "caller's code); `deep` is a chain of N `.then`s (N rounds); `lexicon` is",
        "`synthesize_entry` for as many words as make N calls. Times are CPU seconds of",
        "the process, median of the repeats. µs/op is per call requested; *build* is the",
        "part spent building the top-level requests (the lexicon and `deep` build most of",
        "their calls inside the run). Building an op with `Op(...)` checks a body the",
        "user built (C encoder, UTF-8, then a copy of its dicts and lists that checks",
        "their keys and leaves; a body of anything else is parsed back and compared); the",
        "builders of `inert.openai` check their parts once instead (see the `structured()`",
        "row of the summary).",
        "",
        "The lexicon's cost is dominated by `inert.openai.structured`, which runs the",
        "SDK's `maybe_transform` on every body, as `client.chat.completions.create` does",
        "on every call; the *sdk loop* column is the plain loop plus that transform, the",
        "fair baseline for code that would otherwise call the SDK.",
        "",
        "| shape | ops | rounds | repeats | inert µs/op | build µs/op | floor µs/op "
        "| inert / floor | loop µs/op | inert / loop | sdk loop µs/op | inert / sdk loop |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in engine["rows"]:
        out.append(
            f"| {r['shape']} | {r['ops_requested']:,} | {r['rounds']:,} | {r['repeats']} | "
            f"{r['inert_us_per_op']:.2f} | {r['build_us_per_op']:.2f} | "
            f"{_fmt(r.get('floor_us_per_op'))} | {_fmt(r.get('ratio_vs_floor'), '.2f', 'x')} | "
            f"{r['baseline_us_per_op']:.2f} | {r['ratio']:.1f}x | "
            f"{_fmt(r['sdk_loop_us_per_op'])} | "
            f"{_fmt(r['ratio_vs_sdk_loop'], '.2f', 'x')} |"
        )
    out += [
        "",
        "Growth: the slope of log(time) against log(ops); 1.0 is linear.",
        "",
        "| shape | sizes (ops) | inert µs/op at each size | slope inert | slope loop |",
        "|---|---|---|---:|---:|",
    ]
    for shape, g in engine["growth"].items():
        sizes = ", ".join(f"{s:,}" for s in g["sizes"])
        per_op = ", ".join(f"{v:.1f}" for v in g["inert_us_per_op"])
        out.append(
            f"| {shape} | {sizes} | {per_op} | {_fmt(g['inert_slope'], '.3f')} | "
            f"{_fmt(g['baseline_slope'], '.3f')} |"
        )
    return out


def _lexicon_section(lexicon: Mapping[str, Any]) -> list[str]:
    out = [
        "",
        "## Lexicon pipeline: rounds and API calls",
        "",
        "inert runs `synthesize_entry` for every word together (`FakeRunner`, round mode,",
        "as the batch runner schedules). The hand-written pipeline is the usual asyncio",
        "code: async connector methods calling an async client, one `asyncio.gather` per",
        "stage, words awaited one after another; its rounds are the gather stages it",
        "awaits in sequence (the Batch API jobs it would need in a row), and it sends",
        "repeated sub-requests again (word forms of the same word and part of speech).",
        "Both produce equal entries (`benchmarks/lexicon_rounds.py`).",
        "",
        "| words | inert rounds | calls built | deduplicated | sent | per round | "
        "hand-written rounds | sent | duplicates |",
        "|---:|---:|---:|---:|---:|---|---:|---:|---:|",
    ]
    for r in lexicon["rows"]:
        i, h = r["inert"], r["hand_written"]
        sizes = " / ".join(f"{s:,}" for s in i["round_sizes"])
        out.append(
            f"| {r['words']:,} | {i['rounds']} | {i['calls_built']:,} | "
            f"{i['calls_deduplicated']:,} | {i['calls_sent']:,} | {sizes} | {h['rounds']:,} | "
            f"{h['calls_sent']:,} | {h['duplicate_calls']:,} |"
        )
    return out


def _subprocess_section(results: Mapping[str, Any]) -> list[str]:
    out = [
        "",
        "## Runner benchmarks (output of the scripts)",
        "",
        "`benchmarks/immediate_vs_raw.py` (ImmediateRunner against raw `AsyncOpenAI` with a",
        "semaphore, on the emulator with 20 ms added latency, median of alternating",
        "repetitions), `benchmarks/rate_limits.py` (the runner learning the emulator's RPM",
        "and TPM limits, against a raw SDK loop and the runner given only a fixed `rpm=`;",
        "the emulator's buckets hold 2 s of the per-minute rates instead of a minute's,",
        "see the script), `benchmarks/batch_jsonl.py` (the batch runner's JSONL build and",
        "output decode against bare `json.dumps` / `model_validate_json` loops, best of",
        "the repeats, with tracemalloc peaks), `benchmarks/batch_path.py` (one round of",
        "5,000 and of 50,000 requests through the batch runner on the emulator: CPU time",
        "of each phase and its growth, each piece of work counted in one phase only, peak",
        "RSS per op against the bodies and answers)",
        "and `benchmarks/emulator_throughput.py`.",
    ]
    runs = [
        *results["immediate_vs_raw"],
        *([results["rate_limits"]] if "rate_limits" in results else []),
        *results["batch_jsonl"],
        *([results["batch_path"]] if "batch_path" in results else []),
        results["emulator_throughput"],
    ]
    for run in runs:
        args = " ".join(run["args"])
        out += [
            "",
            f"`{run['name']}.py {args}`"
            + (f" ({run['seconds']:.0f} s)" if "seconds" in run else ""),
            "",
        ]
        if run["missing"]:
            out.append("(script not present)")
            continue
        if not run["ok"]:
            out.append("**failed:**")
        out += ["```", run["output"], "```"]
    return out


def _reproduce_section() -> list[str]:
    return [
        "",
        "## How to reproduce",
        "",
        "```sh",
        "uv venv .venv && uv pip install -e '.[dev]'   # or: python -m venv .venv && .venv/bin/pip install -e '.[dev]'",
        ".venv/bin/python benchmarks/run_all.py          # every benchmark, rewrites docs/benchmarks.md (~10 min)",
        ".venv/bin/python benchmarks/run_all.py --quick  # a smoke run with small sizes (~1 min)",
        "```",
        "",
        "Each benchmark also runs alone, with `--help` for its options:",
        "`benchmarks/engine_overhead.py`, `benchmarks/builder_overhead.py`,",
        "`benchmarks/import_time.py`, `benchmarks/lexicon_rounds.py`,",
        "`benchmarks/immediate_vs_raw.py`, `benchmarks/rate_limits.py`,",
        "`benchmarks/batch_jsonl.py`, `benchmarks/batch_path.py`,",
        "`benchmarks/emulator_throughput.py`. Close other programs first: the",
        "ratios are robust to a busy machine, the absolute times are not.",
    ]


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: run everything, write the markdown report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: a fast smoke run")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="markdown to write")
    args = parser.parse_args(argv)
    command = ".venv/bin/python benchmarks/run_all.py" + (" --quick" if args.quick else "")
    results = collect(quick=args.quick)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    old = args.output.read_text(encoding="utf-8") if args.output.exists() else ""
    args.output.write_text(
        render_markdown(results, command=command, kept=kept_blocks(old)), encoding="utf-8"
    )
    print(f"wrote {args.output}")
    failed = [
        r["name"]
        for r in [
            *results["immediate_vs_raw"],
            results["rate_limits"],
            *results["batch_jsonl"],
            results["batch_path"],
            results["emulator_throughput"],
        ]
        if not r["ok"] and not r["missing"]
    ]
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
