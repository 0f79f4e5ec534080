"""``RunReport``: what one run did and cost, with a readable ``str()`` and rich rendering."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Final

import attrs

from inert._errors import ApiError, RequestError
from inert._providers import NAMES, PROVIDERS, Provider

if TYPE_CHECKING:
    from rich.console import Console, ConsoleOptions, RenderResult

MONEY_DIGITS: Final = 10
"""Dollar figures are rounded to 1e-10 USD: sums of per-call costs keep no float noise."""


@attrs.frozen(kw_only=True)
class FailureGroup:
    """Failed requests of one run that ended in the same kind of error.

    Attributes:
        kind: the error's class, with the HTTP status for an API error
            (``"ApiError 401"``, ``"RefusalError"``).
        count: how many of the run's requests ended in it.
        example: the message of the first of them, such as the API's own text
            (``"HTTP 401: Incorrect API key provided"``).
    """

    kind: str
    count: int
    example: str

    def __str__(self) -> str:
        return f"{self.kind} ×{self.count}: {self.example}"


@attrs.frozen(kw_only=True)
class Usage:
    """What one model's (or one provider's) calls of a run used and cost.

    Attributes:
        provider: the provider that served these calls (``"openai"``, ``"anthropic"``).
        calls: answers billed in this run that reported their ``usage`` (every
            answer of a real API does; a fake's answer may not).
        prompt_tokens: input tokens billed, from the answers' ``usage``.
        completion_tokens: output tokens billed.
        cost_usd: estimated cost, batch discount applied (rounded to 1e-10 USD);
            0 for a model missing from the price table.
        full_price_usd: the same calls at the immediate (undiscounted) price.
    """

    provider: Provider = "openai"
    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    full_price_usd: float = 0.0

    def __add__(self, other: Usage) -> Usage:
        """Both usages together (the provider is this one's)."""
        return Usage(
            provider=self.provider,
            calls=self.calls + other.calls,
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
            cost_usd=round(self.cost_usd + other.cost_usd, MONEY_DIGITS),
            full_price_usd=round(self.full_price_usd + other.full_price_usd, MONEY_DIGITS),
        )

    def __str__(self) -> str:
        priced = (
            money(self.cost_usd)
            if self.full_price_usd or not (self.prompt_tokens or self.completion_tokens)
            else "no price known"
        )
        return (
            f"{counted(self.calls, 'call')}, {self.prompt_tokens:,} in, "
            f"{self.completion_tokens:,} out, {priced}"
        )


@attrs.frozen(kw_only=True)
class RunReport:
    """The figures of one runner's last run.

    ``rounds`` and ``round_sizes`` mean the same in both scheduling modes. The batch
    runner (rounds mode) waits for a whole round before the next one starts: round
    ``k`` is the ``k``-th batch of calls and ``round_sizes[k - 1]`` its distinct
    ops. The immediate runner (pipelined) has no barrier: a call goes out as soon
    as its inputs arrive, so its rounds are the levels of data dependency, and
    ``round_sizes[k - 1]`` counts the distinct ops that needed ``k - 1`` answers
    before them. In both, ``len(round_sizes) == rounds``.

    Every op the run needed is either deduplicated, a cache hit or sent;
    ``ops_sent - ops_paid`` calls were sent but not answered (an error status, a
    dropped connection, an expired batch line), and are not billed.

    ``str(report)`` gives a few readable lines, and rich renders it as a table
    (``rich.print(report)``).

    Attributes:
        rounds: dependency rounds that needed calls (a run of pure values takes 0).
        round_sizes: distinct ops resolved in each round (from the store or the API).
        ops_requested: calls reached in the request trees, repeats included.
        ops_deduplicated: calls answered by another identical call of the same run.
        cache_hits: distinct ops answered without an API call of this run: from the
            store, or by the identical call of another run on the same store or runner
            (one it waited for).
        ops_sent: distinct ops sent to the API (each at least once).
        ops_paid: distinct ops the API answered, which it bills.
        retries: extra attempts (HTTP retries, resubmitted batch lines).
        batches_created: Batch API jobs created in this run.
        requests_failed: top-level requests that ended in a RequestError.
        failures: those failed requests grouped by kind of error, most frequent
            first, each with a count and one example message.
        prompt_tokens: input tokens billed in this run, from the responses' ``usage``.
        completion_tokens: output tokens billed in this run.
        cost_usd: estimated cost of this run's calls, batch discount applied
            (rounded to 1e-10 USD).
        full_price_usd: the same calls at the immediate (undiscounted) price.
        wall_seconds: elapsed time of the run.
        by_model: the tokens, calls and cost above broken down by the model named
            in each call's body (``"-"`` for a call whose body names none).
        by_provider: the same broken down by provider (``"openai"``,
            ``"anthropic"``), decided by each call's endpoint; only providers this
            run paid for appear.
    """

    rounds: int = 0
    round_sizes: tuple[int, ...] = ()
    ops_requested: int = 0
    ops_deduplicated: int = 0
    cache_hits: int = 0
    ops_sent: int = 0
    ops_paid: int = 0
    retries: int = 0
    batches_created: int = 0
    requests_failed: int = 0
    failures: tuple[FailureGroup, ...] = ()
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    full_price_usd: float = 0.0
    wall_seconds: float = 0.0
    by_model: Mapping[str, Usage] = attrs.field(factory=dict, hash=False)
    by_provider: Mapping[Provider, Usage] = attrs.field(factory=dict, hash=False)

    def breakdown_lines(self) -> list[str]:
        """The per-provider and per-model lines under the tokens line (none for one model).

        A provider line is shown when the run paid more than one provider, a model
        line when it used more than one model; model lines sit under their provider's.
        """
        if len(self.by_model) < 2 and len(self.by_provider) < 2:
            return []
        several = len(self.by_provider) > 1
        lines: list[str] = []
        for provider in PROVIDERS:
            usage = self.by_provider.get(provider)
            if usage is None:
                continue
            if several:
                lines.append(f"  {NAMES[provider]}: {usage}")
            models = sorted(m for m, u in self.by_model.items() if u.provider == provider)
            if len(self.by_model) > 1:
                indent = "    " if several else "  "
                lines += [f"{indent}{model}: {self.by_model[model]}" for model in models]
        return lines

    def summary_lines(self) -> list[str]:
        """The report as a few lines of prose (what ``str()`` joins)."""
        sizes = " / ".join(f"{size:,}" for size in self.round_sizes) or "none"
        lines = [
            f"{counted(self.rounds, 'round')} (distinct calls per round: {sizes}), "
            f"{self.wall_seconds:.2f}s",
            f"calls: {self.ops_requested:,} built, {self.ops_deduplicated:,} merged as "
            f"duplicates, {self.cache_hits:,} from the store, {self.ops_sent:,} sent, "
            f"{self.ops_paid:,} paid, {counted(self.retries, 'retry', 'retries')}"
            + (f", {counted(self.batches_created, 'batch job')}" if self.batches_created else ""),
            f"tokens: {self.prompt_tokens:,} in, {self.completion_tokens:,} out; "
            f"cost {money(self.cost_usd)} ({money(self.full_price_usd)} at the immediate price)",
            *self.breakdown_lines(),
        ]
        if self.requests_failed:
            lines.append(f"failed: {counted(self.requests_failed, 'request')}")
            lines += [f"  {group}" for group in self.failures]
        else:
            lines.append("failed: none")
        return lines

    def __str__(self) -> str:
        return "\n".join(self.summary_lines())

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        from rich import box
        from rich.table import Table

        table = Table(box=box.SIMPLE_HEAD, show_header=False, title="run report")
        table.add_column("figure", style="bold")
        table.add_column("value", overflow="fold")
        breakdown = self.breakdown_lines()
        head, calls, tokens, *rest = self.summary_lines()
        failed, *groups = rest[len(breakdown) :]
        table.add_row("rounds", head)
        table.add_row("calls", calls.removeprefix("calls: "))
        table.add_row("tokens", tokens.removeprefix("tokens: "))
        for line in breakdown:
            table.add_row("", line.removeprefix("  "))
        table.add_row("failed", failed.removeprefix("failed: "))
        for group in groups:
            table.add_row("", group.strip())
        yield table


def money(usd: float) -> str:
    """Dollars for people: four decimals, or more for amounts under a cent."""
    if usd == 0 or abs(usd) >= 0.01:
        return f"${usd:,.4f}"
    return f"${usd:.6f}"


def counted(n: int, singular: str, plural: str | None = None) -> str:
    """``"1 round"``, ``"2 rounds"``: a count with its noun in the right number."""
    return f"{n:,} {singular if n == 1 else (plural or singular + 's')}"


def failure_kind(error: RequestError) -> str:
    """How failures are grouped: the error's class, and the HTTP status of an API error."""
    name = type(error).__name__
    if isinstance(error, ApiError) and error.status is not None:
        return f"{name} {error.status}"
    return name


def group_failures(errors: Iterable[RequestError]) -> tuple[FailureGroup, ...]:
    """Errors grouped by :func:`failure_kind`, most frequent first (ties: first seen)."""
    counts: dict[str, int] = {}
    examples: dict[str, str] = {}
    for error in errors:
        kind = failure_kind(error)
        counts[kind] = counts.get(kind, 0) + 1
        examples.setdefault(kind, error.message)
    order = sorted(counts, key=lambda kind: -counts[kind])  # stable: first seen wins ties
    return tuple(FailureGroup(kind=k, count=counts[k], example=examples[k]) for k in order)


@attrs.define(kw_only=True)
class ReportBuilder:
    """The mutable counters a run fills in; :meth:`freeze` makes the ``RunReport``."""

    rounds: int = 0
    round_sizes: list[int] = attrs.field(factory=list)
    ops_requested: int = 0
    ops_deduplicated: int = 0
    cache_hits: int = 0
    ops_sent: int = 0
    ops_paid: int = 0
    retries: int = 0
    batches_created: int = 0
    requests_failed: int = 0
    failures: tuple[FailureGroup, ...] = ()
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    full_price_usd: float = 0.0
    wall_seconds: float = 0.0
    usage: dict[tuple[Provider, str], list[float]] = attrs.field(factory=dict)
    """Per (provider, model): ``[calls, prompt, completion, cost, full price]``."""
    elsewhere: set[str] = attrs.field(factory=set)
    """Keys of ops handed to the runner to send that another run's call answered instead
    (read from the store once that run stored it, or shared while in flight): counted as
    cache hits, never as sent or paid, so the reports of runs that share a store or a
    runner add up to what was billed."""

    def answered_elsewhere(self, keys: Iterable[str]) -> None:
        """Count ops that were to be sent, and that another run's call answered, as cache hits.

        Called by a runner while it sends a round, after ``ops_sent`` counted them; each
        key counts once however often it is noted.
        """
        new = set(keys) - self.elsewhere
        self.elsewhere |= new
        self.cache_hits += len(new)
        self.ops_sent -= len(new)

    def add_usage(
        self,
        provider: Provider,
        model: str | None,
        figures: tuple[int, int, int, float, float],
    ) -> None:
        """Count ``(calls, prompt, completion, cost, full price)`` for one provider's model."""
        key = (provider, "-" if model is None else model)
        totals = self.usage.get(key)
        if totals is None:
            self.usage[key] = list(figures)
        else:
            for i, figure in enumerate(figures):
                totals[i] += figure

    def freeze(self) -> RunReport:
        """The report as an immutable value, its money rounded to 1e-10 USD."""
        values = attrs.asdict(self, recurse=False)
        del values["usage"]
        del values["elsewhere"]
        values["round_sizes"] = tuple(self.round_sizes)
        values["cost_usd"] = round(self.cost_usd, MONEY_DIGITS)
        values["full_price_usd"] = round(self.full_price_usd, MONEY_DIGITS)
        by_model: dict[str, Usage] = {}
        by_provider: dict[Provider, Usage] = {}
        for (provider, model), (calls, prompt, completion, cost, full) in sorted(
            self.usage.items()
        ):
            usage = Usage(
                provider=provider,
                calls=int(calls),
                prompt_tokens=int(prompt),
                completion_tokens=int(completion),
                cost_usd=round(cost, MONEY_DIGITS),
                full_price_usd=round(full, MONEY_DIGITS),
            )
            by_model[model] = by_model[model] + usage if model in by_model else usage
            by_provider[provider] = (
                by_provider[provider] + usage if provider in by_provider else usage
            )
        return RunReport(**values, by_model=by_model, by_provider=by_provider)
