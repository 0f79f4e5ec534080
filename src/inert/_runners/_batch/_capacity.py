"""Capacity: the tokens a batch enqueues, and submitting so the queue holds.

OpenAI limits, per model and organisation, the prompt tokens queued in batches that
have not finished ("enqueued prompt tokens per model", Batch guide, Rate limits;
there is no limit on output tokens). Past it a batch goes ``validating → failed``
with ``errors.data[0].code == "token_limit_exceeded"`` ("Enqueued token limit
reached … try again once some in_progress batches have been completed"): a signal to
wait, not a verdict on the requests.

**The estimate.** A line enqueues at most as many tokens as its JSONL line has
UTF-8 bytes: OpenAI's tokenizers are byte-level BPE, so no text token is shorter
than one byte, and the keys and punctuation around each message outweigh the few
tokens of per-message overhead. The estimate of a shard is the byte size of its
input file. It is an upper bound for text and token-id prompts (about four times the
true count for English) and is never below the emulator's count (a quarter of a
line's characters, docs/emulator.md); it is *not* a bound for images, audio or
files, whose token cost depends on the model and the media: leave headroom in
``enqueued_token_limit`` for those. No tokenizer is downloaded.

**The schedule.** With a known limit for a model, shards are cut so each one's
estimate fits under it, and a shard is created only while this runner's unfinished
batches of that model plus the new one fit (a shard is always allowed when nothing of
its model is in flight: the server decides). Whether the limit is known or not, a
``token_limit_exceeded`` batch is resubmitted after one of this model's in-flight
batches finishes, or after a wait paced by ``poll_interval``/``poll_interval_max``
when none is in flight (other work may fill the queue). What this runner has in
flight is pacing only; the server's answer is what keeps correctness, across any
number of processes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Final

REFUSALS_ALONE_LIMIT: Final = 20
"""Refusals of a single line with nothing of its model in flight before it fails."""


def limits_of(limit: int | Mapping[str, int] | None) -> Mapping[str, int] | int | None:
    """Validate the user's ``enqueued_token_limit`` (one number, or one per model)."""
    if limit is None:
        return None
    if type(limit) is int:
        if limit < 1:
            raise ValueError(f"enqueued_token_limit must be positive; got {limit!r}")
        return limit
    if not isinstance(limit, Mapping) or not all(
        type(k) is str and type(v) is int and v > 0 for k, v in limit.items()
    ):
        raise ValueError(
            "enqueued_token_limit must be a positive int or a mapping of model name to "
            f"positive int; got {limit!r}"
        )
    return dict(limit)


class Capacity:
    """The prompt tokens this runner has queued in unfinished batches, per model.

    Args:
        limit: the user's ``enqueued_token_limit``: one number for every model, a
            mapping per model, or ``None`` (unknown: only the server's refusals pace).
        first_wait: the first pause when waiting for capacity (``poll_interval``).
        max_wait: the longest pause (``poll_interval_max``).
    """

    def __init__(
        self,
        limit: Mapping[str, int] | int | None,
        *,
        first_wait: float,
        max_wait: float,
    ) -> None:
        self._limit = limit
        self._first_wait = first_wait
        self._max_wait = max_wait
        self._queued: dict[str | None, int] = {}
        self._finished: dict[str | None, int] = {}  # batches of a model that left the queue
        self._changed: asyncio.Condition | None = None

    def limit_for(self, model: str | None) -> int | None:
        """The known enqueued-token limit of ``model``, if the user gave one."""
        limit = self._limit
        if limit is None or isinstance(limit, int):
            return limit
        return None if model is None else limit.get(model)

    def queued(self, model: str | None) -> int:
        """Estimated tokens of this runner's unfinished batches of ``model``."""
        return self._queued.get(model, 0)

    def _condition(self) -> asyncio.Condition:
        if self._changed is None:
            self._changed = asyncio.Condition()
        return self._changed

    async def acquire(self, model: str | None, tokens: int) -> None:
        """Wait until a batch of ``tokens`` fits in ``model``'s queue, then count it in."""
        limit = self.limit_for(model)
        wait = self._first_wait
        changed = self._condition()
        async with changed:
            while (
                limit is not None and 0 < self.queued(model) and self.queued(model) + tokens > limit
            ):
                try:
                    await asyncio.wait_for(changed.wait(), wait)
                except TimeoutError:
                    wait = min(wait * 1.5, self._max_wait)
            self._queued[model] = self.queued(model) + tokens

    def hold(self, model: str | None, tokens: int) -> None:
        """Count in a batch that is already queued (one found in the journal)."""
        self._queued[model] = self.queued(model) + tokens

    async def release(self, model: str | None, tokens: int) -> None:
        """A batch of ``model`` left the queue (it finished, failed or was never made)."""
        changed = self._condition()
        async with changed:
            self._queued[model] = max(0, self.queued(model) - tokens)
            self._finished[model] = self._finished.get(model, 0) + 1
            changed.notify_all()

    async def after_refusal(self, model: str | None, refusals: int) -> None:
        """Wait as ``token_limit_exceeded`` asks: until one of ``model``'s batches finishes.

        With none of them in flight, pause instead (others' batches may fill the
        queue): the ``refusals``-th such pause in a row lasts ``first_wait × 1.5ⁿ``,
        at most ``max_wait``.
        """
        if self.queued(model) == 0:
            await asyncio.sleep(min(self._max_wait, self._first_wait * 1.5 ** max(0, refusals - 1)))
            return
        changed = self._condition()
        wait = self._first_wait
        async with changed:
            seen = self._finished.get(model, 0)
            while self.queued(model) > 0 and self._finished.get(model, 0) == seen:
                try:
                    await asyncio.wait_for(changed.wait(), wait)
                except TimeoutError:
                    wait = min(wait * 1.5, self._max_wait)
