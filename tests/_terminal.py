"""Run a command on a pseudo-terminal and watch its screen through a terminal emulator (pyte).

A live display is what a person sees, so the tests read the screen after every
chunk of output, as a person would, rather than the raw escape codes.
"""

from __future__ import annotations

import os
import pty
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence

import attrs
import pyte

COLUMNS = 240
ROWS = 400
"""Tall enough that nothing scrolls off: the whole session stays on one screen."""


@attrs.frozen
class Session:
    """What a command did on the terminal.

    Attributes:
        snapshots: the screen's lines after each chunk of output, in order.
        screen: the lines left on the screen at the end (trailing blanks dropped).
        status: the exit status (negative: killed by that signal).
    """

    snapshots: tuple[tuple[str, ...], ...]
    screen: tuple[str, ...]
    status: int


def run_on_terminal(
    argv: Sequence[str],
    *,
    env: dict[str, str] | None = None,
    interrupt_when: Callable[[Sequence[str]], bool] | None = None,
) -> Session:
    """Run ``argv`` with stdin, stdout and stderr on one pty; return its screens.

    ``interrupt_when(lines)`` is checked after each chunk; the first time it is
    true, the terminal's interrupt character (Ctrl-C) is typed, as a person would.
    """
    screen = pyte.Screen(COLUMNS, ROWS)
    stream = pyte.ByteStream(screen)
    primary, secondary = pty.openpty()
    environment = {
        **os.environ,
        **(env or {}),
        "TERM": "xterm-256color",
        "COLUMNS": str(COLUMNS),
        "LINES": str(ROWS),
    }
    for name in ("NO_COLOR", "FORCE_COLOR", "CI", "TERM_PROGRAM"):
        environment.pop(name, None)
    process = subprocess.Popen(
        list(argv),
        stdin=secondary,
        stdout=secondary,
        stderr=secondary,
        env=environment,
        start_new_session=True,  # its own session: the pty is its controlling terminal
        preexec_fn=_take_terminal,
    )
    os.close(secondary)
    snapshots: list[tuple[str, ...]] = []
    interrupted = interrupt_when is None
    try:
        while True:
            ready, _, _ = select.select([primary], [], [], 0.5)
            if not ready:
                if process.poll() is not None:
                    break
                continue
            try:
                chunk = os.read(primary, 65536)
            except OSError:  # EIO: the other side closed
                break
            if not chunk:
                break
            stream.feed(chunk)
            lines = tuple(line.rstrip() for line in screen.display)
            snapshots.append(lines)
            if not interrupted and interrupt_when is not None and interrupt_when(lines):
                interrupted = True
                os.write(primary, b"\x03")
    finally:
        status = _wait(process)
        os.close(primary)
    final = list(snapshots[-1]) if snapshots else []
    while final and not final[-1]:
        final.pop()
    return Session(tuple(snapshots), tuple(final), status)


def _take_terminal() -> None:
    """In the child: make the pty the controlling terminal, so Ctrl-C sends SIGINT.

    SIGINT is also set back to its default: a shell starts background jobs with it
    ignored, and Python keeps an ignored SIGINT ignored (no KeyboardInterrupt).
    """
    import fcntl
    import termios

    signal.signal(signal.SIGINT, signal.SIG_DFL)
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def _wait(process: subprocess.Popen[bytes]) -> int:
    deadline = time.monotonic() + 120
    while process.poll() is None:
        if time.monotonic() > deadline:  # a hung command must not hang the suite
            process.send_signal(signal.SIGKILL)
        time.sleep(0.05)
    return process.returncode


def demo_command(*args: str) -> list[str]:
    """``inert demo ARGS`` run by this interpreter."""
    return [sys.executable, "-m", "lexicon_demo", *args]
