"""The run report's breakdown and usage sums at their edges, with exact figures.

Unit-level: reports built directly, so each edge (one provider only the second in
order, one model billed by two providers, a usage without a price) has its exact
lines, and sums of usages keep every figure.
"""

from __future__ import annotations

from inert._report import ReportBuilder, RunReport, Usage


def usage(
    provider: str, calls: int, prompt: int, completion: int, cost: float, full: float
) -> Usage:
    assert provider in ("openai", "anthropic")
    return Usage(
        provider="openai" if provider == "openai" else "anthropic",
        calls=calls,
        prompt_tokens=prompt,
        completion_tokens=completion,
        cost_usd=cost,
        full_price_usd=full,
    )


def test_usages_add_up_every_figure_and_keep_the_first_provider() -> None:
    a = usage("anthropic", 1, 10, 20, 0.1, 0.2)
    b = usage("openai", 2, 30, 40, 0.2, 0.4)
    total = a + b
    assert usage("anthropic", 3, 40, 60, 0.3, 0.6) == total
    assert ("anthropic", 0.3, 0.6) == (total.provider, total.cost_usd, total.full_price_usd)
    assert isinstance(total.full_price_usd, float)
    assert (
        0.0000000003
        == (
            usage("openai", 0, 0, 0, 0, 0.0000000001) + usage("openai", 0, 0, 0, 0, 0.0000000002)
        ).full_price_usd
    )


def test_a_usage_with_tokens_but_no_price_says_so() -> None:
    assert "1 call, 5 in, 0 out, no price known" == str(usage("openai", 1, 5, 0, 0.0, 0.0))
    assert "1 call, 0 in, 7 out, no price known" == str(usage("openai", 1, 0, 7, 0.0, 0.0))
    assert "2 calls, 0 in, 0 out, $0.0000" == str(usage("openai", 2, 0, 0, 0.0, 0.0))
    assert "1 call, 5 in, 3 out, $0.000100" == str(usage("openai", 1, 5, 3, 0.0001, 0.0002))


def test_a_run_of_only_the_second_provider_still_lists_its_models() -> None:
    first = usage("anthropic", 1, 10, 1, 0.001, 0.002)
    second = usage("anthropic", 2, 20, 2, 0.002, 0.004)
    report = RunReport(
        by_model={"claude-b": second, "claude-a": first},
        by_provider={"anthropic": first + second},
    )
    assert [
        "  claude-a: 1 call, 10 in, 1 out, $0.001000",
        "  claude-b: 2 calls, 20 in, 2 out, $0.002000",
    ] == report.breakdown_lines()


def test_one_model_billed_by_two_providers_shows_the_providers_only() -> None:
    """A body naming the same model to both providers: one model line would repeat the
    provider's, so only the providers are listed."""
    openai_part = usage("openai", 1, 10, 1, 0.01, 0.02)
    anthropic_part = usage("anthropic", 1, 20, 2, 0.02, 0.04)
    report = RunReport(
        by_model={"-": openai_part + anthropic_part},
        by_provider={"openai": openai_part, "anthropic": anthropic_part},
    )
    lines = report.breakdown_lines()
    assert 2 == len(lines)
    assert "  OpenAI: 1 call, 10 in, 1 out, $0.0100" == lines[0]
    assert "  Anthropic: 1 call, 20 in, 2 out, $0.0200" == lines[1]


def test_one_model_of_one_provider_adds_no_lines() -> None:
    only = usage("openai", 1, 10, 1, 0.01, 0.02)
    assert [] == RunReport(by_model={"m": only}, by_provider={"openai": only}).breakdown_lines()
    assert [] == RunReport().breakdown_lines()


def test_a_model_billed_by_two_providers_sums_both_in_by_model() -> None:
    builder = ReportBuilder()
    builder.add_usage("openai", "m", (1, 10, 1, 0.01, 0.02))
    builder.add_usage("anthropic", "m", (2, 20, 2, 0.02, 0.04))
    builder.add_usage("openai", "m", (1, 5, 5, 0.005, 0.01))
    builder.add_usage("openai", None, (1, 1, 1, 0.001, 0.002))
    report = builder.freeze()
    assert {
        "m": usage("anthropic", 4, 35, 8, 0.035, 0.07),
        "-": usage("openai", 1, 1, 1, 0.001, 0.002),
    } == dict(report.by_model)
    assert {
        "openai": usage("openai", 3, 16, 7, 0.016, 0.032),
        "anthropic": usage("anthropic", 2, 20, 2, 0.02, 0.04),
    } == dict(report.by_provider)


def test_ops_another_run_answered_while_sending_are_cache_hits_counted_once() -> None:
    """Ops a runner was to send but another run's call answered (it paid for them) move
    from sent to cache hits, each once however often they are noted."""
    builder = ReportBuilder(ops_sent=5, cache_hits=1)
    builder.answered_elsewhere(["a", "b"])
    builder.answered_elsewhere(["b", "c"])
    report = builder.freeze()
    assert (2, 4) == (report.ops_sent, report.cache_hits)
    assert not hasattr(report, "elsewhere")
