"""The immediate runner's live line: the round reached, calls answered of calls found.

A pipelined run discovers its calls as answers arrive, so no total is known in
advance: a bar against a growing total would move backwards. The line shows
counts that only grow instead: the dependency round reached, calls answered of
the calls found so far, failures and retries. When the run ends the live line
is replaced by one plain line with the totals, so nothing else is left behind.
"""

from __future__ import annotations

import time
from contextlib import ExitStack

from rich.live import Live
from rich.text import Text

from inert._display import live_slot, stderr_console
from inert._report import ReportBuilder


class CallProgress:
    """A live line on stderr for one immediate run (silent if another display is live)."""

    def __init__(self) -> None:
        self._found = 0
        self._answered = 0
        self._failed = 0
        self._report: ReportBuilder | None = None
        self._started = time.monotonic()
        self._done = False
        self._stack = ExitStack()
        self._live: Live | None = None

    def __enter__(self) -> CallProgress:
        if self._stack.enter_context(live_slot(self)):
            self._live = Live(
                get_renderable=self._render,
                console=stderr_console(),
                refresh_per_second=8,
                transient=True,
            )
            self._stack.enter_context(self._live)
        return self

    def __exit__(self, *exc: object) -> None:
        self._done = True
        self._stack.close()  # the live line goes; its final state is printed once
        if self._live is not None:
            self._live.console.print(self.line(), highlight=False)

    def found(self, count: int, report: ReportBuilder) -> None:
        """``count`` more distinct calls are about to be sent."""
        self._found += count
        self._report = report

    def answered(self, failed: bool) -> None:
        """One call ended: answered, or failed for good."""
        self._answered += 1
        self._failed += failed

    def line(self) -> str:
        """The text of the line now (what the live display shows)."""
        report = self._report
        rounds = report.rounds if report is not None else 0
        retries = report.retries if report is not None else 0
        seconds = time.monotonic() - self._started
        if self._done:
            calls = f"{self._answered:,} calls done"
            where = f"{rounds:,} round{'' if rounds == 1 else 's'}"
        else:
            calls = f"{self._answered:,} of {self._found:,} calls found so far done"
            where = f"round {rounds:,}"
        return (
            f"immediate: {where} · {calls} · {self._failed:,} failed · "
            f"{retries:,} retr{'y' if retries == 1 else 'ies'} · {seconds:.1f}s"
        )

    def _render(self) -> Text:
        return Text(self.line())
