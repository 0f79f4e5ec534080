"""``inert demo``: the lexicon pipeline written once, run now and through the Batch API.

The demo synthesizes dictionary entries for a few words of the shipped sample
data set, with the immediate runner, the batch runner or both, and prints a few
entries and a report of each run: rounds, calls built, deduplicated, sent and
served from the store, tokens, cost at the immediate and the batch price, wall
time. Then it runs again on the same store, which now answers every call: nothing
is sent and nothing is paid twice.

By default it starts the embedded emulator in-process (a local OpenAI-compatible
server with deterministic, schema-valid answers), so it needs no key and costs
nothing. ``--base-url``, or ``OPENAI_API_KEY`` in the environment, points it at a
real API instead (``--emulator`` keeps the emulator anyway).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Final, Literal

import attrs
import openai
from returns.result import Failure, Result, Success
from rich import box
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.tree import Tree

from inert import BatchRunner, ImmediateRunner, Request, RequestError, RunReport, Store
from inert.emulator import Emulator
from lexicon.connector import Lexicon
from lexicon.models import Entry, SampleWord
from lexicon.pipeline import synthesize_entry
from lexicon.sample import load_sample

RunnerName = Literal["immediate", "batch"]
RUNNER_CHOICES: Final = ("immediate", "batch", "both")
DEFAULT_WORDS: Final = 12


@attrs.frozen
class RunRow:
    """One line of the report: which run, which runner, what it did."""

    label: str
    runner: RunnerName
    report: RunReport
    failed: int


@attrs.frozen
class DemoResult:
    """Everything the demo did: each run's report and the entries of the first runs."""

    rows: tuple[RunRow, ...]
    entries: dict[RunnerName, list[Entry]]


def build_parser() -> argparse.ArgumentParser:
    """The ``inert demo`` command line; ``--help`` explains every option."""
    parser = argparse.ArgumentParser(
        prog="inert demo",
        description=(
            "Synthesize dictionary entries for sample words with one pipeline, run now "
            "(immediate runner) and through the Batch API (batch runner), then run again "
            "on the same store to show every answer served from it. Uses the embedded "
            "emulator unless --base-url or OPENAI_API_KEY point at a real API."
        ),
    )
    parser.add_argument(
        "--words",
        type=int,
        default=DEFAULT_WORDS,
        metavar="N",
        help=f"how many sample words to synthesize, 1 to 300 (default {DEFAULT_WORDS})",
    )
    parser.add_argument(
        "--runner",
        choices=RUNNER_CHOICES,
        default="both",
        help="run the pipeline with the immediate runner, the batch runner, or both "
        "(default both; with both, the immediate run keeps no store so that each "
        "runner pays its own way, and the batch run fills the store)",
    )
    parser.add_argument(
        "--base-url",
        metavar="URL",
        help="an OpenAI-compatible API to call instead of the embedded emulator "
        "(the key is read from OPENAI_API_KEY)",
    )
    parser.add_argument(
        "--emulator",
        action="store_true",
        help="use the embedded emulator even when OPENAI_API_KEY is set",
    )
    parser.add_argument(
        "--model",
        default="gpt-4o-mini",
        help="the chat model every request names (default gpt-4o-mini)",
    )
    parser.add_argument(
        "--store",
        type=Path,
        metavar="PATH",
        help="the SQLite store file that keeps every answer (default: a fresh file in a "
        "temporary directory, removed afterwards); run the demo twice with the same "
        "PATH and the second run is served entirely from it",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=0,
        help="chooses which sample words are used (default 0); the same seed gives "
        "the same words and, on the emulator, the same answers",
    )
    parser.add_argument(
        "--show",
        type=int,
        default=2,
        metavar="K",
        help="how many entries to print (default 2)",
    )
    parser.add_argument(
        "--time-scale",
        type=float,
        default=0.2,
        metavar="X",
        help="emulator only: how long a batch takes, about 1.1 * X seconds (default 0.2)",
    )
    return parser


