"""Smoke test of ``benchmarks/batch_path.py`` at a tiny size: structure and sanity, never timing."""

from __future__ import annotations

from pathlib import Path

from benchmarks import batch_path
from inert.emulator import Emulator


async def test_batch_path_measures_every_phase_and_the_memory_per_op(tmp_path: Path) -> None:
    """One small round yields a time for every phase, sizes of bodies and answers, and a report
    that judges each phase's growth and the memory left above bodies and answers."""
    with Emulator(time_scale=0.02, seed=0) as emu:
        small = await batch_path.measure(20, emu.base_url, tmp_path)
        large = await batch_path.measure(40, emu.base_url, tmp_path)
    assert set(batch_path.PHASES) == set(small["seconds"]) == set(small["cpu_seconds"])
    assert all(seconds > 0 for seconds in small["seconds"].values())
    assert small["body_bytes"] > 20 * 100
    assert small["answer_bytes"] > 20 * 100
    kb = batch_path.per_op_kb(small)
    assert kb["overhead"] == kb["peak"] - kb["body"] - kb["answer"]
    text, _ = batch_path.report([small, large])
    for phase in batch_path.PHASES:
        assert phase in text
    assert "goal <= 2x" in text
    assert "KB/op" in text


def test_run_all_reads_the_batch_path_figures() -> None:
    """run_all finds each phase's CPU ratio, the goal and the memory per op in the printed text."""
    from benchmarks import run_all

    runs = [
        {
            "n": n,
            "seconds": dict.fromkeys(batch_path.PHASES, n / 1000),
            "cpu_seconds": {
                p: n / 1000 * (1.5 if p == "collect" and n > 1_000 else 1.0)
                for p in batch_path.PHASES
            },
            "run_seconds": 1.0,
            "run_cpu_seconds": 1.0,
            "peak_above_start_kb": 4.0 * n,
            "body_bytes": 512 * n,
            "answer_bytes": 512 * n,
        }
        for n in (1_000, 10_000)
    ]
    text, met = batch_path.report(runs)
    figures = run_all.parse_batch_path(text)
    assert 11.0 == figures["limit"]
    assert 15.0 == figures["ratios"]["collect"]
    assert 10.0 == figures["ratios"]["store write"]
    assert (10_000, 3.0, 4.0) == (figures["largest"], figures["overhead_kb"], figures["peak_kb"])
    assert not met
    rows = run_all._batch_path_rows({"missing": False, "ok": True, **figures})
    assert ["**no**", "**no**"] == [row[3] for row in rows]


def test_repeated_runs_are_summed_up_by_their_medians() -> None:
    """Each figure of a size is the median of its runs; the report says how many."""
    samples = [
        {
            "n": 1_000,
            "seconds": dict.fromkeys(batch_path.PHASES, wall),
            "cpu_seconds": dict.fromkeys(batch_path.PHASES, wall / 2),
            "run_seconds": wall * 10,
            "run_cpu_seconds": wall * 5,
            "peak_above_start_kb": 1_000 * wall,
            "body_bytes": 512_000,
            "answer_bytes": 256_000,
        }
        for wall in (3.0, 1.0, 2.0)
    ]
    median = batch_path.median_run(samples)
    assert (1_000, 3) == (median["n"], median["repeats"])
    assert {2.0} == set(median["seconds"].values())
    assert {1.0} == set(median["cpu_seconds"].values())
    assert (20.0, 10.0, 2_000.0) == (
        median["run_seconds"],
        median["run_cpu_seconds"],
        median["peak_above_start_kb"],
    )
    assert (512_000, 256_000) == (median["body_bytes"], median["answer_bytes"])
    text, _ = batch_path.report([median, {**median, "n": 10_000}])
    assert "medians of 3 run(s) per size" in text


def test_the_report_says_the_load_of_the_machine() -> None:
    """run_all's header gives the load average at the start and the end, when known."""
    import os

    from benchmarks import run_all

    assert [
        f"- load average (1 min) at the start and the end: 7.6 and 11.5 on {os.cpu_count()} CPUs"
    ] == run_all._load_line([7.64, 11.49])
    assert [] == run_all._load_line([7.6, None])
    assert [] == run_all._load_line(None)
