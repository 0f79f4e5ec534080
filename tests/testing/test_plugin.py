"""The pytest plugin's fixtures and the public names of inert.testing."""

from __future__ import annotations

import pytest

import inert.testing
from inert import Request
from inert._store import Store
from inert.testing import (
    FakeRunner,
    FakeRunnerFactory,
    ReplayRunner,
    chat_completion,
    expect_calls,
)

from .pipeline import Gloss, Senses, gloss_of, glossary, senses_of


def test_fake_runner_fixture_builds_from_a_table(fake_runner: FakeRunnerFactory) -> None:
    """``fake_runner({request: answer})`` is a table-driven FakeRunner."""
    fake = fake_runner({senses_of("bat"): Senses(senses=["animal"])})
    assert Senses(senses=["animal"]) == fake.run_sync(senses_of("bat"))


def test_fake_runner_fixture_builds_from_a_function(fake_runner: FakeRunnerFactory) -> None:
    """``fake_runner(respond)`` is a FakeRunner answering with the function."""
    fake = fake_runner(lambda op: chat_completion(Gloss(text="g")), pipelined=True)
    assert Gloss(text="g") == fake.run_sync(gloss_of("bat", "animal"))
    assert fake.pipelined


def test_fake_runner_fixture_takes_a_table_default_as_from_table_does(
    fake_runner: FakeRunnerFactory,
) -> None:
    """Ops missing from the table go to ``default``, as with ``FakeRunner.from_table``."""
    table: dict[Request[Senses], Senses] = {senses_of("bat"): Senses(senses=["animal"])}
    fake = fake_runner(table, default=lambda op: chat_completion(Gloss(text="g")))
    assert {"animal": "g"} == fake.run_sync(glossary("bat"))


def test_fake_runner_fixture_refuses_a_default_beside_a_function(
    fake_runner: FakeRunnerFactory,
) -> None:
    """A respond function answers every op, so a ``default`` with it is a mistake."""
    with pytest.raises(TypeError, match="default only with a table"):
        fake_runner(lambda op: None, default=lambda op: None)  # type: ignore[call-overload]  # pyright: ignore[reportArgumentType]  # the mistake under test


def test_inert_store_fixture_is_an_empty_store_to_record_and_replay(inert_store: Store) -> None:
    """A run recorded in ``inert_store`` replays without asking anything."""
    assert 0 == inert_store.response_count()
    table = {
        senses_of("bat"): Senses(senses=["animal"]),
        gloss_of("bat", "animal"): Gloss(text="g"),
    }
    recorded = FakeRunner.from_table(table, store=inert_store).run_sync(glossary("bat"))
    replay = ReplayRunner(inert_store)
    assert recorded == replay.run_sync(glossary("bat"))
    expect_calls(replay, 2)


def test_all_lists_exactly_the_public_names() -> None:
    """``__all__`` is sorted and equals the public names the package exports."""
    public = {name for name in dir(inert.testing) if not name.startswith(("_", "@"))}
    assert sorted(inert.testing.__all__) == inert.testing.__all__
    assert set(inert.testing.__all__) == public
    for name in inert.testing.__all__:
        assert getattr(inert.testing, name) is not None
