"""The demo on a real terminal (a pty read through a terminal emulator): its live progress."""

from __future__ import annotations

import itertools
import re
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from tests._terminal import Session, demo_command, run_on_terminal

IMMEDIATE_LIVE = re.compile(
    r"immediate: round (?P<round>\d+) · (?P<done>[\d,]+) of (?P<found>[\d,]+) calls found so far done"
)
IMMEDIATE_FINAL = re.compile(r"immediate: \d+ rounds? · [\d,]+ calls? sent")
BATCH_LIVE = re.compile(
    r"round (?P<round>\d+) · batch \d+ · (?P<id>batch_\w+) +\w+ .*?(?P<done>\d+)/(?P<total>\d+)"
)
BATCH_FINAL = re.compile(r"round \d+ · batch \d+ · (?P<id>batch_\w+): \w+, [\d,]+/[\d,]+ lines")


def number(text: str) -> int:
    """A figure as displayed (with thousands separators) as an int."""
    return int(text.replace(",", ""))


def immediate_readings(session: Session) -> list[tuple[int, tuple[int, int, int]]]:
    """Each live immediate line seen: (runs ended before it, (round, done, found))."""
    readings = []
    for lines in session.snapshots:
        ended = len(matching(lines, IMMEDIATE_FINAL))
        for line in matching(lines, IMMEDIATE_LIVE):
            match = IMMEDIATE_LIVE.search(line)
            assert match is not None
            readings.append(
                (ended, (number(match["round"]), number(match["done"]), number(match["found"])))
            )
    return readings


def batch_readings(session: Session) -> dict[str, list[int]]:
    """Each batch's live "lines done" figures, in the order they were seen."""
    readings: dict[str, list[int]] = defaultdict(list)
    for lines in session.snapshots:
        for line in lines:
            match = BATCH_LIVE.search(line)
            if match:
                readings[match["id"]].append(number(match["done"]))
    return readings


def matching(lines: Sequence[str], pattern: re.Pattern[str]) -> list[str]:
    """The lines of a screen that match ``pattern``."""
    return [line for line in lines if pattern.search(line)]


def test_progress_never_moves_backwards_and_leaves_one_line_per_run_and_batch() -> None:
    """Live figures only grow; at the end no live row is left, one final line each remains."""
    session = run_on_terminal(demo_command("--words", "6", "--show", "0", "--time-scale", "0.3"))

    assert 0 == session.status, "\n".join(session.screen)
    immediate = immediate_readings(session)
    assert immediate, "the immediate run's live line was never seen"
    for (run, now), (next_run, later) in itertools.pairwise(immediate):
        if run == next_run:
            assert all(a <= b for a, b in zip(now, later, strict=True)), (now, later)
    assert all(done <= found for _, (_, done, found) in immediate)
    batches = batch_readings(session)
    assert batches, "no batch row was ever seen"
    for batch_id, done in batches.items():
        assert sorted(done) == done, (batch_id, done)
    assert [] == matching(session.screen, IMMEDIATE_LIVE)
    assert [] == matching(session.screen, BATCH_LIVE)
    assert 2 == len(matching(session.screen, IMMEDIATE_FINAL))  # the first run, and again
    finals = [m["id"] for line in session.screen if (m := BATCH_FINAL.search(line))]
    assert 3 == len(finals) == len(set(finals))  # one line per batch job of the three rounds
    assert set(batches) <= set(finals)


def test_ctrl_c_says_what_the_store_kept_and_the_same_command_resumes(tmp_path: Path) -> None:
    """Interrupted mid-run: one line naming the answers kept, exit 130; run again, it finishes."""
    store = tmp_path / "demo.sqlite3"
    command = demo_command(
        *("--words", "4", "--runner", "batch", "--show", "0", "--time-scale", "0.5"),
        *("--store", str(store)),
    )

    interrupted = run_on_terminal(
        command, interrupt_when=lambda lines: bool(matching(lines, BATCH_LIVE))
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
    assert not any("Traceback" in line for line in interrupted.screen), "\n".join(
        interrupted.screen
    )

    again = run_on_terminal(command)

    assert 0 == again.status, "\n".join(again.screen)
    assert matching(again.screen, re.compile(r"re-attached batch batch_\w+ of an earlier run"))
