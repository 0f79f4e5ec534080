"""The demo's runs: the first run with each runner, then a second run on the store.

The pipeline itself is the example's (``lexicon.synthesize_entry``); this module
only chooses runners, and counts what a run would cost before a real one.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

import anthropic
import attrs
import openai
from returns.result import Success

from inert import BatchRunner, ImmediateRunner, Request, RunReport, Store
from inert.emulator import Emulator
from lexicon import Entry, Lexicon, SampleWord, load_sample, synthesize_entry
from lexicon_demo._options import RunnerName


@attrs.frozen
class RunRow:
    """One line of the report: which run, which runner, what it did."""

    label: str
    runner: RunnerName
    report: RunReport


@attrs.frozen
class DemoResult:
    """Everything the demo did: each run's report and the entries of the first runs."""

    rows: tuple[RunRow, ...]
    entries: dict[RunnerName, list[Entry]]


@attrs.frozen
class Estimate:
    """What the first runs would send and cost, from a dry run on the embedded emulator.

    Attributes:
        calls: distinct calls all first runs send together (the second runs send none).
        usd: their cost at the models' prices, batch discount applied; None when the
            price table has no price for one of the models.
    """

    calls: int
    usd: float | None


def choose_words(count: int, seed: int) -> tuple[SampleWord, ...]:
    """``count`` sample words chosen by ``seed``, in data-set order (most frequent first)."""
    words = load_sample()
    indexes = sorted(random.Random(seed).sample(range(len(words)), count))
    return tuple(words[i] for i in indexes)


def entry_requests(lexicon: Lexicon, words: Sequence[SampleWord]) -> list[Request[Entry]]:
    """One entry request per word: the example's pipeline, unchanged."""
    return [synthesize_entry(lexicon, sample.word, sample.definitions) for sample in words]


async def run_demo(
    words: Sequence[SampleWord],
    *,
    runners: Sequence[RunnerName],
    lexicon: Lexicon,
    client: openai.AsyncOpenAI,
    store: Store,
    fast_polls: bool,
    claude: anthropic.AsyncAnthropic | None = None,
) -> DemoResult:
    """The first run with each runner, then a second run of each on the store.

    With both runners, the first immediate run keeps no store so that the batch run
    pays its own way (the comparison of costs is fair); the batch run fills the
    store. The second runs share that store, so they send nothing. The stages the
    lexicon puts on Claude go through ``claude``, each provider's calls of a round
    through its own batch API.
    """
    rows: list[RunRow] = []
    entries: dict[RunnerName, list[Entry]] = {}
    for name in runners:
        keep = name == runners[-1]
        runner = _runner(name, client, claude, store if keep else None, fast_polls)
        results = await runner.run_all_settled(entry_requests(lexicon, words))
        entries[name] = [r.unwrap() for r in results if isinstance(r, Success)]
        rows.append(RunRow(f"first, {name}", name, runner.report))
    for name in runners:
        runner = _runner(name, client, claude, store, fast_polls)
        await runner.run_all_settled(entry_requests(lexicon, words))
        rows.append(RunRow(f"again, {name}", name, runner.report))
    return DemoResult(tuple(rows), entries)


async def estimate(
    words: Sequence[SampleWord], *, runners: Sequence[RunnerName], lexicon: Lexicon, seed: int
) -> Estimate:
    """Count the first runs' calls and cost by running the pipeline on the emulator.

    Real answers differ from the emulator's, so the figures are an estimate: the
    number of meanings per word, and the answers' lengths, decide the rest.
    """
    with Emulator(time_scale=0.01, seed=seed) as emulator:
        async with (
            openai.AsyncOpenAI(
                base_url=emulator.base_url, api_key="dry-run", max_retries=0
            ) as client,
            anthropic.AsyncAnthropic(
                base_url=emulator.anthropic_base_url, api_key="dry-run", max_retries=0
            ) as claude,
        ):
            runner = ImmediateRunner(openai=client, anthropic=claude, progress=False)
            await runner.run_all_settled(entry_requests(lexicon, words))
    report = runner.report
    usd: float | None = None
    # A model that used tokens but cost nothing has no price: then the sum is no estimate.
    unpriced = [u for u in report.by_model.values() if u.calls and not u.full_price_usd]
    if not unpriced:
        usd = sum(report.full_price_usd * (0.5 if name == "batch" else 1.0) for name in runners)
    return Estimate(calls=report.ops_sent * len(runners), usd=usd)


def _runner(
    name: RunnerName,
    client: openai.AsyncOpenAI,
    claude: anthropic.AsyncAnthropic | None,
    store: Store | None,
    fast_polls: bool,
) -> ImmediateRunner | BatchRunner:
    if name == "immediate":
        return ImmediateRunner(openai=client, anthropic=claude, store=store)
    if store is None:  # pragma: no cover - run_demo always gives the batch runner a store
        raise ValueError("the batch runner needs a store")
    if fast_polls:
        return BatchRunner(
            openai=client,
            anthropic=claude,
            store=store,
            poll_interval=0.05,
            poll_interval_max=0.25,
        )
    return BatchRunner(openai=client, anthropic=claude, store=store)
