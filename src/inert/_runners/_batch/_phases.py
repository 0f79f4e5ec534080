"""Time spent per phase of a batch run (journal, JSONL, upload, collect, store write).

The batch path's benchmark (``benchmarks/batch_path.py``) reads these to show that
every phase grows in proportion to the ops of a round; waiting for the server (the
batch running, the pauses between polls) is not a phase.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

PHASES = ("journal", "jsonl", "upload", "create", "collect", "store write")
"""The phases, in the order a shard meets them."""


class Phases:
    """Seconds spent in each phase, summed over every shard of every run."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = dict.fromkeys(PHASES, 0.0)

    @contextlib.contextmanager
    def timing(self, phase: str) -> Iterator[None]:
        """Add the time the ``with`` block takes to ``phase``."""
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[phase] += time.perf_counter() - started
