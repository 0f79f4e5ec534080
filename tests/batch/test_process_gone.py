"""A run's process is known gone only when it surely is: same host, no such process."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

from inert._runners._batch._runner import _process_gone


def test_an_ended_process_on_this_host_is_gone() -> None:
    """A child that exited (and was reaped) is gone; this process and unknown hosts are not."""
    child = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    pid = int(child.stdout)
    host = socket.gethostname()
    assert _process_gone(host, pid)
    assert not _process_gone(host, os.getpid())
    assert not _process_gone("another-host", pid)
    assert not _process_gone(host, None)
    assert not _process_gone(None, pid)
