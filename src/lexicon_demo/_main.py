"""``inert demo``: parse, choose the endpoint, run, report; every expected failure is one line.

Exit status: 0 when every entry was made, 1 when some failed (the report says
why) or a real run was not confirmed, 2 for a mistake in the options or the
environment, 130 when interrupted (Ctrl-C), after saying what the store kept.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Final

import attrs
import openai
from rich.console import Console

from inert import Store
from inert.emulator import Emulator
from inert.errors import StoreError
from lexicon import Lexicon, SampleWord, load_sample
from lexicon_demo._options import EXIT_USAGE, Options, UsageError, parse
from lexicon_demo._output import (
    estimate_line,
    plural,
    report_table,
    show_entries,
    summarize,
    where_line,
)
from lexicon_demo._runs import DemoResult, choose_words, estimate, run_demo

EXIT_FAILED: Final = 1
EXIT_INTERRUPTED: Final = 130
"""128 + SIGINT, what a shell reports for a command ended by Ctrl-C."""
UNFINISHED_BATCH_STATES: Final = ("intended", "uploaded", "created", "cancelling")
"""Journal states of a batch that a resumed run sends, or waits for and collects."""


@attrs.define
class _StoreInUse:
    """Which store the run writes to, for the message after an interruption."""

    path: Path | None = None
    temporary: bool = True


def main(argv: Sequence[str] | None = None) -> int:
    """Run the demo and return its exit status (see the module docstring)."""
    in_use = _StoreInUse()
    try:
        options = parse(argv, total_words=len(load_sample()))
        return _demo(options, in_use)
    except UsageError as exc:
        return _fail(str(exc), EXIT_USAGE)
    except openai.OpenAIError as exc:
        return _fail(f"the API call failed: {exc}", EXIT_FAILED)
    except KeyboardInterrupt:
        return _fail(_interrupted(in_use), EXIT_INTERRUPTED)


def _fail(message: str, status: int) -> int:
    print(f"inert demo: {message}", file=sys.stderr)
    return status


def _interrupted(in_use: _StoreInUse) -> str:
    """What an interrupted run kept, and how to go on."""
    if in_use.path is None:
        return "interrupted before any call"
    if in_use.temporary:
        return (
            "interrupted: the answers were in a temporary store, now removed; "
            "pass --store PATH to keep them and resume"
        )
    with Store(in_use.path) as store:
        kept = store.response_count()
        unfinished = len(store.shards(states=UNFINISHED_BATCH_STATES))
    batches = f" ({plural(unfinished, 'batch', 'batches')} unfinished)" if unfinished else ""
    return (
        f"interrupted: {plural(kept, 'answer')} kept in {in_use.path}{batches}; "
        "run the same command again to resume"
    )


def _demo(options: Options, in_use: _StoreInUse) -> int:
    console = Console(highlight=False, width=None if Console().is_terminal else 120)
    words = choose_words(options.words, options.seed)
    lexicon = Lexicon(model=options.model)
    endpoint = options.endpoint
    with ExitStack() as stack:
        if options.store is None:
            in_use.path = stack.enter_context(_temporary_store())
        else:
            in_use.path, in_use.temporary = Path(options.store), False
        store = stack.enter_context(_open_store(in_use.path))
        runs = " then ".join(options.runners)
        console.print(
            f"[bold]inert demo[/]: {plural(len(words), 'word')} with {options.model}, {runs}"
        )
        if endpoint.base_url is None:
            emulator = stack.enter_context(
                Emulator(time_scale=options.time_scale, seed=options.seed)
            )
            base_url = emulator.base_url
            console.print(
                where_line(base_url, real=False, key_in_environment=options.key_in_environment)
            )
        else:
            base_url = endpoint.base_url
            console.print(where_line(base_url, real=True, key_in_environment=True))
            figures = asyncio.run(
                estimate(words, runners=options.runners, lexicon=lexicon, seed=options.seed)
            )
            console.print(estimate_line(figures, options.model))
            if not options.yes and not _confirm(base_url):
                console.print("nothing sent")
                return EXIT_FAILED
        console.print(
            f"store: {in_use.path}"
            + (" (temporary, removed afterwards)" if in_use.temporary else "")
        )
        result = asyncio.run(
            _runs(options, words, lexicon, base_url, store, fast_polls=not endpoint.real)
        )
    show_entries(console, next(iter(result.entries.values()))[: options.show])
    console.print(report_table(result.rows))
    summarize(console, result)
    return EXIT_FAILED if any(row.report.requests_failed for row in result.rows) else 0


async def _runs(
    options: Options,
    words: Sequence[SampleWord],
    lexicon: Lexicon,
    base_url: str,
    store: Store,
    *,
    fast_polls: bool,
) -> DemoResult:
    async with openai.AsyncOpenAI(
        base_url=base_url, api_key=options.endpoint.api_key, max_retries=0
    ) as client:
        return await run_demo(
            words,
            runners=options.runners,
            lexicon=lexicon,
            client=client,
            store=store,
            fast_polls=fast_polls,
        )


def _confirm(base_url: str) -> bool:
    """Ask on the terminal; refuse to guess when there is none."""
    if not sys.stdin.isatty():
        raise UsageError(
            f"not calling {base_url} without confirmation, and stdin is not a terminal "
            "to ask on: pass --yes to send"
        )
    try:
        answer = input(f"send these calls to {base_url}? [y/N] ")
    except EOFError:
        return False
    return answer.strip().lower() in ("y", "yes")


@contextmanager
def _temporary_store() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="inert-demo-") as folder:
        yield Path(folder) / "store.sqlite"


@contextmanager
def _open_store(path: Path) -> Iterator[Store]:
    try:
        store = Store(path)
    except StoreError as exc:
        raise UsageError(str(exc)) from None
    with store:
        yield store
