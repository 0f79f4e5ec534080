"""pytest plugin for inert's testing toolkit (registered through the ``pytest11`` entry point).

It lives outside ``inert.testing`` so that loading it imports nothing of the toolkit.

Fixtures, available in every test once inert is installed:

* ``fake_runner`` — a factory: ``fake_runner(respond_or_table, **options)`` builds a
  :class:`~inert.testing.FakeRunner` from a function or from a table of answers.
* ``inert_store`` — a fresh :class:`~inert.Store` in the test's ``tmp_path``, closed
  after the test.

This module imports nothing heavy at load time: the toolkit is imported when a
fixture is first used.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import pytest

if TYPE_CHECKING:
    from inert._op import Op
    from inert._request import Request
    from inert._runner import ResponseStore
    from inert._store import Store
    from inert.testing._fake import Answer, FakeRunner, FakeRunnerFactory, Respond

K = TypeVar("K", bound="Op[object] | Request[object] | str")


@pytest.fixture
def fake_runner() -> FakeRunnerFactory:
    """A factory of ``FakeRunner``: ``fake_runner(respond)`` or ``fake_runner({op: answer})``."""
    from inert.testing._fake import FakeRunner

    def make(
        answers: Respond | Mapping[K, Answer],
        /,
        *,
        default: Respond | None = None,
        pipelined: bool = False,
        seed: int | None = None,
        store: ResponseStore | None = None,
    ) -> FakeRunner:
        if isinstance(answers, Mapping):
            return FakeRunner.from_table(
                answers, default=default, pipelined=pipelined, seed=seed, store=store
            )
        if default is not None:
            raise TypeError(
                "fake_runner(respond, default=...) takes a default only with a table; "
                "a respond function answers every op itself"
            )
        return FakeRunner(answers, pipelined=pipelined, seed=seed, store=store)

    return make


@pytest.fixture
def inert_store(tmp_path: Path) -> Iterator[Store]:
    """A fresh, empty ``Store`` in the test's temporary directory."""
    from inert._store import Store

    store = Store(tmp_path / "inert-store.sqlite3")
    try:
        yield store
    finally:
        store.close()
