"""``gather_all`` and ``traverse`` refuse one request where a list belongs.

A ``Request`` is iterable (``yield from request`` inside a ``@program``), so without
a check ``gather_all(request)`` would run it as a one-item list. Both type checkers
reject the mistake (tests/typing/core_api.py); these tests pin the run-time error.
"""

from __future__ import annotations

import pytest

from inert import Request, gather_all, pure, traverse
from inert.testing import FakeRunner


def test_gather_all_of_one_request_is_a_type_error_naming_the_fix() -> None:
    """``gather_all(request)`` raises at once, saying to pass a list."""
    with pytest.raises(TypeError, match=r"gather_all\(\) takes a list of requests.*\[request\]"):
        gather_all(pure(5))  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]  # the mistake under test


def test_traverse_of_a_request_is_a_type_error_naming_the_fix() -> None:
    """``traverse(request, f)`` raises at once, pointing to ``then``."""
    with pytest.raises(TypeError, match=r"traverse\(\) takes the items.*then"):
        traverse(pure(["a", "b"]), pure)  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]  # the mistake under test


async def test_collections_and_iterators_of_requests_still_gather_in_order() -> None:
    """Lists, tuples, generators and maps are all accepted, and keep their order."""
    parts: list[Request[int]] = [pure(1), pure(2), pure(3)]
    fake = FakeRunner(lambda op: None)
    assert [[1, 2, 3]] * 4 == await fake.run_all(
        [
            gather_all(parts),
            gather_all(tuple(parts)),
            gather_all(p for p in parts),
            traverse(map(int, "123"), pure),
        ]
    )
