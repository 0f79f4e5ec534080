"""The demo on a real terminal (a pty read through a terminal emulator): its live progress."""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from pathlib import Path

from ._terminal import Session, demo_command, run_on_terminal

LIVE = re.compile(
    r"immediate: round (?P<round>\d+) · (?P<done>[\d,]+) of (?P<found>[\d,]+) calls found so far done"
)
FINAL = re.compile(r"immediate: (?P<rounds>\d+) rounds? · (?P<done>[\d,]+) calls done")


def number(text: str) -> int:
    """A figure as displayed (with thousands separators) as an int."""
    return int(text.replace(",", ""))


def live_readings(session: Session) -> list[tuple[int, tuple[int, int, int]]]:
    """Each live line seen: (how many runs had ended before it, (round, done, found))."""
    readings = []
    for lines in session.snapshots:
        ended = sum(1 for line in lines if FINAL.search(line))
        for line in lines:
            match = LIVE.search(line)
            if match:
                figures = (number(match["round"]), number(match["done"]), number(match["found"]))
                readings.append((ended, figures))
    return readings


def lines_matching(lines: Sequence[str], pattern: re.Pattern[str]) -> list[str]:
    """The lines of a screen that match ``pattern``."""
    return [line for line in lines if pattern.search(line)]


def test_immediate_progress_never_moves_backwards_and_leaves_one_line_per_run() -> None:
    """Round, calls done and calls found only grow; at the end each run left one final line."""
    session = run_on_terminal(
        demo_command("--words", "8", "--runner", "immediate", "--show", "0", "--time-scale", "0.05")
    )

    assert 0 == session.status, "\n".join(session.screen)
    readings = live_readings(session)
    assert readings, "the live line was never seen"
    for (run, now), (next_run, later) in itertools.pairwise(readings):
        if run == next_run:
            assert all(a <= b for a, b in zip(now, later, strict=True)), (now, later)
    assert all(done <= found for _, (_, done, found) in readings)
    assert [] == lines_matching(session.screen, LIVE)  # no live line left behind
    finals = lines_matching(session.screen, FINAL)
    assert 2 == len(finals), finals  # the first run and the run again on the store
    assert 1 == sum(
        1
        for line in session.screen
        if line.startswith("inert demo report") or "inert demo report" in line
    )


def test_ctrl_c_says_what_the_store_kept_and_the_same_command_resumes(tmp_path: Path) -> None:
    """Interrupted mid-run: one line naming the answers kept, exit 130; run again, it finishes."""
    store = tmp_path / "demo.sqlite3"
    command = demo_command(
        "--words",
        "4",
        "--runner",
        "batch",
        "--show",
        "0",
        "--time-scale",
        "0.5",
        "--store",
        str(store),
    )

    interrupted = run_on_terminal(
        command,
        interrupt_when=lambda lines: any("in_progress" in line for line in lines),
    )

    assert 130 == interrupted.status, "\n".join(interrupted.screen)
    message = [line for line in interrupted.screen if line.startswith("inert demo: interrupted")]
    assert 1 == len(message), interrupted.screen
    assert re.fullmatch(
        rf"inert demo: interrupted: [\d,]+ answers? kept in {re.escape(str(store))}"
        r"( \([\d,]+ batch(es)? unfinished\))?; "
        "run the same command again to resume",
        message[0],
    )
    assert not any("Traceback" in line for line in interrupted.screen)

    again = run_on_terminal(command)

    assert 0 == again.status, "\n".join(again.screen)
