"""What the demo prints: where calls go, a few entries, the report and what it means."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final, Literal

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.tree import Tree

from inert import RunReport
from lexicon import Entry
from lexicon_demo._runs import DemoResult, Estimate, RunRow

PROVIDER_NAMES: Final[Mapping[Literal["openai", "anthropic"], str]] = {
    "openai": "OpenAI",
    "anthropic": "Anthropic",
}
"""How the lines name each provider of ``RunReport.by_provider``, in this order."""

LEGEND = (
    "built: calls in the request trees; dedup: identical calls merged within the run; "
    "cached: answered by the store; sent: distinct calls sent to the API; paid: those it "
    "answered, which it bills (a rejected call is sent, not paid); failed: entries that "
    "could not be made; rounds: dependent steps (one batch job per round and provider); "
    "full price: "
    "the same calls at the immediate price"
)


def plural(count: int, noun: str, nouns: str | None = None) -> str:
    """``"1 word"``, ``"12 words"``; ``nouns`` for an irregular plural."""
    return f"{count:,} {noun if count == 1 else (nouns or noun + 's')}"


def where_line(base_url: str, *, real: bool, key_in_environment: bool) -> str:
    """The header line that says exactly where the calls go."""
    if real:
        return f"calls go to {base_url}: a real endpoint, billed to the key in OPENAI_API_KEY"
    line = (
        f"calls go to the embedded emulator at {base_url}: local and free, "
        "its answers are placeholder words"
    )
    if key_in_environment:
        line += " (OPENAI_API_KEY is set but not used: --real or --base-url call a real API)"
    return line


def estimate_line(estimate: Estimate, model: str) -> str:
    """The estimate shown before a real run asks for confirmation."""
    cost = (
        f"about ${estimate.usd:.4f} at {model} prices"
        if estimate.usd is not None
        else f"cost unknown (no price for {model} in inert's table)"
    )
    return (
        f"this run sends about {plural(estimate.calls, 'call')}, {cost} (from a dry run on "
        "the embedded emulator; a real model's answers change the figures)"
    )


def show_entries(console: Console, entries: Sequence[Entry]) -> None:
    """Print entries as trees: pronunciation and facts, then each definition."""
    for entry in entries:
        tree = Tree(
            f"[bold]{escape(entry.word)}[/]  /{escape(entry.pronunciation.ipa)}/  "
            f"({escape(entry.pronunciation.respelling)}, "
            f"{plural(entry.pronunciation.syllables, 'syllable')})"
        )
        tree.add(f"[dim]etymology[/] {escape(entry.facts.etymology)}")
        for number, definition in enumerate(entry.definitions, start=1):
            node = tree.add(
                f"{number}. [italic]{definition.part_of_speech}[/] {escape(definition.text)}  "
                f"[dim]({definition.usage_register}, {escape(definition.domain)})[/]"
            )
            if definition.synonyms:
                node.add("synonyms: " + escape(", ".join(s.word for s in definition.synonyms)))
            if definition.antonyms:
                node.add("antonyms: " + escape(", ".join(definition.antonyms)))
            if definition.examples:
                node.add(f"e.g. {escape(definition.examples[0])}")
            if definition.word_forms:
                node.add("forms: " + escape(", ".join(f.form for f in definition.word_forms)))
        console.print(tree)


def report_table(rows: Sequence[RunRow]) -> Table:
    """The report of every run: one row per run."""
    table = Table(
        title="inert demo report", box=box.SIMPLE_HEAD, collapse_padding=True, pad_edge=False
    )
    table.add_column("run", no_wrap=True)
    for heading in ("rounds", "built", "dedup", "cached", "sent", "paid", "failed"):
        table.add_column(heading, justify="right")
    for heading in ("tokens in/out", "cost", "full price", "wall"):
        table.add_column(heading, justify="right", no_wrap=True)
    for row in rows:
        report = row.report
        table.add_row(
            row.label,
            str(report.rounds),
            str(report.ops_requested),
            str(report.ops_deduplicated),
            str(report.cache_hits),
            str(report.ops_sent),
            str(report.ops_paid),
            str(report.requests_failed),
            f"{report.prompt_tokens:,}/{report.completion_tokens:,}",
            f"${report.cost_usd:.4f}",
            f"${report.full_price_usd:.4f}",
            f"{report.wall_seconds:.2f}s",
        )
    return table


def failure_lines(rows: Sequence[RunRow]) -> list[str]:
    """Why entries failed: per run, each kind of error with its count and one message."""
    lines: list[str] = []
    for row in rows:
        report = row.report
        if not report.requests_failed:
            continue
        lines.append(f"{row.label}: {plural(report.requests_failed, 'entry', 'entries')} failed")
        lines += [f"  {group.kind} ×{group.count}: {group.example}" for group in report.failures]
    return lines


def summarize(console: Console, result: DemoResult) -> None:
    """The lines under the table: what the numbers mean, failures first."""
    failures = failure_lines(result.rows)
    if failures:
        console.print("[bold red]failures[/]")
        for line in failures:
            console.print(escape(line), soft_wrap=True)
    console.print(f"[dim]{LEGEND}[/]")
    first = {row.runner: row.report for row in result.rows if row.label.startswith("first")}
    immediate, batch = first.get("immediate"), first.get("batch")
    if immediate is not None and batch is not None and immediate.cost_usd > 0:
        saved = 1 - batch.cost_usd / immediate.cost_usd
        console.print(
            f"batch cost ${batch.cost_usd:.4f} vs immediate ${immediate.cost_usd:.4f}: "
            f"{saved:.0%} saved, in {plural(batch.rounds, 'dependent round')} "
            f"({plural(batch.batches_created, 'batch job')})"
        )
        same = result.entries["immediate"] == result.entries["batch"]
        console.print(f"immediate and batch entries identical: {'yes' if same else 'no'}")
    for row in result.rows:
        if row.label.startswith("first") and len(row.report.by_provider) > 1:
            console.print(provider_line(row))
    again = [row.report for row in result.rows if row.label.startswith("again")]
    console.print(second_run_line(again))


def provider_line(row: RunRow) -> str:
    """What each provider's calls of one run took and cost (for a run that asked several)."""
    parts = [
        f"{name} {plural(usage.calls, 'call')} ${usage.cost_usd:.4f}"
        for provider, name in PROVIDER_NAMES.items()
        if (usage := row.report.by_provider.get(provider)) is not None
    ]
    return f"{row.label} by provider: " + ", ".join(parts)


def second_run_line(again: Sequence[RunReport]) -> str:
    """What the second runs on the store sent and what the store answered."""
    sent = sum(report.ops_sent for report in again)
    cached = sum(report.cache_hits for report in again)
    return f"second run: {plural(sent, 'call')} sent, {cached:,} answered from the store"
