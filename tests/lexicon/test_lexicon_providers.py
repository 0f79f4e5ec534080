"""The lexicon on Claude, or on GPT and Claude mixed: same prompts, each stage through its
provider's API, and ``inert demo --provider`` showing one batch job per provider per round."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import anthropic
import openai
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.billing import assert_billed_once, settled_ledger

from inert import BatchRunner, ImmediateRunner, Request, Store
from inert.emulator import Emulator
from inert.testing import FakeRunner, op_of
from lexicon import (
    MIXED_ON_CLAUDE,
    TEMPLATE_NAMES,
    Lexicon,
    MeaningCluster,
    entry_requests,
    load_sample,
)
from lexicon_demo import main

FAST = ["--time-scale", "0.05"]
CLUSTER = MeaningCluster(
    id="sense", part_of_speech="noun", gloss="a sense", source_definition_indexes=[0]
)


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    """A fast emulator serving both providers."""
    with Emulator(time_scale=0.05, seed=4) as emu:
        yield emu


@pytest.fixture(autouse=True)
def no_api_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    """No key in the environment (a test that wants one sets it)."""
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL"):
        monkeypatch.delenv(name, raising=False)


def test_a_stage_on_claude_asks_the_same_prompt_through_anthropics_messages() -> None:
    """The mixed connector's Claude stages carry the GPT stage's prompt, on /v1/messages."""
    gpt, mixed = Lexicon(), Lexicon.for_provider("mixed")
    word = load_sample()[0]
    pairs: list[tuple[str, Request[object], Request[object]]] = [
        ("facts", gpt.facts(word.word), mixed.facts(word.word)),
        ("pronunciation", gpt.pronunciation(word.word), mixed.pronunciation(word.word)),
        ("define", gpt.define(word.word, CLUSTER), mixed.define(word.word, CLUSTER)),
    ]
    for name, on_gpt_request, chosen_request in pairs:
        on_gpt, chosen = op_of(on_gpt_request), op_of(chosen_request)
        expected = "/v1/messages" if name in MIXED_ON_CLAUDE else "/v1/chat/completions"
        assert expected == chosen.endpoint
        assert on_gpt.body["messages"] == chosen.body["messages"]
    claude = op_of(mixed.facts(word.word))
    assert ("claude-haiku-4-5", 1024) == (claude.body["model"], claude.body["max_tokens"])
    assert {"/v1/messages"} == {
        op_of(Lexicon.for_provider("anthropic").facts(w.word)).endpoint for w in load_sample()[:3]
    }


def test_an_unknown_stage_is_refused_naming_the_stages() -> None:
    """on_claude with a misspelt stage is a ValueError listing the real ones."""
    with pytest.raises(ValueError, match=r"no stage 'defne'.*clusters, define"):
        Lexicon(on_claude={"defne"})
    assert set(TEMPLATE_NAMES) == Lexicon.for_provider("anthropic").on_claude


@settings(max_examples=5, deadline=None)
@given(data=st.data())
def test_a_fake_answers_a_mixed_pipeline_in_each_providers_shape(data: st.DataObject) -> None:
    """A FakeRunner drawing answers per op runs the mixed pipeline in three rounds."""
    fake = FakeRunner.from_data(data)
    words = load_sample()[:2]
    entries = fake.run_all_sync(entry_requests(Lexicon.for_provider("mixed"), words))
    assert [s.word for s in words] == [e.word for e in entries]
    assert 3 == fake.report.rounds
    assert {"openai", "anthropic"} == set(fake.report.by_provider)


async def test_mixed_entries_are_identical_now_and_in_batches_and_billed_once(
    emulator: Emulator, tmp_path: Path
) -> None:
    """Immediate and batch runs of the mixed pipeline give equal entries, one batch job per
    provider per round that asks it, every line billed once; a rerun sends nothing."""
    emulator.reset()
    requests = entry_requests(Lexicon.for_provider("mixed"), load_sample()[:3])
    async with (
        openai.AsyncOpenAI(base_url=emulator.base_url, api_key="t") as gpt,
        anthropic.AsyncAnthropic(base_url=emulator.anthropic_base_url, api_key="t") as claude,
    ):
        immediate = ImmediateRunner(openai=gpt, anthropic=claude, progress=False)
        expected = await immediate.run_all(requests)
        paid = set(settled_ledger(emulator).counts())
        emulator.reset()
        with Store(tmp_path / "store.sqlite3") as store:
            batch = BatchRunner(
                openai=gpt, anthropic=claude, store=store, poll_interval=0.01, progress=False
            )
            assert expected == await batch.run_all(requests)
            # round 1: GPT and Claude; round 2: Claude (define); round 3: both.
            assert (3, 5) == (batch.report.rounds, batch.report.batches_created)
            assert (2, 3) == (len(emulator.batch_ids()), len(emulator.message_batch_ids()))
            assert_billed_once(emulator, paid)
            again = BatchRunner(openai=gpt, anthropic=claude, store=store, progress=False)
            assert expected == await again.run_all(requests)
            assert (0, immediate.report.ops_sent) == (
                again.report.ops_sent,
                again.report.cache_hits,
            )
    assert_billed_once(emulator, paid)


def test_the_demo_runs_mixed_with_one_batch_job_per_provider_per_round(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`inert demo --provider mixed`: both runners agree, five batch jobs in three rounds, each
    provider's share of calls and cost shown, the second run served from the store."""
    assert 0 == main(["--words", "2", "--provider", "mixed", "--show", "0", *FAST])
    out = capsys.readouterr().out
    assert (
        "with gpt-4o-mini and claude-haiku-4-5 (define, examples, facts, usage_notes on Claude)"
        in out
    )
    assert re.search(r"\d+% saved, in 3 dependent rounds \(5 batch jobs\)", out)
    assert "immediate and batch entries identical: yes" in out
    assert re.search(
        r"first, batch by provider: OpenAI \d+ calls \$[\d.]+, Anthropic \d+ calls", out
    )
    assert "second run: 0 calls sent" in out


