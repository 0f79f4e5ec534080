"""The report builder's own counts, exactly (no runner, no emulator)."""

from __future__ import annotations

from inert._report import ReportBuilder


def test_an_op_answered_elsewhere_counts_once_however_late_it_is_noted_again() -> None:
    builder = ReportBuilder(ops_sent=6, cache_hits=0)
    builder.answered_elsewhere(["a", "b"])
    builder.answered_elsewhere(["c"])
    builder.answered_elsewhere(["a", "c", "d"])  # a and c were noted in earlier calls
    report = builder.freeze()
    assert (2, 4) == (report.ops_sent, report.cache_hits)
