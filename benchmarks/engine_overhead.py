"""Engine overhead: building and running requests vs the least work a dedup engine must do.

Run: ``.venv/bin/python benchmarks/engine_overhead.py [--quick] [--instructions]``.

Four shapes, each at several sizes (1k to 100k ops):

* ``wide``: one ``traverse`` of N distinct calls (one round);
* ``wide_list``: the same N calls built into a list first by the caller, then
  ``gather_all`` (the collector runs while the caller builds them);
* ``deep``: a chain of N ``.then``s, each call built from the previous answer (N rounds);
* ``lexicon``: ``lexicon.synthesize_entry`` for as many words as make N calls
  (three rounds, structured outputs decoded into pydantic models).

Every side calls the same in-memory ``answer(body)`` (no I/O) and decodes every
answer; inert runs them through ``FakeRunner`` (round by round, like the batch
runner). Two baselines for the generic shapes:

* the *floor*, the least work any engine that dedups calls by key must do per
  op: build the body, its canonical JSON (sorted keys, compact, by the standard
  library's C encoder called directly, as inert calls it) and the sha256 of it,
  one dict lookup of the key, the answer and its decode;
* the *loop*: the same calls with no key at all (the old comparison; it says
  what dedup costs, not what inert adds).

The lexicon's baseline is the hand-written loop with a dict of answers (and the
same loop with the SDK's body transform). The time of each side is CPU time of
this process (the machine is shared, CPU time is less noisy than wall time);
samples are interleaved and the median is reported. The ratio to the floor is the
median of the ratios of the pairs (each repetition runs inert and the floor one
right after the other), with the lowest and the highest pair shown beside it.

``--instructions`` counts instructions per op instead (wide and deep; callgrind,
each side alone in a fresh interpreter at two sizes, the difference of the counts
over the difference of ops): the same figures on a quiet or a loaded machine.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import math
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import attrs
from openai._utils import maybe_transform
from openai.types.chat.completion_create_params import CompletionCreateParamsNonStreaming
from pydantic import BaseModel

if __package__ in (None, ""):  # run as a script: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._generic import (
    deep_baseline,
    deep_floor,
    deep_requests,
    generic_respond,
    wide_baseline,
    wide_floor,
    wide_list_requests,
    wide_requests,
)

from benchmarks import _fakeapi
from inert import Request
from inert.testing import FakeRunner
from lexicon import (
    Antonyms,
    Definition,
    Entry,
    Examples,
    Lexicon,
    MeaningClusters,
    Pronunciation,
    RegisterDomain,
    SampleWord,
    Synonyms,
    SynthesizedDefinition,
    UsageNotes,
    WordFacts,
    WordForms,
    entry_requests,
)
from lexicon.connector import format_definitions, load_templates, render
from lexicon.pipeline import sources_of

SHAPES: Final = ("wide", "wide_list", "deep", "lexicon")
FLOOR_SHAPES: Final = ("wide", "wide_list", "deep")
"""The shapes measured against the floor (the lexicon has its own baselines)."""
FLOOR_GOAL: Final = 2.0
"""inert's time on the generic shapes, at most this many times the floor."""
FULL_SIZES: Final = (1_000, 3_000, 10_000, 30_000, 100_000)
QUICK_SIZES: Final = (1_000, 3_000)
LEXICON_SIZES: Final = (1_000, 3_000, 10_000, 100_000)
TABLE_SIZES: Final = (10_000, 100_000)
"""The sizes shown in the summary table (when measured)."""
OPS_PER_WORD: Final = 31
"""Calls a lexicon word asks for with the canned answers: 3 + 4 definitions + 4 × 6."""


# --- the lexicon shape -----------------------------------------------------------------


def lexicon_requests(words: Sequence[SampleWord]) -> list[Request[Entry]]:
    """One ``synthesize_entry`` request per word."""
    return entry_requests(Lexicon(), words)