def choose_words(count: int, seed: int) -> tuple[SampleWord, ...]:
    """``count`` sample words chosen by ``seed``, in data-set order (most frequent first)."""
    words = load_sample()
    indexes = sorted(random.Random(seed).sample(range(len(words)), count))
    return tuple(words[i] for i in indexes)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the demo; returns 0 when every entry was synthesized, else 1 (2: bad options)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    total = len(load_sample())
    if not 1 <= args.words <= total:
        parser.error(f"--words must be between 1 and {total}; got {args.words}")
    if args.show < 0:
        parser.error(f"--show must not be negative; got {args.show}")
    if args.time_scale <= 0:
        parser.error(f"--time-scale must be positive; got {args.time_scale}")
    console = Console(highlight=False, width=None if _on_terminal() else 120)
    runners: tuple[RunnerName, ...] = (
        ("immediate", "batch") if args.runner == "both" else (args.runner,)
    )
    words = choose_words(args.words, args.seed)
    use_emulator = args.emulator or (args.base_url is None and not os.environ.get("OPENAI_API_KEY"))
    with ExitStack() as stack:
        if use_emulator:
            emulator = stack.enter_context(Emulator(time_scale=args.time_scale, seed=args.seed))
            base_url: str | None = emulator.base_url
            api_key = "demo"
            where = f"the embedded emulator at {base_url} (answers are placeholder words)"
        else:
            base_url = args.base_url
            api_key = os.environ.get("OPENAI_API_KEY", "")
            where = base_url or "the OpenAI API"
        store_path = args.store or stack.enter_context(_temporary_store())
        console.print(
            f"[bold]inert demo[/]: {len(words)} words with {args.model} through {where}\n"
            f"store: {store_path}"
        )
        result = asyncio.run(
            run_demo(
                words,
                runners=runners,
                lexicon=Lexicon(model=args.model),
                base_url=base_url,
                api_key=api_key,
                store_path=store_path,
                console=console,
                fast_polls=use_emulator,
            )
        )
    show_entries(console, next(iter(result.entries.values()))[: args.show])
    console.print(report_table(result.rows))
    summarize(console, result)
    return 1 if any(row.failed for row in result.rows) else 0


def _on_terminal() -> bool:
    return Console().is_terminal


@contextmanager
def _temporary_store() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="inert-demo-") as folder:
        yield Path(folder) / "store.sqlite"


async def run_demo(
    words: Sequence[SampleWord],
    *,
    runners: Sequence[RunnerName],
    lexicon: Lexicon,
    base_url: str | None,
    api_key: str,
    store_path: Path,
    console: Console,
    fast_polls: bool,
) -> DemoResult:
    """The first run with each runner, then a second run of each on the store.

    With both runners, the first immediate run keeps no store so that the batch run
    pays its own way (the comparison of costs is fair); the batch run fills the
    store. The second runs share that store, so they send nothing.
    """
    rows: list[RunRow] = []
    entries: dict[RunnerName, list[Entry]] = {}
    client = openai.AsyncOpenAI(base_url=base_url, api_key=api_key, max_retries=0)
    try:
        with Store(store_path) as store:
            for name in runners:
                keep = name == runners[-1]
                runner = _runner(name, client, store if keep else None, fast_polls)
                results = await _run_with_progress(runner, lexicon, words, console, f"{name} run")
                entries[name] = [r.unwrap() for r in results if isinstance(r, Success)]
                failed = sum(isinstance(r, Failure) for r in results)
                rows.append(RunRow(f"first, {name}", name, runner.report, failed))
            for name in runners:
                runner = _runner(name, client, store, fast_polls)
                results = await _run_with_progress(runner, lexicon, words, console, f"{name} again")
                failed = sum(isinstance(r, Failure) for r in results)
                rows.append(RunRow(f"again, {name}", name, runner.report, failed))
    finally:
        await client.close()
    return DemoResult(tuple(rows), entries)


def _runner(
    name: RunnerName, client: openai.AsyncOpenAI, store: Store | None, fast_polls: bool
) -> ImmediateRunner | BatchRunner:
    if name == "immediate":
        return ImmediateRunner(client, store=store)
    if store is None:  # pragma: no cover - run_demo always gives the batch runner a store
        raise ValueError("the batch runner needs a store")
    if fast_polls:
        return BatchRunner(
            client, store=store, poll_interval=0.05, poll_interval_max=0.25, progress=False
        )
    return BatchRunner(client, store=store)


