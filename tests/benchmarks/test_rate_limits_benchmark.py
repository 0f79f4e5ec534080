"""The rate-limit benchmark's own arithmetic, and run_all reading what it prints (no timing)."""

from __future__ import annotations

from benchmarks import rate_limits, run_all

SAMPLE = (
    "rate limits: 5000 requests of 516 tokens on average, RPM 6,000, TPM 2,400,000, rate "
    "window 2 s, latency 50 ms, concurrency 64\n"
    "inert (learns limits): wall 70.1 s, sustained 77.2 req/s and 39,900 tokens/s (99.8% of "
    "the binding limit: tokens), 429s 3 (0.06% of calls), answered 5000/5000, failed 0\n"
    "raw SDK + semaphore: wall 60.0 s, sustained 78.0 req/s and 40,100 tokens/s (100.3% of "
    "the binding limit: tokens), 429s 5120 (102.40% of calls), answered 3900/5000, failed 1100\n"
    "inert with fixed rpm=6000: wall 72.0 s, sustained 76.0 req/s and 39,000 tokens/s (97.5% "
    "of the binding limit: tokens), 429s 1400 (28.00% of calls), answered 4990/5000, failed 10\n"
)


def test_run_all_reads_every_contenders_figures() -> None:
    """Shares of the limit, 429 shares and answers are read for all three contenders."""
    figures = run_all.parse_rate_limits(SAMPLE)
    assert (5000, 99.8, 0.06, 5000) == (
        figures["requests"],
        figures["inert_share"],
        figures["inert_429_share"],
        figures["inert_answered"],
    )
    assert (102.4, 3900) == (figures["raw_429_share"], figures["raw_answered"])
    assert (97.5, 4990) == (figures["fixed_share"], figures["fixed_answered"])


def test_the_summary_row_holds_the_learning_runner_to_its_goals() -> None:
    """The learning runner's row is met only with >= 95%, < 1% 429 and every request answered."""
    run = {"missing": False, "ok": True, **run_all.parse_rate_limits(SAMPLE)}
    rows = run_all._rate_limit_rows(run)
    assert "yes" == rows[0][3]
    assert "**no**" == run_all._rate_limit_rows({**run, "inert_answered": 4999})[0][3]
    assert "**no**" == run_all._rate_limit_rows({**run, "inert_429_share": 1.5})[0][3]
    assert 3 == len(rows)


def test_sustained_pace_is_measured_between_the_tenth_and_ninetieth_answer() -> None:
    """Ten answers a second with 100 tokens each read as 10 req/s and 1,000 tokens/s."""
    done = [(i / 10, 100) for i in range(100)]
    requests_per_s, tokens_per_s = rate_limits.sustained(done)
    assert (10.0, 1000.0) == (round(requests_per_s, 6), round(tokens_per_s, 6))


def test_the_workload_mixes_sizes_deterministically() -> None:
    """Every prompt size and output limit occurs, and the same N gives the same bodies."""
    bodies = rate_limits.workload(300)
    assert bodies == rate_limits.workload(300)
    assert set(rate_limits.MAX_TOKENS) == {b["max_tokens"] for b in bodies}
    words = {b["messages"][0]["content"].count("word") for b in bodies}
    assert set(rate_limits.PROMPT_WORDS) == words