def test_the_demo_runs_all_on_claude(capsys: pytest.CaptureFixture[str]) -> None:
    """`inert demo --provider anthropic` sends every stage to Claude: three Message Batches."""
    assert 0 == main(["--words", "1", "--provider", "anthropic", "--show", "0", *FAST])
    out = capsys.readouterr().out
    assert "1 word with claude-haiku-4-5" in out
    assert re.search(r"in 3 dependent rounds \(3 batch jobs\)", out)
    assert "by provider" not in out  # one provider: nothing to break down


def test_a_real_run_on_claude_needs_the_anthropic_key(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """--real with --provider mixed and no ANTHROPIC_API_KEY: exit 2, naming the variable."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-not-used")
    assert 2 == main(["--real", "--provider", "mixed"])
    err = capsys.readouterr().err
    assert "ANTHROPIC_API_KEY, which is not set" in err
    assert "--provider openai" in err


@pytest.mark.parametrize(
    ("claude_model", "says"),
    [
        ("claude-haiku-4-5", r"about \$\d+\.\d{4} at gpt-4o-mini and claude-haiku-4-5"),
        ("claude-unlisted-1", r"cost unknown \(no price for gpt-4o-mini and claude-unlisted-1"),
    ],
)
def test_a_real_mixed_run_is_estimated_at_both_providers_prices(
    claude_model: str,
    says: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A real mixed run's estimate prices both models; a Claude model without a price makes
    it unknown rather than GPT's share alone. Nothing is sent without confirmation."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-not-used")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-not-used")
    argv = ["--words", "1", "--provider", "mixed", "--claude-model", claude_model]
    assert 2 == main([*argv, "--base-url", "http://127.0.0.1:9/v1"])  # nothing listens there
    captured = capsys.readouterr()
    assert re.search(says, captured.out)
    assert "pass --yes to send" in captured.err
