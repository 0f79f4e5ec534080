"""``inert demo``: read the options, run the session, turn every expected failure into one line.

Exit status: 0 when every entry was made, 1 when some failed (the report says
why) or a real run was not confirmed, 2 for a mistake in the options or the
environment, 130 when interrupted (Ctrl-C), after saying what the store kept.

This module loads little: the session (the SDK, the emulator, the runners) is
imported only once the options are read, so ``--help`` and a mistyped option
answer at once.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Final

from lexicon_demo._options import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    RunFailed,
    StoreInUse,
    UsageError,
    parse,
)

UNFINISHED_BATCH_STATES: Final = ("intended", "uploaded", "created", "cancelling")
"""Journal states of a batch that a resumed run sends, or waits for and collects."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the demo and return its exit status (see the module docstring)."""
    in_use = StoreInUse()
    try:
        options = parse(argv)
        from lexicon_demo._session import run

        return run(options, in_use)
    except UsageError as exc:
        return _fail(str(exc), EXIT_USAGE)
    except RunFailed as exc:
        return _fail(str(exc), EXIT_FAILED)
    except KeyboardInterrupt:
        return _fail(_interrupted(in_use), EXIT_INTERRUPTED)


def _fail(message: str, status: int) -> int:
    print(f"inert demo: {message}", file=sys.stderr)
    return status


def _interrupted(in_use: StoreInUse) -> str:
    """What an interrupted run kept, and how to go on."""
    if in_use.path is None:
        return "interrupted before any call"
    if in_use.temporary:
        return (
            "interrupted: the answers were in a temporary store, now removed; "
            "pass --store PATH to keep them and resume"
        )
    from inert import Store

    with Store(in_use.path) as store:
        kept = store.response_count()
        unfinished = len(store.shards(states=UNFINISHED_BATCH_STATES))
    batches = f" ({_plural(unfinished, 'batch', 'batches')} unfinished)" if unfinished else ""
    return (
        f"interrupted: {_plural(kept, 'answer', 'answers')} kept in {in_use.path}{batches}; "
        "run the same command again to resume"
    )


def _plural(count: int, one: str, many: str) -> str:
    return f"{count:,} {one if count == 1 else many}"
