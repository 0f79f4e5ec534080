"""``Runner`` is the protocol of every interpreter, checkable with ``isinstance``."""

from __future__ import annotations

from pathlib import Path

import openai

from inert import BatchRunner, ImmediateRunner, Runner, Store
from inert.testing import FakeRunner, ReplayRunner


def test_every_runner_is_an_instance_of_the_protocol(tmp_path: Path) -> None:
    """The immediate, batch, fake and replay runners all pass ``isinstance(x, Runner)``."""
    client = openai.AsyncOpenAI(base_url="http://127.0.0.1:9/v1", api_key="unused")
    with Store(tmp_path / "s.sqlite3") as store:
        runners = [
            ImmediateRunner(client),
            BatchRunner(client, store=store),
            FakeRunner(lambda op: None),
            ReplayRunner(store),
        ]
        assert [True] * 4 == [isinstance(r, Runner) for r in runners]


def test_an_object_without_the_blocking_twins_is_not_a_runner() -> None:
    """Having the async methods alone is not enough: the protocol includes ``run_sync`` & co."""

    class AsyncOnly:
        report = None

        async def run(self, request: object) -> object: ...
        async def run_all(self, requests: object) -> object: ...
        async def run_all_settled(self, requests: object) -> object: ...

    assert not isinstance(AsyncOnly(), Runner)
    assert not isinstance(object(), Runner)
