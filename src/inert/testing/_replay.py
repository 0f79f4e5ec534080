"""``ReplayRunner``: answer from the responses a real run recorded in a store.

A real run (immediate or batch) keeps every raw response in its
:class:`~inert.Store` by op key. Replaying that store turns the run into a
regression test: the same requests get the same answers, decoded by today's
decoders, without a network. An op the recording has no answer for (a changed
prompt, model or parameter changes the key) fails alone with an
:class:`~inert.errors.UnansweredError` naming it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Mapping, Sequence
from typing import Any, Self

from inert._engine import Outcome
from inert._errors import UnansweredError
from inert._json import JSON
from inert._op import Op
from inert._report import ReportBuilder
from inert._runner import ResponseStore
from inert.testing._fake import FakeRunner, Respond, describe_op


class ReplayRunner(FakeRunner):
    """A fake runner that answers every op from a recorded store.

    Only ``store.get_responses`` is used; nothing is written to the store.

    Args:
        store: the recording, any :class:`~inert._runner.ResponseStore` (such as a
            :class:`~inert.Store` opened on the file a real run wrote).
        fallback: answers ops the recording lacks (for example ops built with
            ``dedup=False``, which are never stored); without one they fail with
            an ``UnansweredError``.
        pipelined: schedule like the immediate runner instead of round by round.
        seed: shuffle the order of answers, as for :class:`FakeRunner`.

    ``ReplayRunner.from_table(table, store=recording)`` and
    ``ReplayRunner.from_data(data, store=recording)`` replay ``recording`` and
    answer the ops it lacks from the table (or from Hypothesis) instead of failing;
    without ``store`` the recording is empty. Like every replay, they write nothing.

    Attributes:
        unanswered: the ops of the last run that the recording had no answer for.
    """

    def __init__(
        self,
        store: ResponseStore,
        *,
        fallback: Respond | None = None,
        pipelined: bool = False,
        seed: int | None = None,
    ) -> None:
        super().__init__(self._answer, pipelined=pipelined, seed=seed)
        self._recording = store
        self._fallback = fallback
        self._found: dict[str, JSON] = {}
        self.unanswered: list[Op[object]] = []

    @classmethod
    def _build(
        cls, respond: Respond, *, pipelined: bool, seed: int | None, store: ResponseStore | None
    ) -> Self:
        recording: ResponseStore = _EmptyRecording() if store is None else store
        return cls(recording, fallback=respond, pipelined=pipelined, seed=seed)

    def _begin_run(self) -> None:
        super()._begin_run()
        self._found = {}
        self.unanswered = []

    async def _send(
        self, ops: Sequence[Op[Any]], report: ReportBuilder
    ) -> Mapping[str, Outcome] | list[Outcome]:
        # One lookup per fetch rather than one per op.
        self._found.update(self._recording.get_responses([op.key for op in ops]))
        return await super()._send(ops, report)

    def _answer(self, op: Op[object]) -> JSON | Awaitable[JSON]:
        if op.key in self._found:
            return self._found[op.key]
        found = self._recording.get_responses([op.key])  # when called through fail_ops
        if op.key in found:
            return found[op.key]
        self.unanswered.append(op)
        if self._fallback is not None:
            return self._fallback(op)
        raise UnansweredError(
            f"the recording has no answer for {describe_op(op)}; the recorded run never "
            "asked it (a changed prompt, model or parameter changes the op key)"
        )


class _EmptyRecording:
    """A recording with no answers (a replay built from a table without a store)."""

    def get_responses(self, keys: Sequence[str]) -> Mapping[str, JSON]:
        return {}

    def put_responses(self, entries: Sequence[tuple[Op[object], JSON]]) -> None:
        raise TypeError("a replay's recording is read-only")


ReplayRunner.__module__ = "inert.testing"
