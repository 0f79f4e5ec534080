"""Time spent per phase of a batch run (journal, JSONL, upload, collect, store write).

The batch path's benchmark (``benchmarks/batch_path.py``) reads these to show that
every phase grows in proportion to the ops of a round; waiting for the server (the
batch running, the pauses between polls) is not a phase. Each phase keeps its wall
time and the CPU time of the thread that ran it (the runner's event loop): on a
busy machine the CPU time is what shows this process's own work.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

PHASES = ("journal", "jsonl", "upload", "create", "collect", "store write")
"""The phases, in the order a shard meets them."""


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
        """Add the time the ``with`` block takes to ``phase``."""
        started = time.perf_counter()
        cpu = time.thread_time()
        try:
            yield
        finally:
            self.seconds[phase] += time.perf_counter() - started
            self.cpu_seconds[phase] += time.thread_time() - cpu
