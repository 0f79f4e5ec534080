"""Killing a child process at a crash point: the batch crash tests of every provider share it."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path


def kill_at_marker(child: subprocess.Popen[str], marker: Path) -> None:
    """Wait for the child to reach its point (it writes ``marker``), then SIGKILL it."""
    deadline = time.monotonic() + 30
    while not marker.exists():
        if child.poll() is not None:
            _, err = child.communicate()
            raise AssertionError(f"the child ended before its crash point:\n{err}")
        if time.monotonic() > deadline:
            child.kill()
            raise AssertionError("the child never reached its crash point")
        time.sleep(0.01)
    os.kill(child.pid, signal.SIGKILL)
    child.communicate()
    assert -signal.SIGKILL == child.returncode
