"""ReplayRunner reproduces a recorded run and names every op the recording lacks."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from inert import gather_all
from inert._runners._immediate import ImmediateRunner
from inert._store import Store
from inert.emulator import Emulator
from inert.errors import UnansweredError
from inert.testing import ReplayRunner, chat_completion, expect_rounds, key_of

from .pipeline import Gloss, Senses, gloss_of, glossary, senses_of

WORDS = ["bank", "bat", "crane"]


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    """A local OpenAI-compatible server for the recording runs."""
    with Emulator(seed=0) as emu:
        yield emu


@pytest.fixture
async def recorded(emulator: Emulator, tmp_path: Path) -> tuple[Path, list[dict[str, str]], int]:
    """A real (immediate) run of the glossary pipeline, recorded in a store file."""
    path = tmp_path / "recording.sqlite3"
    async with openai.AsyncOpenAI(base_url=emulator.base_url, api_key="test") as client:
        with Store(path) as store:
            runner = ImmediateRunner(client, store=store)
            results = await runner.run_all([glossary(word) for word in WORDS])
    return path, results, runner.report.rounds


async def test_replay_reproduces_the_recorded_results_exactly(
    recorded: tuple[Path, list[dict[str, str]], int],
) -> None:
    """Replaying the store gives the same results, with the same rounds, and asks nothing new."""
    path, results, rounds = recorded
    with Store(path) as store:
        before = store.response_count()
        replay = ReplayRunner(store)
        assert results == await replay.run_all([glossary(word) for word in WORDS])
        assert [] == replay.unanswered
        assert before == store.response_count()
    expect_rounds(replay, rounds)


async def test_ops_missing_from_the_recording_fail_alone_naming_the_op(
    recorded: tuple[Path, list[dict[str, str]], int],
) -> None:
    """A changed prompt is an UnansweredError naming it; recorded ops still succeed."""
    path, _, _ = recorded
    with Store(path) as store:
        replay = ReplayRunner(store)
        new, old = await replay.run_all_settled(
            [gloss_of("bank", "a new sense"), senses_of("bank")]
        )
    error = new.failure()
    assert UnansweredError is type(error)
    assert "Define 'bank' in the sense 'a new sense'." in error.message
    assert key_of(gloss_of("bank", "a new sense"))[:12] in error.message
    assert [key_of(gloss_of("bank", "a new sense"))] == [op.key for op in replay.unanswered]
    assert isinstance(old.unwrap(), Senses)


async def test_fallback_answers_what_the_recording_lacks(
    recorded: tuple[Path, list[dict[str, str]], int],
) -> None:
    """With a fallback, unrecorded ops are answered by it and still listed as unanswered."""
    path, _, _ = recorded
    with Store(path) as store:
        replay = ReplayRunner(store, fallback=lambda op: chat_completion(Gloss(text="made up")))
        glosses = await replay.run(gather_all([gloss_of("bank", "a new sense")]))
    assert [Gloss(text="made up")] == glosses
    assert 1 == len(replay.unanswered)