async def _run_with_progress(
    runner: ImmediateRunner | BatchRunner,
    lexicon: Lexicon,
    words: Sequence[SampleWord],
    console: Console,
    title: str,
) -> list[Result[Entry, RequestError]]:
    """Run every word's entry; on a terminal, a progress bar counts finished entries.

    The bar advances in a ``map`` over each entry's request: it runs when the entry is
    complete, whatever the runner, so the pipeline itself knows nothing of display.
    """
    with Progress(
        TextColumn(f"{title:<16}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("entries"),
        TimeElapsedColumn(),
        console=console,
        disable=not console.is_terminal,
    ) as progress:
        task = progress.add_task(title, total=len(words))

        def done(entry: Entry) -> Entry:
            progress.advance(task)
            return entry

        requests: list[Request[Entry]] = [
            synthesize_entry(lexicon, sample.word, sample.definitions).map(done) for sample in words
        ]
        return await runner.run_all_settled(requests)


def show_entries(console: Console, entries: Sequence[Entry]) -> None:
    """Print entries as trees: pronunciation and facts, then each definition."""
    for entry in entries:
        tree = Tree(
            f"[bold]{entry.word}[/]  /{entry.pronunciation.ipa}/  "
            f"({entry.pronunciation.respelling}, {entry.pronunciation.syllables} syllables)"
        )
        tree.add(f"[dim]etymology[/] {entry.facts.etymology}")
        for number, definition in enumerate(entry.definitions, start=1):
            node = tree.add(
                f"{number}. [italic]{definition.part_of_speech}[/] {definition.text}  "
                f"[dim]({definition.usage_register}, {definition.domain})[/]"
            )
            if definition.synonyms:
                node.add("synonyms: " + ", ".join(s.word for s in definition.synonyms))
            if definition.antonyms:
                node.add("antonyms: " + ", ".join(definition.antonyms))
            if definition.examples:
                node.add(f"e.g. {definition.examples[0]}")
            if definition.word_forms:
                node.add("forms: " + ", ".join(f.form for f in definition.word_forms))
        console.print(tree)


def report_table(rows: Sequence[RunRow]) -> Table:
    """The report of every run: one row per run."""
    table = Table(title="inert demo report", box=box.SIMPLE_HEAD)
    for heading in ("run", "rounds", "built", "dedup", "sent", "cached", "failed"):
        table.add_column(heading, justify="left" if heading == "run" else "right")
    for heading in ("tokens in/out", "cost", "at full price", "wall"):
        table.add_column(heading, justify="right")
    for row in rows:
        report = row.report
        table.add_row(
            row.label,
            str(report.rounds),
            str(report.ops_requested),
            str(report.ops_deduplicated),
            str(report.ops_sent),
            str(report.cache_hits),
            str(row.failed),
            f"{report.prompt_tokens:,}/{report.completion_tokens:,}",
            f"${report.cost_usd:.4f}",
            f"${report.full_price_usd:.4f}",
            f"{report.wall_seconds:.2f}s",
        )
    return table


def summarize(console: Console, result: DemoResult) -> None:
    """The lines under the table: what the numbers mean."""
    console.print(
        "[dim]built: calls in the request trees; dedup: identical calls merged within the "
        "run; sent: distinct calls paid for; cached: answered by the store; rounds: "
        "dependent steps (one batch job per round)[/]"
    )
    first = {row.runner: row.report for row in result.rows if row.label.startswith("first")}
    immediate, batch = first.get("immediate"), first.get("batch")
    if immediate is not None and batch is not None and immediate.cost_usd > 0:
        saved = 1 - batch.cost_usd / immediate.cost_usd
        console.print(
            f"batch cost ${batch.cost_usd:.4f} vs immediate ${immediate.cost_usd:.4f}: "
            f"{saved:.0%} saved, in {batch.rounds} dependent rounds "
            f"({batch.batches_created} batch jobs)"
        )
        same = result.entries["immediate"] == result.entries["batch"]
        console.print(f"immediate and batch entries identical: {'yes' if same else 'no'}")
    again = [row.report for row in result.rows if row.label.startswith("again")]
    sent_again = sum(report.ops_sent for report in again)
    cached_again = sum(report.cache_hits for report in again)
    console.print(f"second run: {sent_again} calls sent, {cached_again} answered from the store")


if __name__ == "__main__":
    raise SystemExit(main())