def lexicon_baseline(
    words: Sequence[SampleWord], *, model: str = "gpt-4o-mini", sdk_transform: bool = False
) -> list[Entry]:
    """The lexicon pipeline written as a plain loop around the API, with a dict of answers.

    It builds the very bodies inert sends (same templates, same strict
    ``response_format``), so it makes the same distinct calls. With
    ``sdk_transform`` each body also goes through the SDK's ``maybe_transform``, as
    ``client.chat.completions.create`` does on every call (inert's ``structured``
    does the same once, when it builds the request).
    """
    templates = load_templates()
    answers: dict[tuple[str, str], Any] = {}

    def ask(name: str, response_model: type[BaseModel], **values: str) -> Any:
        prompt = render(templates[name], **values)
        found = answers.get((name, prompt))
        if found is None:
            body: Mapping[str, Any] = {
                "model": model,
                "stream": False,
                "messages": [{"role": "user", "content": prompt}],
                "response_format": _fakeapi.response_format(response_model),
            }
            if sdk_transform:
                transformed = maybe_transform(body, CompletionCreateParamsNonStreaming)
                if not isinstance(transformed, Mapping):  # pragma: no cover - a dict in, a dict out
                    raise TypeError("the SDK's transform did not return a mapping")
                body = transformed
            found = _fakeapi.decode_content(_fakeapi.answer(body), response_model)
            answers[(name, prompt)] = found
        return found

    entries: list[Entry] = []
    for sample in words:
        word, provider = sample.word, sample.definitions
        found: MeaningClusters = ask(
            "clusters",
            MeaningClusters,
            word=word,
            definitions=format_definitions(provider, numbered=True),
        )
        pronunciation: Pronunciation = ask("pronunciation", Pronunciation, word=word)
        facts: WordFacts = ask("facts", WordFacts, word=word)
        definitions: list[Definition] = []
        for cluster in found.clusters:
            pos = cluster.part_of_speech
            sources = format_definitions(sources_of(cluster, provider), numbered=False)
            defined: SynthesizedDefinition = ask(
                "define",
                SynthesizedDefinition,
                word=word,
                part_of_speech=pos,
                gloss=cluster.gloss,
                sources=sources,
            )
            text = defined.text
            sense = {"word": word, "part_of_speech": pos, "definition": text}
            synonyms: Synonyms = ask("synonyms", Synonyms, **sense)
            antonyms: Antonyms = ask("antonyms", Antonyms, **sense)
            examples: Examples = ask("examples", Examples, **sense)
            notes: UsageNotes = ask("usage_notes", UsageNotes, **sense)
            register: RegisterDomain = ask("register_domain", RegisterDomain, definition=text)
            forms: WordForms = ask("word_forms", WordForms, word=word, part_of_speech=pos)
            definitions.append(
                Definition(
                    cluster=cluster,
                    text=text,
                    synonyms=tuple(synonyms.synonyms),
                    antonyms=tuple(antonyms.antonyms),
                    examples=tuple(examples.sentences),
                    usage_notes=tuple(notes.notes),
                    usage_register=register.usage_register,
                    domain=register.domain,
                    word_forms=tuple(forms.forms),
                )
            )
        entries.append(
            Entry(
                word=word,
                pronunciation=pronunciation,
                facts=facts,
                definitions=tuple(definitions),
            )
        )
    return entries


# --- measuring -------------------------------------------------------------------------


@attrs.frozen
class Run:
    """One timed run of one side."""

    seconds: float
    build_seconds: float
    results: list[Any]
    ops_requested: int
    ops_sent: int
    rounds: int


def words_for(n: int) -> list[SampleWord]:
    """Enough lexicon words for about ``n`` calls."""
    return _fakeapi.words(max(1, round(n / OPS_PER_WORD)))


def run_inert(shape: str, n: int, loop: asyncio.Runner) -> Run:
    """Build the requests of ``shape`` for ``n`` ops and run them with a FakeRunner."""
    words = words_for(n) if shape == "lexicon" else []
    gc.collect()
    started = time.process_time()
    requests: Sequence[Request[Any]]
    if shape == "wide":
        requests = wide_requests(n)
        fake = FakeRunner(generic_respond)
    elif shape == "wide_list":
        requests = wide_list_requests(n)
        fake = FakeRunner(generic_respond)
    elif shape == "deep":
        requests = deep_requests(n)
        fake = FakeRunner(generic_respond)
    else:
        requests = lexicon_requests(words)
        fake = FakeRunner(_fakeapi.respond)
    built = time.process_time()
    results = loop.run(fake.run_all(requests))
    finished = time.process_time()
    report = fake.report
    return Run(
        seconds=finished - started,
        build_seconds=built - started,
        results=results,
        ops_requested=report.ops_requested,
        ops_sent=report.ops_sent,
        rounds=report.rounds,
    )


