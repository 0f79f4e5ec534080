"""Smoke test of ``benchmarks/paid_twice.py`` at a tiny size: what it counts, never how much."""

from __future__ import annotations

from pathlib import Path

from benchmarks import paid_twice
from inert.emulator import Emulator


async def test_one_scenario_counts_calls_billings_and_lost_answers(tmp_path: Path) -> None:
    """Two run_all of two two-round requests need four calls; what was billed beyond the
    first billing of each is paid twice, and no more answers are lost than were asked."""
    with Emulator(seed=0) as emu:
        row = await paid_twice.measure(
            "one runner, two run_all", 0.0, emu, tmp_path, n=2, delay=0.01, scale=0.05
        )
    assert ("one runner, two run_all", 0.0, 4) == (row.scenario, row.offset, row.calls)
    assert 0 <= row.paid_twice <= row.billed
    assert 0 <= row.answers_lost <= 2 * 2


def test_the_report_has_a_row_per_case_and_the_paid_twice_by_offset() -> None:
    """Every scenario and offset gets its row, and the summary lists paid twice per offset."""
    rows = [
        paid_twice.Row(scenario, offset, 12, 12 + extra, extra, lost)
        for scenario, extra, lost in [("processes", 6, 0), ("two runners", 0, 6)]
        for offset in (0.0, 1.5)
    ]
    text = paid_twice.report(rows, n=6, delay=0.4)
    assert "12 calls" in text
    assert "processes 6/6; two runners 0/0" in text
    assert 1 + 1 + len(rows) + 1 == len(text.splitlines())
