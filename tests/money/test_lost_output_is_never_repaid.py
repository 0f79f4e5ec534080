"""Lines a batch completed are never paid again because their output file went missing."""

from __future__ import annotations

import openai
from returns.result import Failure, Success
from tests.billing import assert_billed_once, keys_of, settled_ledger

from inert import BatchRunner, Store
from inert.emulator import Emulator, Faults
from inert.openai import chat


async def test_an_expired_batch_without_its_output_is_not_paid_twice(
    client: openai.AsyncOpenAI, emu: Emulator, store: Store
) -> None:
    """A batch that expires after completing lines but serves no output file costs each line once."""
    emu.set_faults(Faults(batch_expire=1.0, drop_output=1.0))
    requests = [
        chat(model="gpt-4o-mini", messages=[{"role": "user", "content": f"lost {i}"}])
        for i in range(10)
    ]
    runner = BatchRunner(
        client, store=store, poll_interval=0.01, poll_interval_max=0.05, progress=False
    )
    settled = await runner.run_all_settled(requests)
    answered = [r for r, s in zip(requests, settled, strict=True) if isinstance(s, Success)]
    failed = [r for r, s in zip(requests, settled, strict=True) if isinstance(s, Failure)]
    assert 10 == len(answered) + len(failed)
    assert settled_ledger(emu).total_billed() > 0  # some lines completed before the expiry
    assert_billed_once(emu, keys_of(answered), unanswered=keys_of(failed))
