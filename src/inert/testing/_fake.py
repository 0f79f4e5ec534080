"""``FakeRunner``: a real interpreter whose API is a function of your choosing."""

from __future__ import annotations

import asyncio
import inspect
import random
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from returns.result import Failure, Success

from inert._engine import RawOutcome
from inert._errors import RequestError
from inert._json import JSON, validate_json
from inert._op import Op
from inert._report import ReportBuilder
from inert._runner import BaseRunner, ResponseStore

Respond = Callable[[Op[Any]], JSON | Awaitable[JSON]]
"""``respond(op)`` returns the raw response body, or raises a RequestError."""


class FakeRunner(BaseRunner):
    """A runner that answers every op with ``respond(op)`` instead of calling an API.

    It runs the same engine as the real runners, so rounds, dedup and failures
    behave exactly as they will in production.

    Args:
        respond: returns the raw response body (a JSON value) for an op, or raises
            a :class:`~inert.RequestError` for that op alone. It may be async.
        pipelined: ``False`` (default) schedules round by round like the batch
            runner; ``True`` fetches each op as soon as it is needed, like the
            immediate runner.
        seed: when given, answers arrive in a shuffled order (pipelined: random
            interleaving), to show that results do not depend on answer order.
        store: an optional response store, as for the real runners.

    Attributes:
        calls: every op sent in the last run, in the order the runner was asked.
        rounds_log: the ops of each fetch of the last run (one entry per round
            when not pipelined).
    """

    def __init__(
        self,
        respond: Respond,
        *,
        pipelined: bool = False,
        seed: int | None = None,
        store: ResponseStore | None = None,
    ) -> None:
        super().__init__(store=store)
        if not callable(respond):
            raise TypeError(
                f"FakeRunner(respond) takes a function of an Op; got {type(respond).__name__}"
            )
        self._respond = respond
        self.pipelined = pipelined
        self._random = None if seed is None else random.Random(seed)
        self.calls: list[Op[Any]] = []
        self.rounds_log: list[list[Op[Any]]] = []

    def _begin_run(self) -> None:
        self.calls = []
        self.rounds_log = []

    async def _send(
        self, ops: Sequence[Op[Any]], report: ReportBuilder
    ) -> Mapping[str, RawOutcome]:
        self.calls.extend(ops)
        self.rounds_log.append(list(ops))
        order = list(ops)
        if self._random is not None:
            self._random.shuffle(order)
            if self.pipelined:
                for _ in range(self._random.randrange(4)):
                    await asyncio.sleep(0)
        outcomes: dict[str, RawOutcome] = {}
        for op in order:
            try:
                raw = self._respond(op)
                if inspect.isawaitable(raw):
                    raw = await raw
                outcomes[op.key] = Success(validate_json(raw))
            except RequestError as error:
                outcomes[op.key] = Failure(error)
        return outcomes
