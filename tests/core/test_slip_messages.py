"""Common slips get an error that names the fix, not a puzzle from deep inside."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import pytest

from inert import Request, call, program
from inert.errors import UnansweredError
from inert.testing import FakeRunner

from .trees import answer, op_for, respond_with


def ask(n: int) -> Request[int]:
    """Call number ``n`` of the test API."""
    return call(op_for(n))


async def test_run_of_a_list_says_pass_one_request_or_use_run_all() -> None:
    """``runner.run([request])`` is refused with a message pointing at ``run_all``."""
    fake = FakeRunner(respond_with(frozenset()))
    with pytest.raises(
        TypeError, match=r"run\(\) takes one Request, not a list; .*run_all\(requests\)"
    ):
        await fake.run([ask(1)])  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]  # the slip under test


def test_run_sync_of_a_list_says_use_run_all_sync() -> None:
    """The blocking twin names its own blocking counterpart."""
    fake = FakeRunner(respond_with(frozenset()))
    with pytest.raises(TypeError, match=r"run_all_sync\(requests\)"):
        fake.run_sync([ask(1)])  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]  # the slip under test


async def test_a_list_inside_run_all_says_flatten_or_gather() -> None:
    """A nested list given to ``run_all`` names the list and the way out."""
    fake = FakeRunner(respond_with(frozenset()))
    with pytest.raises(
        TypeError, match=r"request 0 is a list, not a Request \(a list inside the list"
    ):
        await fake.run_all([[ask(1)]])  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]  # the slip under test


async def test_yield_from_a_list_in_a_program_says_use_gather_all() -> None:
    """``yield from [requests]`` fails with a TypeError that points at ``gather_all``."""

    @program
    def both() -> Generator[Request[object], Any, object]:
        values = yield from [ask(1), ask(2)]  # type: ignore[func-returns-value]  # the slip under test
        return values

    fake = FakeRunner(respond_with(frozenset()))
    with pytest.raises(
        TypeError, match=r"`yield from` a list of requests; .*gather_all\(requests\)"
    ):
        await fake.run(both())


async def test_a_program_that_yields_from_one_request_still_gets_its_value() -> None:
    """The check leaves the correct form alone."""

    @program
    def one() -> Generator[Request[object], Any, int]:
        value = yield from ask(3)
        return value

    assert answer(3) == await FakeRunner(respond_with(frozenset())).run(one())


async def test_a_table_with_one_entry_says_one_entry() -> None:
    """The fake's message about a missing answer counts "1 entry", not "1 entries"."""
    fake = FakeRunner.from_table({op_for(1): {"v": 4}})
    with pytest.raises(UnansweredError, match=r"it has 1 entry$"):
        await fake.run(ask(2))
