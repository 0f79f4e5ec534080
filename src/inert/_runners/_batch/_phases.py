"""Time spent per phase of a batch run (journal, JSONL, upload, collect, store write).

The batch path's benchmark (``benchmarks/batch_path.py``) reads these to show that
every phase grows in proportion to the ops of a round; waiting for the server (the
batch running, the pauses between polls) is not a phase. Each phase keeps its wall
time and the CPU time of the thread that ran it (the runner's event loop): on a
busy machine the CPU time is what shows this process's own work.

A phase timed inside another (the shards planned inside the claim's transaction,
the input file written inside the upload) counts in the inner phase only: every
phase's figure is its own work, and no work is counted twice.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from contextvars import ContextVar

PHASES = ("journal", "jsonl", "upload", "create", "collect", "store write")
"""The phases, in the order a shard meets them."""


class _Open:
    """A phase being timed: the time of the phases timed inside it so far."""

    __slots__ = ("cpu", "wall")

    def __init__(self) -> None:
        self.wall = 0.0
        self.cpu = 0.0


_innermost: ContextVar[_Open | None] = ContextVar("inert_batch_phase", default=None)
"""The phase the current task is timing (each asyncio task has its own)."""


class Phases:
    """Seconds spent in each phase, summed over every shard of every run.

    Phases of concurrent shards overlap in wall time (their awaits interleave); the
    CPU time of an await is only what ran in this thread meanwhile, which may be
    another shard's work.
    """

    def __init__(self) -> None:
        self.seconds: dict[str, float] = dict.fromkeys(PHASES, 0.0)
        self.cpu_seconds: dict[str, float] = dict.fromkeys(PHASES, 0.0)

    @contextlib.contextmanager
    def timing(self, phase: str) -> Iterator[None]:
        """Add the time the ``with`` block takes to ``phase``, less that of the phases
        timed inside it (which count as theirs)."""
        outer = _innermost.get()
        this = _Open()
        token = _innermost.set(this)
        started = time.perf_counter()
        cpu = time.thread_time()
        try:
            yield
        finally:
            wall = time.perf_counter() - started
            used = time.thread_time() - cpu
            _innermost.reset(token)
            self.seconds[phase] += wall - this.wall
            self.cpu_seconds[phase] += used - this.cpu
            if outer is not None:
                outer.wall += wall
                outer.cpu += used
