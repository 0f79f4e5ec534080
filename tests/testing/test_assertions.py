"""expect_rounds and expect_calls pass when right and explain themselves when wrong."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from inert import Op, gather_all
from inert._json import JSON
from inert._runner import ResponseStore
from inert.testing import FakeRunner, chat_completion, expect_calls, expect_rounds, key_of

from .pipeline import Gloss, Senses, gloss_of, glossary, senses_of


def _answer(op: Op[Any]) -> JSON:
    if "List the senses" in str(op.body["messages"]):
        return chat_completion(Senses(senses=["river side", "money house"]))
    return chat_completion(Gloss(text="a definition"))


def _fake(store: ResponseStore | None = None) -> FakeRunner:
    return FakeRunner(_answer, store=store)


def test_right_expectations_pass() -> None:
    """Two rounds of 1 and 2 ops, three distinct calls each asked once, pass silently."""
    fake = _fake()
    fake.run_sync(glossary("bank"))
    expect_rounds(fake, 2, sizes=[1, 2])
    expect_calls(fake, 3, each_once=True)
    expect_calls(
        fake,
        [senses_of("bank"), gloss_of("bank", "river side"), gloss_of("bank", "money house")],
    )


def test_wrong_round_count_lists_every_round_with_its_ops() -> None:
    """The message gives both counts and, per round, each op's endpoint, key and prompt."""
    fake = _fake()
    fake.run_sync(glossary("bank"))
    with pytest.raises(AssertionError) as caught:
        expect_rounds(fake, 1)
    message = str(caught.value)
    assert message.startswith("expected 1 round, the last run took 2:")
    assert "round 1 (1 op):" in message
    assert "round 2 (2 ops):" in message
    assert f"/v1/chat/completions {key_of(senses_of('bank'))[:12]}" in message
    assert "Define 'bank' in the sense 'money house'." in message


def test_wrong_round_sizes_are_reported() -> None:
    """Right count, wrong sizes: the message shows expected and actual sizes."""
    fake = _fake()
    fake.run_sync(glossary("bank"))
    with pytest.raises(
        AssertionError, match=r"expected round sizes \[1, 1\], the last run had \[1, 2\]"
    ):
        expect_rounds(fake, 2, sizes=[1, 1])


def test_wrong_call_count_is_reported_with_what_was_asked() -> None:
    """A wrong count names the numbers and lists the calls by round."""
    fake = _fake()
    fake.run_sync(glossary("bank"))
    with pytest.raises(AssertionError) as caught:
        expect_calls(fake, 2)
    message = str(caught.value)
    assert message.startswith("expected 2 calls, the last run made 3")
    assert "what was asked:\nrun 1:\n  round 1 (1 op):" in message


def test_call_set_differences_name_missing_and_unexpected_ops() -> None:
    """Missing and unexpected ops are each named with their prompt."""
    fake = _fake()
    fake.run_sync(glossary("bank"))
    with pytest.raises(AssertionError) as caught:
        expect_calls(fake, [senses_of("bank"), gloss_of("bank", "river side"), senses_of("bat")])
    message = str(caught.value)
    assert "missing (1× expected, not asked): /v1/chat/completions" in message
    assert "List the senses of 'bat'." in message
    assert "unexpected (1× asked, not expected):" in message
    assert "Define 'bank' in the sense 'money house'." in message


def test_repeated_questions_across_runs_name_the_runs_and_rounds() -> None:
    """Without a store a second run re-asks everything; each_once says which op and where."""
    fake = _fake()
    fake.run_sync(glossary("bank"))
    fake.run_sync(gather_all([senses_of("bank")]))
    expect_calls(fake, each_once=True)  # each run alone asks each op once
    with pytest.raises(AssertionError) as caught:
        expect_calls(fake, each_once=True, scope="all")
    message = str(caught.value)
    assert "1 op(s) were asked more than once in the 2 runs:" in message
    assert "2× /v1/chat/completions" in message
    assert "(run 1 round 1, run 2 round 1)" in message


def test_a_store_keeps_later_runs_from_asking_again(tmp_path: Path) -> None:
    """With a store, the second run is answered from it and each op is asked once overall."""
    from inert._store import Store

    with Store(tmp_path / "store.sqlite3") as store:
        fake = _fake(store)
        first = fake.run_sync(glossary("bank"))
        assert first == fake.run_sync(glossary("bank"))
    expect_calls(fake, 0)
    expect_calls(fake, 3, each_once=True, scope="all")


def test_where_counts_only_the_selected_calls() -> None:
    """``where`` restricts the count to matching ops."""
    fake = _fake()
    fake.run_sync(glossary("bank"))
    expect_calls(fake, 2, where=lambda op: "Define" in str(op.body["messages"]))
