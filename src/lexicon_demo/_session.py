"""The demo's session: the endpoint, the store, the runs and the report.

Imported only once the options are read, so ``inert demo --help`` and a mistyped
option answer at once, without loading the SDK.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import AsyncExitStack as ExitStackAsync
from contextlib import ExitStack, contextmanager
from pathlib import Path

import anthropic
import openai
from rich.console import Console

from inert import Store
from inert.emulator import Emulator
from inert.errors import StoreError
from lexicon import MIXED_ON_CLAUDE, Lexicon, SampleWord, load_sample
from lexicon_demo._options import (
    EXIT_FAILED,
    Options,
    RunFailed,
    StoreInUse,
    UsageError,
)
from lexicon_demo._output import (
    estimate_line,
    plural,
    report_table,
    show_entries,
    summarize,
    where_line,
)
from lexicon_demo._runs import DemoResult, choose_words, estimate, run_demo


def run(options: Options, in_use: StoreInUse) -> int:
    """The demo itself; API errors that escape a runner become one-line failures.

    Raises:
        UsageError: the options ask for more words than the sample holds, or the
            store cannot be used.
        RunFailed: an API call failed outside any request (a batch job's file).
    """
    try:
        return _demo(options, in_use)
    except (openai.OpenAIError, anthropic.AnthropicError) as exc:
        raise RunFailed(f"the API call failed: {exc}") from None


def _demo(options: Options, in_use: StoreInUse) -> int:
    total = len(load_sample())
    if options.words > total:
        raise UsageError(
            f"--words must be between 1 and {total}; got {options.words} (see `inert demo --help`)"
        )
    console = Console(highlight=False, width=None if Console().is_terminal else 120)
    words = choose_words(options.words, options.seed)
    lexicon = Lexicon.for_provider(
        options.provider, model=options.model, claude_model=options.claude_model
    )
    endpoint = options.endpoint
    with ExitStack() as stack:
        if options.store is None:
            in_use.path = stack.enter_context(_temporary_store())
        else:
            in_use.path, in_use.temporary = Path(options.store), False
        store = stack.enter_context(_open_store(in_use.path))
        runs = " then ".join(options.runners)
        console.print(
            f"[bold]inert demo[/]: {plural(len(words), 'word')} with {_models(options)}, {runs}"
        )
        if endpoint.base_url is None:
            emulator = stack.enter_context(
                Emulator(time_scale=options.time_scale, seed=options.seed)
            )
            base_url = emulator.base_url
            claude_url: str | None = emulator.anthropic_base_url
            console.print(
                where_line(base_url, real=False, key_in_environment=options.key_in_environment)
            )
        else:
            base_url = endpoint.base_url
            claude_url = endpoint.anthropic_base_url
            console.print(where_line(base_url, real=True, key_in_environment=True))
            figures = asyncio.run(
                estimate(words, runners=options.runners, lexicon=lexicon, seed=options.seed)
            )
            console.print(estimate_line(figures, _models(options)))
            if not options.yes and not _confirm(base_url):
                console.print("nothing sent")
                return EXIT_FAILED
        console.print(
            f"store: {in_use.path}"
            + (" (temporary, removed afterwards)" if in_use.temporary else "")
        )
        result = asyncio.run(
            _runs(
                options,
                words,
                lexicon,
                base_url,
                claude_url if options.provider != "openai" else None,
                store,
                fast_polls=not endpoint.real,
            )
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
    claude_url: str | None,
    store: Store,
    *,
    fast_polls: bool,
) -> DemoResult:
    async with ExitStackAsync() as stack:
        client = await stack.enter_async_context(
            openai.AsyncOpenAI(base_url=base_url, api_key=options.endpoint.api_key, max_retries=0)
        )
        claude = None
        if claude_url is not None:
            claude = await stack.enter_async_context(
                anthropic.AsyncAnthropic(
                    base_url=claude_url, api_key=options.endpoint.anthropic_key, max_retries=0
                )
            )
        return await run_demo(
            words,
            runners=options.runners,
            lexicon=lexicon,
            client=client,
            claude=claude,
            store=store,
            fast_polls=fast_polls,
        )


def _models(options: Options) -> str:
    """The models the stages name: GPT's, Claude's, or both with which stages are whose."""
    if options.provider == "openai":
        return options.model
    if options.provider == "anthropic":
        return options.claude_model
    on_claude = ", ".join(sorted(MIXED_ON_CLAUDE))
    return f"{options.model} and {options.claude_model} ({on_claude} on Claude)"


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
