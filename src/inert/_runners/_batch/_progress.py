"""The progress display of a batch run: one live row per batch, events as log lines.

Each row names the round and the batch (``round 2 · batch 1 · batch_abc``), its
status and its lines done of the lines it carries, which only grow. Events of a
resumed or repaired run (a batch re-attached from an earlier run, lines
resubmitted) print as log lines above the rows. When the round ends, the live
rows are replaced by one plain line per batch with its final state, so no
half-drawn row is left behind. Only one live display shows at a time
(``inert._display``): a run that starts while another is live stays quiet.
"""

from __future__ import annotations

import time
from contextlib import ExitStack
from typing import Final

from openai.types import Batch
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from inert._display import live_slot, stderr_console
from inert._store import ShardRecord


class ProgressView:
    """A rich progress display of one round's batches (nothing at all when disabled).

    Args:
        enabled: show the display (and the log lines) on stderr.
        round_number: the round these batches carry, shown in each row; None when
            batches of several runs are collected together (``inert batches resume``).
    """

    def __init__(self, enabled: bool, *, round_number: int | None = None) -> None:
        self._enabled = enabled
        self._round = round_number
        self._progress: Progress | None = None
        self._stack = ExitStack()
        self._tasks: dict[str, TaskID] = {}
        self._final: dict[str, str] = {}
        self._started: dict[str, float] = {}

    def __enter__(self) -> ProgressView:
        if self._enabled and self._stack.enter_context(live_slot(self)):
            self._progress = Progress(
                TextColumn("{task.description}"),
                TextColumn("{task.fields[status]:<11}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("failed {task.fields[failed]}"),
                TimeElapsedColumn(),
                console=stderr_console(),
                transient=True,
            )
            self._stack.enter_context(self._progress)
        return self

    def __exit__(self, *exc: object) -> None:
        progress = self._progress
        self._stack.close()
        if progress is not None:
            for line in self._final.values():
                progress.console.print(line, highlight=False, soft_wrap=True)

    def log(self, message: str) -> None:
        """An event worth a line of its own (a re-attached batch, resubmitted lines)."""
        if self._progress is not None:
            self._progress.console.print(message, highlight=False, soft_wrap=True)

    def show(self, record: ShardRecord, batch: Batch) -> None:
        """The batch's latest state, from a poll."""
        progress = self._progress
        if progress is None:
            return
        counts = batch.request_counts
        total = counts.total if counts is not None else record.size
        completed = counts.completed if counts is not None else 0
        failed = counts.failed if counts is not None else 0
        task = self._tasks.get(batch.id)
        label = self._label(batch.id)
        if task is None:
            task = progress.add_task(label, total=total or None, status=batch.status, failed=0)
            self._tasks[batch.id] = task
            self._started[batch.id] = time.monotonic()
        done = completed + failed
        progress.update(
            task, total=total or None, completed=done, status=batch.status, failed=failed
        )
        seconds = time.monotonic() - self._started[batch.id]
        self._final[batch.id] = (
            f"{label}: {batch.status}, {done:,}/{total:,} lines, {failed:,} failed, {seconds:.1f}s"
        )

    def _label(self, batch_id: str) -> str:
        number = self._tasks.get(batch_id)
        index = len(self._tasks) + 1 if number is None else list(self._tasks).index(batch_id) + 1
        where = f"round {self._round} · " if self._round is not None else ""
        return f"{where}batch {index} · {batch_id}"


QUIET: Final = ProgressView(False)
