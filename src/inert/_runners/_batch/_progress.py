"""The progress display of a batch run: one row per batch on stderr."""

from __future__ import annotations

from typing import Final

from openai.types import Batch
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from inert._store import ShardRecord


class ProgressView:
    """A rich progress display: one row per batch (status, requests done of total)."""

    def __init__(self, enabled: bool) -> None:
        self._progress: Progress | None = None
        if enabled:
            self._progress = Progress(
                TextColumn("{task.description}"),
                TextColumn("{task.fields[status]:<11}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("failed {task.fields[failed]}"),
                TimeElapsedColumn(),
                console=Console(stderr=True),
            )
        self._tasks: dict[str, TaskID] = {}

    def __enter__(self) -> ProgressView:
        if self._progress is not None:
            self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()

    def show(self, record: ShardRecord, batch: Batch) -> None:
        progress = self._progress
        if progress is None:
            return
        counts = batch.request_counts
        total = counts.total if counts is not None else record.size
        completed = counts.completed if counts is not None else 0
        failed = counts.failed if counts is not None else 0
        task = self._tasks.get(batch.id)
        if task is None:
            label = f"{batch.id} (shard {record.shard}, attempt {record.attempt})"
            task = progress.add_task(label, total=total or None, status=batch.status, failed=0)
            self._tasks[batch.id] = task
        progress.update(
            task,
            total=total or None,
            completed=completed + failed,
            status=batch.status,
            failed=failed,
        )


QUIET: Final = ProgressView(False)
