"""Child runs for the many-runs and many-workers tests: start them, wait for them, read them.

Each child is ``_many_runs_child.py``: one ``BatchRunner`` in a process of its own on a
shared store (a SQLite path or a PostgreSQL URL), talking to the emulator over
loopback HTTP through the real openai SDK.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import attrs

from inert.emulator import Emulator

CHILD = Path(__file__).with_name("_many_runs_child.py")
ROOT = Path(__file__).resolve().parents[2]
PATIENCE = 120.0
"""Seconds any one run may take before the test calls it hung (a generous bound, not a goal)."""


def start_run(emu: Emulator, store: Path | str, *options: str) -> subprocess.Popen[str]:
    """Start a child process that runs the requests on ``store``."""
    return subprocess.Popen(
        [sys.executable, str(CHILD), emu.base_url, str(store), *options],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@attrs.frozen
class ChildRun:
    """How a child's run ended: its answers and figures, or the store's refusal.

    ``out`` and ``err`` are everything it printed (the tests look for secrets there).
    """

    answers: list[list[str]] | None
    refused: str | None
    report: dict[str, int] = attrs.field(factory=dict)
    out: str = ""
    err: str = ""


def finish(child: subprocess.Popen[str]) -> ChildRun:
    """Wait for the child and read what it printed; a crash fails the test with its stderr."""
    try:
        out, err = child.communicate(timeout=PATIENCE)
    except subprocess.TimeoutExpired:
        child.kill()
        out, err = child.communicate()
        raise AssertionError(f"a run never ended:\n{err}") from None
    assert child.returncode in (0, 3), f"a run crashed ({child.returncode}):\n{out}\n{err}"
    printed = json.loads(out.splitlines()[-1])
    return ChildRun(
        printed.get("answers"), printed.get("refused"), printed.get("report", {}), out, err
    )


@contextmanager
def reaped(*children: subprocess.Popen[str]) -> Iterator[None]:
    """Kill the children still running when the test fails (they would bill on)."""
    try:
        yield
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.communicate()


def wait_for(marker: Path, child: subprocess.Popen[str]) -> None:
    """Wait until the child reached its point (it writes ``marker``)."""
    deadline = time.monotonic() + PATIENCE
    while not marker.exists():
        assert child.poll() is None, f"the child ended before its point:\n{child.communicate()}"
        assert time.monotonic() < deadline, "the child never reached its point"
        time.sleep(0.01)