def run_baseline(shape: str, n: int, *, sdk_transform: bool = False, floor: bool = False) -> Run:
    """The hand-written loop of ``shape`` for ``n`` ops, or its ``floor``.

    ``sdk_transform`` is for the lexicon only, ``floor`` for the generic shapes.
    """
    words = words_for(n) if shape == "lexicon" else []
    gc.collect()
    started = time.process_time()
    results: list[Any]
    if shape in ("wide", "wide_list"):
        results = wide_floor(n) if floor else wide_baseline(n)
    elif shape == "deep":
        results = deep_floor(n) if floor else deep_baseline(n)
    else:
        results = lexicon_baseline(words, sdk_transform=sdk_transform)
    finished = time.process_time()
    return Run(finished - started, 0.0, results, 0, 0, 0)


def measure(shape: str, n: int, repeats: int, loop: asyncio.Runner) -> dict[str, Any]:
    """Median inert and baseline times of ``shape`` at size ``n``, interleaved."""
    inert: list[Run] = []
    base: list[Run] = []
    sdk: list[Run] = []
    floor: list[Run] = []
    for rep in range(repeats):
        sides: list[Callable[[], None]] = [
            lambda: inert.append(run_inert(shape, n, loop)),
            lambda: base.append(run_baseline(shape, n)),
        ]
        if shape == "lexicon":
            sides.append(lambda: sdk.append(run_baseline(shape, n, sdk_transform=True)))
        else:
            sides.append(lambda: floor.append(run_baseline(shape, n, floor=True)))
        for side in sides if rep % 2 == 0 else reversed(sides):
            side()
    for other in (base, sdk, floor):
        if other and inert[-1].results != other[-1].results:
            raise AssertionError(f"{shape} at {n}: inert and the baseline disagree")
    ops = inert[-1].ops_requested
    inert_s = statistics.median(r.seconds for r in inert)
    base_s = statistics.median(r.seconds for r in base)
    build_s = statistics.median(r.build_seconds for r in inert)
    sdk_s = statistics.median(r.seconds for r in sdk) if sdk else None
    floor_s = statistics.median(r.seconds for r in floor) if floor else None
    # Each repetition's inert and floor ran one right after the other, so the ratio of
    # a pair shares the machine's state of that moment; the median of the pairs'
    # ratios is steadier under a changing load than the ratio of the two medians.
    pair_ratios = (
        [i.seconds / f.seconds for i, f in zip(inert, floor, strict=True)] if floor else []
    )
    return {
        "shape": shape,
        "size": n,
        "ops_requested": ops,
        "ops_sent": inert[-1].ops_sent,
        "rounds": inert[-1].rounds,
        "repeats": repeats,
        "inert_s": inert_s,
        "baseline_s": base_s,
        "inert_us_per_op": 1e6 * inert_s / ops,
        "build_us_per_op": 1e6 * build_s / ops,
        "baseline_us_per_op": 1e6 * base_s / ops,
        "ratio": inert_s / base_s,
        "sdk_loop_us_per_op": None if sdk_s is None else 1e6 * sdk_s / ops,
        "ratio_vs_sdk_loop": None if sdk_s is None else inert_s / sdk_s,
        "floor_us_per_op": None if floor_s is None else 1e6 * floor_s / ops,
        "ratio_vs_floor": statistics.median(pair_ratios) if pair_ratios else None,
        "ratio_vs_floor_range": [min(pair_ratios), max(pair_ratios)] if pair_ratios else None,
    }


def slope(sizes: Sequence[float], seconds: Sequence[float]) -> float:
    """Least-squares slope of log(time) against log(size): 1.0 is linear growth."""
    xs = [math.log(s) for s in sizes]
    ys = [math.log(t) for t in seconds]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    num = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
    den = sum((x - mx) ** 2 for x in xs)
    return num / den


