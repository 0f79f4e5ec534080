"""The one live display of a process: every runner's progress shares stderr, in turn.

Two live displays on one terminal overwrite each other's lines and leave stray
ones behind, so a run shows its display only while no other is live (the first
claims the slot; overlapping runs stay quiet). Log lines, such as a resumed
batch, print above the live display, or as plain lines when there is none.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console

_lock = threading.Lock()
_holder: list[object] = []
_console: list[Console] = []


def stderr_console() -> Console:
    """The console on stderr that every display and log line of inert uses."""
    with _lock:
        if not _console:
            _console.append(Console(stderr=True, highlight=False))
        return _console[0]


@contextmanager
def live_slot(owner: object) -> Iterator[bool]:
    """Claim the live display for ``owner``; yields False when another holds it."""
    with _lock:
        claimed = not _holder
        if claimed:
            _holder.append(owner)
    try:
        yield claimed
    finally:
        if claimed:
            with _lock:
                _holder.clear()
