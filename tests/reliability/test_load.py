"""Load: thousands of immediate requests under injected 429s, 5xx and dropped connections."""

from __future__ import annotations

import os
import time
from collections import Counter

import openai
from tests.billing import assert_billed_once, keys_of

from inert import ImmediateRunner
from inert.emulator import Emulator, Faults

from ._support import expected_answers, word_request

LOAD_REQUESTS = int(os.environ.get("INERT_LOAD_REQUESTS", "10000"))
"""Requests in the load test; ``INERT_LOAD_REQUESTS`` overrides it (smaller on slow CI)."""
CONCURRENCY = 100
MAX_RETRIES = 10
FAULTS = Faults(rate_limit=0.08, server_error=0.07, disconnect=0.05)
"""20% of attempts fail: 429 with a tiny Retry-After, 500/503, a dropped connection."""


async def test_every_request_succeeds_once_under_twenty_percent_faults(
    emu: Emulator, tally: Counter[str]
) -> None:
    """Under 20% injected faults every result equals the fault-free answer and nothing is billed twice."""
    requests = [word_request(i) for i in range(LOAD_REQUESTS)]
    sample = requests[:200]
    async with openai.AsyncOpenAI(base_url=emu.base_url, api_key="sk-load") as client:
        clean = await ImmediateRunner(client, max_concurrency=CONCURRENCY).run_all(sample)
        assert expected_answers(sample) == clean  # the in-process oracle matches the server
        emu.reset()
        emu.set_faults(FAULTS)
        runner = ImmediateRunner(
            client,
            max_concurrency=CONCURRENCY,
            max_retries=MAX_RETRIES,
            backoff_base=0.001,
            backoff_max=0.02,
        )
        started = time.monotonic()
        results = await runner.run_all(requests)
        elapsed = time.monotonic() - started
    report = runner.report
    tally["requests"] += LOAD_REQUESTS
    tally["faults"] += report.retries
    tally["load_seconds"] += round(elapsed)
    assert expected_answers(requests) == results
    assert_billed_once(emu, keys_of(requests))
    assert 0 == report.requests_failed
    # About a quarter of the requests need a retry (0.2 / 0.8); bounded well below 1 each.
    assert 0.1 * LOAD_REQUESTS < report.retries < 0.5 * LOAD_REQUESTS
    assert LOAD_REQUESTS == report.ops_sent
