"""``RunReport``: what one run did and cost."""

from __future__ import annotations

import attrs


@attrs.frozen(kw_only=True)
class RunReport:
    """The figures of one runner's last run.

    Attributes:
        rounds: dependency rounds that needed calls (a run of pure values takes 0).
        round_sizes: distinct ops resolved in each round (from the store or the API).
        ops_requested: calls reached in the request trees, repeats included.
        ops_deduplicated: calls answered by another identical call of the same run.
        cache_hits: distinct ops answered from the store without an API call.
        ops_sent: distinct ops sent to the API (each at least once).
        retries: extra attempts (HTTP retries, resubmitted batch lines).
        batches_created: Batch API jobs created in this run.
        requests_failed: top-level requests that ended in a RequestError.
        prompt_tokens: input tokens billed in this run, from the responses' ``usage``.
        completion_tokens: output tokens billed in this run.
        cost_usd: estimated cost of this run's calls, batch discount applied.
        full_price_usd: the same calls at the immediate (undiscounted) price.
        wall_seconds: elapsed time of the run.
    """

    rounds: int = 0
    round_sizes: tuple[int, ...] = ()
    ops_requested: int = 0
    ops_deduplicated: int = 0
    cache_hits: int = 0
    ops_sent: int = 0
    retries: int = 0
    batches_created: int = 0
    requests_failed: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    full_price_usd: float = 0.0
    wall_seconds: float = 0.0


@attrs.define(kw_only=True)
class ReportBuilder:
    """The mutable counters a run fills in; :meth:`freeze` makes the ``RunReport``."""

    rounds: int = 0
    round_sizes: list[int] = attrs.field(factory=list)
    ops_requested: int = 0
    ops_deduplicated: int = 0
    cache_hits: int = 0
    ops_sent: int = 0
    retries: int = 0
    batches_created: int = 0
    requests_failed: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    full_price_usd: float = 0.0
    wall_seconds: float = 0.0

    def freeze(self) -> RunReport:
        """The report as an immutable value."""
        values = attrs.asdict(self, recurse=False)
        values["round_sizes"] = tuple(self.round_sizes)
        return RunReport(**values)