def sizes_for(shape: str, *, quick: bool) -> tuple[int, ...]:
    """The sizes measured for ``shape``: the lexicon costs ~0.5 ms per call, so fewer."""
    if quick:
        return QUICK_SIZES
    if shape == "wide_list":
        return TABLE_SIZES
    return LEXICON_SIZES if shape == "lexicon" else FULL_SIZES


def repeats_for(shape: str, n: int, *, quick: bool) -> int:
    """Samples per side: more for small sizes and for the shapes with a goal, one for the
    100k-call lexicon (its SDK loop alone takes a minute)."""
    if quick:
        return 3
    if shape == "lexicon":
        return 1 if n >= 100_000 else 5 if n <= 10_000 else 3
    return 9 if n <= 10_000 else 5


def run(
    *,
    quick: bool = False,
    sizes: Sequence[int] | None = None,
    repeats: int | None = None,
    shapes: Sequence[str] = SHAPES,
) -> dict[str, Any]:
    """Measure every shape at every size; the result is plain JSON.

    Returns:
        ``{"rows": [...one dict per shape and size...], "growth": {shape: {...}}}``;
        each growth entry has the sizes, µs per op at each and the log-log slope of
        inert's and the baseline's times.
    """
    rows: list[dict[str, Any]] = []
    with asyncio.Runner() as loop:
        for shape in shapes:
            chosen = sizes if sizes is not None else sizes_for(shape, quick=quick)
            for n in chosen:
                reps = repeats if repeats is not None else repeats_for(shape, n, quick=quick)
                rows.append(measure(shape, n, reps, loop))
    growth: dict[str, Any] = {}
    for shape in shapes:
        mine = [r for r in rows if r["shape"] == shape]
        growth[shape] = {
            "sizes": [r["ops_requested"] for r in mine],
            "inert_us_per_op": [r["inert_us_per_op"] for r in mine],
            "baseline_us_per_op": [r["baseline_us_per_op"] for r in mine],
            "inert_slope": slope([r["ops_requested"] for r in mine], [r["inert_s"] for r in mine])
            if len(mine) > 1
            else None,
            "baseline_slope": slope(
                [r["ops_requested"] for r in mine], [r["baseline_s"] for r in mine]
            )
            if len(mine) > 1
            else None,
        }
    return {"name": "engine_overhead", "quick": quick, "rows": rows, "growth": growth}


def render_text(result: Mapping[str, Any]) -> str:
    """The result as a plain-text table (``floor range``: the lowest and highest ratio of
    the interleaved pairs, of which ``ratio`` is the median)."""
    lines = [
        f"{'shape':9} {'ops':>8} {'rounds':>7} {'reps':>4} {'inert µs/op':>12} {'build':>7} "
        f"{'floor µs/op':>12} {'ratio':>6} {'floor range':>11} {'loop µs/op':>11} {'ratio':>6} "
        f"{'sdk-loop µs/op':>15} {'ratio':>6}"
    ]
    for r in result["rows"]:
        floor = (
            f"{'-':>12} {'-':>6} {'-':>11}"
            if r["ratio_vs_floor"] is None
            else f"{r['floor_us_per_op']:12.2f} {r['ratio_vs_floor']:6.2f} "
            f"{r['ratio_vs_floor_range'][0]:5.2f}-{r['ratio_vs_floor_range'][1]:<5.2f}"
        )
        lines.append(
            f"{r['shape']:9} {r['ops_requested']:8d} {r['rounds']:7d} {r['repeats']:4d} "
            f"{r['inert_us_per_op']:12.2f} {r['build_us_per_op']:7.2f} {floor} "
            f"{r['baseline_us_per_op']:11.2f} {r['ratio']:6.2f}"
            + (
                ""
                if r["ratio_vs_sdk_loop"] is None
                else f" {r['sdk_loop_us_per_op']:15.2f} {r['ratio_vs_sdk_loop']:6.2f}"
            )
        )
    for shape, g in result["growth"].items():
        if g["inert_slope"] is not None:
            lines.append(
                f"growth {shape}: log-log slope inert {g['inert_slope']:.3f}, "
                f"loop {g['baseline_slope']:.3f} (1.0 = linear)"
            )
    return "\n".join(lines)


