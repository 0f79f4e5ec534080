"""The batch progress display: what it prints, line for line, on a plain console.

Unit-level: the display's console writes into a string (not a terminal, so rich
draws no live rows, and what is left is exactly the log lines and the final line
of each batch).
"""

from __future__ import annotations

import io
import re
from typing import Any, cast

import pytest
from openai.types import Batch
from openai.types.batch_request_counts import BatchRequestCounts
from rich.console import Console

from inert._runners._batch import _progress
from inert._runners._batch._progress import QUIET, ProgressView
from inert._store import ShardRecord


@pytest.fixture
def screen(monkeypatch: pytest.MonkeyPatch) -> io.StringIO:
    """What the display prints."""
    out = io.StringIO()
    console = Console(file=out, width=300, force_terminal=False, highlight=False)
    monkeypatch.setattr(_progress, "stderr_console", lambda: console)
    return out


class Record:
    """The journal row fields the display reads."""

    def __init__(self, size: int) -> None:
        self.size = size


def printed(screen: io.StringIO) -> list[str]:
    """The lines printed (rich ends a display that drew nothing live with blank lines)."""
    return [line for line in screen.getvalue().splitlines() if line]


def record(size: int) -> ShardRecord:
    return cast("ShardRecord", Record(size))


def batch(batch_id: str, status: str, counts: tuple[int, int, int] | None) -> Batch:
    fields: dict[str, Any] = {"id": batch_id, "status": status}
    fields["request_counts"] = (
        None
        if counts is None
        else BatchRequestCounts(completed=counts[0], failed=counts[1], total=counts[2])
    )
    return Batch.model_construct(**fields)


SECONDS = r"\d+\.\ds"


def test_each_batch_ends_with_one_line_of_its_last_state(screen: io.StringIO) -> None:
    with ProgressView(True, round_number=2) as view:
        view.show(record(10), batch("batch_a", "in_progress", (1, 0, 10)))
        view.show(record(5), batch("batch_b", "validating", None))
        view.show(record(10), batch("batch_a", "completed", (1200, 34, 1500)))
        view.log("batch batch_c re-attached")
    lines = printed(screen)
    assert "batch batch_c re-attached" == lines[0]
    assert re.fullmatch(
        f"round 2 · batch 1 · batch_a: completed, 1,234/1,500 lines, 34 failed, {SECONDS}", lines[1]
    ), lines[1]
    assert re.fullmatch(
        f"round 2 · batch 2 · batch_b: validating, 0/5 lines, 0 failed, {SECONDS}", lines[2]
    ), lines[2]
    assert 3 == len(lines)


def test_without_a_round_the_rows_name_only_the_batch(screen: io.StringIO) -> None:
    with ProgressView(True) as view:
        view.show(record(3), batch("batch_z", "failed", (0, 3, 3)))
    (line,) = printed(screen)
    assert re.fullmatch(f"batch 1 · batch_z: failed, 3/3 lines, 3 failed, {SECONDS}", line), line


def test_a_disabled_display_prints_nothing(screen: io.StringIO) -> None:
    with ProgressView(False, round_number=1) as view:
        view.show(record(3), batch("batch_z", "completed", (3, 0, 3)))
        view.log("a line")
    with QUIET as quiet:
        quiet.log("quiet")
    assert "" == screen.getvalue()


def test_only_one_live_display_shows_at_a_time(screen: io.StringIO) -> None:
    with ProgressView(True, round_number=1) as first:
        with ProgressView(True, round_number=2) as second:
            second.show(record(1), batch("batch_2", "completed", (1, 0, 1)))
            second.log("from the second")
        first.show(record(1), batch("batch_1", "completed", (1, 0, 1)))
        first.log("from the first")
    lines = printed(screen)
    assert "from the first" == lines[0]
    assert lines[1].startswith("round 1 · batch 1 · batch_1: completed, 1/1 lines")
    assert 2 == len(lines)
    with ProgressView(True, round_number=3) as third:  # the slot is free again
        third.log("third")
    assert "third" == printed(screen)[-1]


