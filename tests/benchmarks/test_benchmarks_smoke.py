"""Smoke tests of the pure-Python benchmarks at tiny sizes: structure and sanity, never timing."""

from __future__ import annotations

import asyncio

import pytest

from benchmarks import (
    _fakeapi,
    _generic,
    builder_overhead,
    engine_overhead,
    import_time,
    lexicon_rounds,
    run_all,
)
from inert import Op
from inert._json import canonical_dumps
from inert.testing import FakeRunner
from lexicon import Lexicon, entry_requests


def test_engine_overhead_reports_every_shape_with_its_rounds() -> None:
    """Each shape yields one row per size, with the rounds its dependencies imply."""
    result = engine_overhead.run(sizes=[40], repeats=1)
    rows = {row["shape"]: row for row in result["rows"]}
    assert set(engine_overhead.SHAPES) == set(rows)
    assert 1 == rows["wide"]["rounds"]
    assert 40 == rows["deep"]["rounds"]
    assert 3 == rows["lexicon"]["rounds"]
    assert 40 == rows["wide"]["ops_requested"]
    for row in rows.values():
        assert row["inert_us_per_op"] > 0
        assert row["ratio"] > 0
    assert rows["lexicon"]["ratio_vs_sdk_loop"] is not None


def test_growth_slope_of_linear_times_is_one() -> None:
    """The log-log slope of times proportional to size is 1."""
    assert 1.0 == round(engine_overhead.slope([1_000, 10_000, 100_000], [0.5, 5.0, 50.0]), 9)


def test_lexicon_takes_three_rounds_and_fewer_calls_than_the_hand_written_pipeline() -> None:
    """inert needs 3 rounds and sends each distinct call once; the usual code needs 3 per word."""
    row = lexicon_rounds.compare(5)
    inert, hand = row["inert"], row["hand_written"]
    assert 3 == inert["rounds"]
    assert 15 == hand["rounds"]
    assert inert["calls_sent"] < hand["calls_sent"]
    assert hand["distinct_calls"] == inert["calls_sent"]
    assert inert["calls_built"] == hand["calls_sent"]


def test_hand_written_baselines_send_the_bodies_inert_sends() -> None:
    """The baselines build byte-identical bodies, so the comparison is like for like."""
    words = _fakeapi.words(3)
    fake = FakeRunner(_fakeapi.respond)
    asyncio.run(fake.run_all(entry_requests(Lexicon(), words)))
    client = lexicon_rounds.FakeAsyncClient()
    conn = lexicon_rounds.HandWrittenConnector(client)

    async def hand() -> None:
        for sample in words:
            await lexicon_rounds.hand_written_entry(conn, sample, lexicon_rounds.Stages())

    asyncio.run(hand())
    assert {canonical_dumps(op.body) for op in fake.calls} == set(client.bodies)


def test_run_all_reads_the_figures_the_runner_benchmarks_print() -> None:
    """The figures of the subprocess benchmarks are parsed from their text output."""
    immediate = run_all.parse_immediate(
        "median over 4 repetitions of N=1000, concurrency 64, latency 20.0 ms: "
        "wall ratio 0.512 (meets the 0.6 goal), CPU ratio 0.950\n"
        "inert's own functions: 2.5% of the inert run's CPU profile (meets the 5% goal; ...)"
    )
    batch = run_all.parse_batch(
        "50,000 requests; input JSONL 30.1 MB; output 20.0 MB\n"
        "build+write JSONL : inert   120.0 ms   json.dumps loop   100.0 ms   ratio 1.20x   "
        "peak 40.0 MB (bare 30.0 MB)\n"
        "parse+decode      : inert   300.0 ms   model_validate_json   200.0 ms   ratio 1.50x   "
        "peak 50.0 MB (bare 20.0 MB)\n"
        "store answers     :   800.0 ms (one SQLite transaction, not in a ratio)"
    )
    assert {"wall_ratio": 0.512, "cpu_ratio": 0.95, "own_share": 2.5} == immediate
    assert 50_000 == batch["requests"]
    assert 1.2 == batch["write_ratio"]
    assert 1.5 == batch["decode_ratio"]
    assert 20.0 == batch["decode_peak_bare_mb"]
    assert 800.0 == batch["store_ms"]


def test_run_all_keeps_the_blocks_other_scripts_wrote_in_the_report() -> None:
    """A marked block of the old report (store_throughput's) is carried into the new one."""
    block = (
        "<!-- begin: store_throughput (benchmarks/store_throughput.py) -->\n"
        "## Store throughput\n\n| backend | ops/s |\n<!-- end: store_throughput -->"
    )
    old = f"# Benchmarks\n\nold figures\n\n{block}\n\n## How to reproduce\n"
    kept = run_all.kept_blocks(old)
    assert [block] == kept
    assert ["", block] == run_all.kept_section(kept)


def test_engine_overhead_measures_the_generic_shapes_against_the_floor() -> None:
    """The floor computes the same values, and every generic shape has a ratio to it."""
    assert _generic.wide_floor(30) == _generic.wide_baseline(30)
    assert _generic.deep_floor(30) == _generic.deep_baseline(30)
    result = engine_overhead.run(sizes=[30], repeats=1, shapes=engine_overhead.FLOOR_SHAPES)
    for row in result["rows"]:
        assert row["floor_us_per_op"] > 0
        assert row["ratio_vs_floor"] > 0


def test_the_floor_key_is_the_op_key() -> None:
    """The floor hashes exactly what an op's key hashes, so it does the same work."""
    body = _generic.generic_body(7)
    op = Op(endpoint=_generic.ENDPOINT, body=body, decode=_generic.decode_int)
    assert op.key == _generic.floor_key(body)


def test_builder_overhead_compares_identical_bodies() -> None:
    """Both sides key the same bodies (it raises otherwise) and the ratio is reported."""
    result = builder_overhead.run(requests=20, repeats=1)
    assert 20 == result["requests"]
    assert result["ratio"] > 0
    assert "structured() build + key" in builder_overhead.render_text(result)


def test_import_time_times_every_command_in_a_fresh_interpreter() -> None:
    """Each command runs and gets a positive median; the two goals are reported."""
    result = import_time.run(repeats=1)
    assert set(import_time.COMMANDS) == set(result["seconds"])
    assert all(seconds > 0 for seconds in result["seconds"].values())
    assert {"import inert", "inert --help"} == set(result["goals"])


def test_instruction_counts_leave_out_the_one_off_costs(monkeypatch: pytest.MonkeyPatch) -> None:
    """Per op is the difference of two runs' counts over the difference of their ops."""
    per_op = {"inert": 50, "floor": 20}

    def counted(side: str, shape: str, n: int) -> int:
        return 1_000_000 + per_op[side] * n  # a start-up cost, then a cost per op

    monkeypatch.setattr(engine_overhead, "count_instructions", counted)
    result = engine_overhead.instructions(["deep"], [100, 300])
    (row,) = result["rows"]
    assert (row["inert_instructions_per_op"], row["floor_instructions_per_op"]) == (50.0, 20.0)
    assert row["ratio_vs_floor"] == 2.5
    assert "2.50" in engine_overhead.render_instructions(result)


def test_the_floor_ratio_is_the_median_of_interleaved_pairs() -> None:
    """Every generic row gives its pairs' range around the median ratio."""
    result = engine_overhead.run(sizes=[20], repeats=3, shapes=["deep"])
    (row,) = result["rows"]
    low, high = row["ratio_vs_floor_range"]
    assert low <= row["ratio_vs_floor"] <= high