# --- instruction counts ----------------------------------------------------------------

INSTRUCTION_SHAPES: Final = ("wide", "deep")
INSTRUCTION_SIZES: Final = (1_000, 3_000)


def count_instructions(side: str, shape: str, n: int) -> int:
    """Instructions of one run of ``benchmarks/_generic.py side shape n`` under callgrind."""
    script = Path(__file__).resolve().parent / "_generic.py"
    done = subprocess.run(
        [
            "valgrind",
            "--tool=callgrind",
            "--callgrind-out-file=/dev/null",
            sys.executable,
            str(script),
            side,
            shape,
            str(n),
        ],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONHASHSEED": "0"},
    )
    found = re.search(r"Collected : (\d+)", done.stderr)
    if found is None:
        raise RuntimeError(f"callgrind printed no instruction count:\n{done.stderr[-2000:]}")
    return int(found.group(1))


def instructions(
    shapes: Sequence[str] = INSTRUCTION_SHAPES, sizes: Sequence[int] = INSTRUCTION_SIZES
) -> dict[str, Any]:
    """Instructions per op of inert and of the floor, independent of the machine's load.

    Each side runs alone in a fresh interpreter at two sizes; the difference of the
    two counts over the difference of ops leaves out the interpreter's start, the
    imports and every other one-off cost. Needs valgrind.
    """
    small, large = sizes
    rows: list[dict[str, Any]] = []
    for shape in shapes:
        per_op: dict[str, float] = {}
        for side in ("inert", "floor"):
            counts = [count_instructions(side, shape, n) for n in (small, large)]
            per_op[side] = (counts[1] - counts[0]) / (large - small)
        rows.append(
            {
                "shape": shape,
                "sizes": [small, large],
                "inert_instructions_per_op": per_op["inert"],
                "floor_instructions_per_op": per_op["floor"],
                "ratio_vs_floor": per_op["inert"] / per_op["floor"],
            }
        )
    return {"name": "engine_overhead_instructions", "rows": rows}


def render_instructions(result: Mapping[str, Any]) -> str:
    """The instruction counts as a plain-text table."""
    lines = [
        f"{'shape':9} {'sizes':>12} {'inert instr/op':>15} {'floor instr/op':>15} {'ratio':>6}"
    ]
    for r in result["rows"]:
        sizes = f"{r['sizes'][0]}..{r['sizes'][1]}"
        lines.append(
            f"{r['shape']:9} {sizes:>12} {r['inert_instructions_per_op']:15,.0f} "
            f"{r['floor_instructions_per_op']:15,.0f} {r['ratio_vs_floor']:6.2f}"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: print the table and the result as one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, fewer repeats")
    parser.add_argument("--sizes", type=int, nargs="+", help="sizes to measure (ops)")
    parser.add_argument("--repeats", type=int, help="samples per side (median)")
    parser.add_argument("--shapes", nargs="+", choices=SHAPES, default=SHAPES, help="shapes to run")
    parser.add_argument(
        "--instructions",
        action="store_true",
        help="count instructions per op instead (callgrind; wide and deep, or --shapes of "
        "them; --sizes takes the two sizes, default 1000 3000)",
    )
    args = parser.parse_args(argv)
    if args.instructions:
        shapes = [s for s in args.shapes if s in INSTRUCTION_SHAPES] or list(INSTRUCTION_SHAPES)
        sizes = args.sizes or INSTRUCTION_SIZES
        if len(sizes) != 2 or sizes[0] >= sizes[1]:
            parser.error("--instructions takes two increasing --sizes")
        if shutil.which("valgrind") is None:
            parser.error("--instructions needs valgrind (apt-get install valgrind)")
        counted = instructions(shapes, sizes)
        print(render_instructions(counted))
        print("RESULT " + json.dumps(counted))
        return 0
    result = run(quick=args.quick, sizes=args.sizes, repeats=args.repeats, shapes=args.shapes)
    print(render_text(result))
    print("RESULT " + json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
