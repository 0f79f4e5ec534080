"""Crash safety: SIGKILL at random moments of a batch run, again and again, then resume."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import openai
from tests.billing import assert_billed_once

from inert import BatchRunner, Op, Store
from inert._json import JSON
from inert.emulator import Emulator, Faults
from inert.emulator._answers import chat_completion
from inert.testing import FakeRunner
from lexicon import Lexicon, entry_requests, sample_words

CHILD = Path(__file__).with_name("_batch_child.py")
ROOT = Path(__file__).resolve().parents[2]
WORDS = 6
KILLS = 8
SEED = 8
"""Seeds the kill schedule: the same delays on every run, so a failure can be replayed."""
DELAYS = (0.4, 2.2)
"""Seconds after the child starts before it is killed; a whole run takes ~3 s here."""


def oracle(words: int) -> tuple[list[object], set[str]]:
    """The fault-free entries and the op keys they need, computed in process."""

    def respond(op: Op[Any]) -> JSON:
        raw, _, _ = chat_completion(op.body, op.key, Faults(), created=0, request_id="oracle")
        return raw

    fake = FakeRunner(respond)
    entries = fake.run_all_sync(entry_requests(Lexicon(), sample_words(words)))
    return list(entries), {op.key for op in fake.calls}


def test_random_kills_then_resume_pay_each_call_once(
    emu: Emulator, tmp_path: Path, tally: Counter[str]
) -> None:
    """Killed at seeded random moments, the run resumes to the right entries, each call billed once."""
    emu.set_time_scale(0.5)
    store_path = tmp_path / "crash.sqlite3"
    expected, keys = oracle(WORDS)
    schedule = random.Random(SEED)
    kills = 0
    for _ in range(KILLS):
        child = subprocess.Popen(
            [sys.executable, str(CHILD), emu.base_url, str(store_path), str(WORDS)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        time.sleep(schedule.uniform(*DELAYS))
        if child.poll() is None:
            child.send_signal(signal.SIGKILL)
            kills += 1
        out, err = child.communicate(timeout=30)
        if child.returncode == 0:  # it finished before its kill: later ones find it all stored
            assert "done" in out
            continue
        assert -signal.SIGKILL == child.returncode, err
    with Store(store_path) as store:
        client = openai.AsyncOpenAI(base_url=emu.base_url, api_key="sk-crash-final")
        runner = BatchRunner(
            client, store=store, poll_interval=0.02, poll_interval_max=0.05, progress=False
        )
        entries = runner.run_all_sync(entry_requests(Lexicon(), sample_words(WORDS)))
    tally["kills"] += kills
    tally["requests"] += WORDS
    assert kills >= 3
    assert expected == entries
    assert_billed_once(emu, keys)
