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
from inert._report import ReportBuilder, RunReport, counted


class CallProgress:
    """A live line on stderr for one immediate run (silent if another display is live)."""

    def __init__(self) -> None:
        self._pace = ""
        self._found = 0
        self._answered = 0
        self._failed = 0
        self._report: ReportBuilder | None = None
        self._started = time.monotonic()
        self._final: RunReport | None = None
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

    def paced(self, pace: str) -> None:
        """The rate-limited models' pace against their limits (e.g. ``gpt-4o-mini 2.9k/3k rpm``)."""
        self._pace = pace

    def finish(self, report: RunReport) -> None:
        """The run ended with ``report``: the last line says what it did."""
        self._final = report

    def line(self) -> str:
        """The text of the line now (what the live display shows, then the last line)."""
        final = self._final
        if final is not None:
            return (
                f"immediate: {counted(final.rounds, 'round')} · "
                f"{counted(final.ops_sent, 'call')} sent, {final.ops_paid:,} paid · "
                f"{final.cache_hits:,} from the store · "
                f"{counted(final.requests_failed, 'request')} failed · "
                f"{counted(final.retries, 'retry', 'retries')} · {final.wall_seconds:.1f}s"
            )
        report = self._report
        rounds = report.rounds if report is not None else 0
        retries = report.retries if report is not None else 0
        pace = self._pace
        return (
            f"immediate: round {rounds:,} · {self._answered:,} of {self._found:,} calls "
            f"found so far done · {self._failed:,} failed · "
            f"{counted(retries, 'retry', 'retries')} · {time.monotonic() - self._started:.1f}s"
            + (f" · pace {pace}" if pace else "")
        )

    def _render(self) -> Text:
        return Text(self.line())
