"""The billing helper sees what batches nobody polls will bill, so "billed once" can fail."""

from __future__ import annotations

import json

import openai
import pytest
from tests.billing import assert_billed_once, settled_ledger

from inert.emulator import Emulator
from inert.openai import chat
from inert.testing import op_of


async def submit(client: openai.AsyncOpenAI, words: list[str]) -> tuple[list[str], str]:
    """Create one batch of chat lines for ``words`` and never look at it again; (keys, id)."""
    ops = [
        op_of(chat(model="gpt-4o-mini", messages=[{"role": "user", "content": w}])) for w in words
    ]
    lines = [
        json.dumps({"custom_id": op.key, "method": "POST", "url": op.endpoint, "body": op.body})
        for op in ops
    ]
    uploaded = await client.files.create(
        file=("orphan.jsonl", "\n".join(lines).encode()), purpose="batch"
    )
    batch = await client.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    return [op.key for op in ops], batch.id


async def test_a_batch_nobody_polls_is_billed_once_settled(
    client: openai.AsyncOpenAI, emu: Emulator
) -> None:
    """Every line of a forgotten batch is in the ledger once the helper has settled it."""
    emu.set_time_scale(60.0)  # a batch takes about a minute: none ends by itself in the test
    keys, _ = await submit(client, ["orphan one", "orphan two"])
    assert dict.fromkeys(keys, 1) == settled_ledger(emu).counts()
    assert_billed_once(emu, keys)
    with pytest.raises(AssertionError, match="times billed"):
        assert_billed_once(emu, [*keys, "an op the server never billed"])
    with pytest.raises(AssertionError, match="times billed"):
        assert_billed_once(emu, keys[:1])  # the other line was billed without being expected


async def test_a_second_batch_of_the_same_lines_fails_the_check(
    client: openai.AsyncOpenAI, emu: Emulator
) -> None:
    """Two forgotten batches of the same lines bill each line twice, and the helper says so."""
    emu.set_time_scale(60.0)
    keys, _ = await submit(client, ["twice"])
    await submit(client, ["twice"])
    with pytest.raises(AssertionError, match="times billed"):
        assert_billed_once(emu, keys)
    assert {keys[0]: 2} == settled_ledger(emu).counts()


async def test_an_unanswered_op_may_be_billed_once_never_twice(
    client: openai.AsyncOpenAI, emu: Emulator
) -> None:
    """Keys given as unanswered pass billed once or not at all, and fail billed twice."""
    emu.set_time_scale(60.0)
    assert_billed_once(emu, [], unanswered=["never sent"])
    keys, _ = await submit(client, ["paid, answer lost"])
    assert_billed_once(emu, [], unanswered=keys)
    await submit(client, ["paid, answer lost"])
    with pytest.raises(AssertionError, match="times billed"):
        assert_billed_once(emu, [], unanswered=keys)
