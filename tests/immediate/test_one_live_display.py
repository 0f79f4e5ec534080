"""Only one live progress display at a time: overlapping runs do not draw over each other."""

from __future__ import annotations

import asyncio
import re

import openai
import pytest

from inert import ImmediateRunner
from inert.openai import chat

FINAL = re.compile(r"immediate: \d+ rounds? · \d+ calls? sent")


async def test_a_run_that_overlaps_a_live_one_stays_quiet(
    client: openai.AsyncOpenAI, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two runs at once with progress on: one display, so one final line."""
    first, second = ImmediateRunner(client, progress=True), ImmediateRunner(client, progress=True)

    await asyncio.gather(
        first.run_all([chat(model="gpt-4o-mini", messages=[{"role": "user", "content": "a"}])]),
        second.run_all([chat(model="gpt-4o-mini", messages=[{"role": "user", "content": "b"}])]),
    )

    assert 1 == len(FINAL.findall(capsys.readouterr().err))


async def test_runs_one_after_another_each_show_their_line(
    client: openai.AsyncOpenAI, capsys: pytest.CaptureFixture[str]
) -> None:
    """The display is released when a run ends, so the next run shows its own."""
    runner = ImmediateRunner(client, progress=True)
    for text in ("c", "d"):
        await runner.run_all(
            [chat(model="gpt-4o-mini", messages=[{"role": "user", "content": text}])]
        )

    assert 2 == len(FINAL.findall(capsys.readouterr().err))