def test_rows_count_lines_done_of_the_batch_total(screen: io.StringIO) -> None:
    with ProgressView(True, round_number=1) as view:
        view.show(record(4), batch("b", "in_progress", (2, 1, 4)))
        progress = view._progress
        assert progress is not None
        (task,) = progress.tasks
        assert (3, 4, "in_progress", 1) == (
            task.completed,
            task.total,
            task.fields["status"],
            task.fields["failed"],
        )
        assert "round 1 · batch 1 · b" == task.description
        view.show(record(4), batch("b", "completed", (4, 0, 0)))
        assert (4, 4, "completed", 0) == (
            task.completed,
            task.total,
            task.fields["status"],
            task.fields["failed"],
        )
        view.show(record(7), batch("c", "validating", None))
        assert (0, 7) == (progress.tasks[1].completed, progress.tasks[1].total)
        view.show(record(0), batch("d", "validating", (0, 0, 0)))
        assert (0, None) == (progress.tasks[2].completed, progress.tasks[2].total)
        assert "round 1 · batch 3 · d" == progress.tasks[2].description


@pytest.fixture
def terminal(monkeypatch: pytest.MonkeyPatch) -> Console:
    """A narrow colour terminal the display draws on (recorded, not shown)."""
    console = Console(
        file=io.StringIO(),
        width=60,
        force_terminal=True,
        color_system="truecolor",
        highlight=False,
        record=True,
    )
    monkeypatch.setattr(_progress, "stderr_console", lambda: console)
    return console


def test_a_row_shows_the_batch_its_status_lines_and_failures(terminal: Console) -> None:
    with ProgressView(True, round_number=1) as view:
        view.show(record(7), batch("b", "validating", None))
        view.show(record(7), batch("b", "in_progress", (2, 1, 9)))
        progress = view._progress
        assert progress is not None
        assert 9 == progress.tasks[0].total
        with terminal.capture() as captured:
            terminal.print(progress.get_renderable())
        row = captured.get()
    assert "round 1 · batch 1 · b" in row
    assert "in_progress" in row
    assert "3/9" in row
    assert "failed 1" in row


def test_log_and_final_lines_are_plain_and_never_wrapped(terminal: Console) -> None:
    long = "batch batch_x re-attached " + "x" * 100
    with ProgressView(True, round_number=12) as view:
        view.log(long)
        view.show(record(1234), batch("batch_" + "y" * 60, "completed", (1234, 0, 1234)))
    styled = terminal.export_text(styles=True, clear=False).splitlines()
    text = terminal.export_text().splitlines()
    assert long in text
    finals = [
        i for i, line in enumerate(text) if ": completed, 1,234/1,234 lines, 0 failed, " in line
    ]
    assert 1 == len(finals)
    final = text[finals[0]]
    assert final.startswith("round 12 · batch 1 · batch_" + "y" * 60)
    seconds = float(final.rsplit(", ", 1)[1].removesuffix("s"))
    assert 0 <= seconds < 60
    # plain: with highlighting, escape codes would split the numbers and ids
    assert any(long in line for line in styled)
    assert any(final.split(": ", 1)[1].rsplit(", ", 1)[0] in line for line in styled)
    assert any("round 12 · batch 1 · batch_" + "y" * 60 + ": completed" in line for line in styled)


def test_a_row_holds_exactly_its_columns_in_order(screen: io.StringIO) -> None:
    """Label, status padded to 11, bar, done/total, failures, elapsed time: nothing else."""
    with ProgressView(True, round_number=1) as view:
        view.show(record(9), batch("b", "validating", (2, 1, 9)))
        progress = view._progress
        assert progress is not None
        plain = Console(file=io.StringIO(), width=100, force_terminal=False, color_system=None)
        with plain.capture() as captured:
            plain.print(progress.make_tasks_table(progress.tasks))
    row = captured.get().rstrip("\n")
    assert re.fullmatch(r"round 1 · batch 1 · b validating  ━+ +3/9 failed 1 \d:\d\d:\d\d", row), (
        row
    )


def test_a_log_line_is_printed_without_highlighting(terminal: Console) -> None:
    message = "42 lines of batch_7 resubmitted: 'x' 1.5 True"
    with ProgressView(True, round_number=1) as view:
        view.log(message)
    styled = terminal.export_text(styles=True, clear=False)
    assert message in styled.splitlines() or f"\r\x1b[2K{message}" in styled
    assert message in terminal.export_text()
