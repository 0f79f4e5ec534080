"""Concurrent runs under batch faults: two runners on one store settle everything, pay once."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import openai
import pytest
from returns.result import Success
from tests.billing import assert_billed_once, keys_of

from inert import Store
from inert.emulator import Emulator, Faults

from ._support import word_request
from .test_batch_faults import check_settled, fast_runner

REQUESTS = 60


@pytest.mark.many_runs
async def test_two_runners_on_one_store_under_line_faults_pay_each_call_once(
    emu: Emulator, tmp_path: Path, tally: Counter[str]
) -> None:
    """Two runners started together on one store, with lines expiring and failing at random
    (three shards each), settle every request with its answer or a typed error; an answered
    call is billed once, and no call twice."""
    emu.set_faults(Faults(line_expired=0.3, line_failed=0.2))
    requests = [word_request(i, salt=" two runners, faults") for i in range(REQUESTS)]
    async with openai.AsyncOpenAI(base_url=emu.base_url, api_key="sk-batch") as client:
        with Store(tmp_path / "store.sqlite3") as one, Store(tmp_path / "store.sqlite3") as other:
            runs = await asyncio.wait_for(
                asyncio.gather(
                    fast_runner(client, one).run_all_settled(requests),
                    fast_runner(client, other).run_all_settled(requests),
                ),
                120,
            )
    answered = set()
    for settled in runs:
        answers, errors = check_settled(requests, settled)
        assert REQUESTS == answers + errors
        answered |= keys_of(
            [r for r, s in zip(requests, settled, strict=True) if isinstance(s, Success)]
        )
        tally["requests"] += REQUESTS
        tally["faults"] += errors
    assert answered
    assert_billed_once(emu, answered, unanswered=keys_of(requests) - answered)
