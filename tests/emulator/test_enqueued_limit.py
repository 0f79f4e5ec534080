"""The enqueued-token limit per model: a batch over it fails with token_limit_exceeded."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Final

import openai
import pytest
from tests.billing import settled_ledger

from inert.emulator import Emulator, build_parser
from inert.emulator._server import token_limits
from inert.emulator._tokens import prompt_tokens

from ._support import BatchLine, chat_line, jsonl

CHAT: Final = "/v1/chat/completions"


def lines(count: int, *, model: str = "gpt-test", tag: str = "") -> list[BatchLine]:
    """``count`` distinct chat lines for ``model``."""
    return [chat_line(f"{tag}c{i}", f"question {tag}{i}", model=model) for i in range(count)]


def enqueued(batch_lines: list[BatchLine]) -> int:
    """What the emulator counts for these lines (docs/emulator.md)."""
    total = 0
    for line in batch_lines:
        body = line["body"]
        assert isinstance(body, dict)
        total += prompt_tokens(CHAT, body)
    return total


@pytest.fixture
def limited() -> Iterator[tuple[Emulator, openai.OpenAI]]:
    """An emulator allowing 100 enqueued tokens for gpt-test, with slow batches."""
    with (
        Emulator(time_scale=1000, enqueued_token_limit={"gpt-test": 100}) as emu,
        openai.OpenAI(base_url=emu.base_url, api_key="k", max_retries=0) as sdk,
    ):
        yield emu, sdk


def create(sdk: openai.OpenAI, batch_lines: list[BatchLine]) -> str:
    """Upload lines and create a chat batch; its id."""
    uploaded = sdk.files.create(file=("in.jsonl", jsonl(batch_lines)), purpose="batch")
    return sdk.batches.create(input_file_id=uploaded.id, endpoint=CHAT, completion_window="24h").id


def test_a_batch_alone_over_the_limit_fails(limited: tuple[Emulator, openai.OpenAI]) -> None:
    """A batch enqueuing more than the limit goes validating -> failed with OpenAI's message."""
    emu, sdk = limited
    big = lines(12)
    assert enqueued(big) > 100
    batch_id = create(sdk, big)
    assert "validating" == sdk.batches.retrieve(batch_id).status
    emu.settle()
    failed = sdk.batches.retrieve(batch_id)
    assert "failed" == failed.status
    assert failed.errors is not None
    assert failed.errors.data
    error = failed.errors.data[0]
    assert ("token_limit_exceeded", None, None) == (error.code, error.line, error.param)
    assert error.message is not None
    assert error.message.startswith("Enqueued token limit reached for gpt-test in organization")
    assert "Limit: 100 enqueued tokens." in error.message
    assert error.message.endswith("try again once some in_progress batches have been completed.")
    assert 0 == settled_ledger(emu).total_billed()


def test_the_queue_counts_validating_and_in_progress_batches(
    limited: tuple[Emulator, openai.OpenAI],
) -> None:
    """A second batch that would push the queue over fails; once the first ends, it fits again."""
    emu, sdk = limited
    first, second = lines(5, tag="a"), lines(6, tag="b")
    assert enqueued(first) <= 100 < enqueued(first) + enqueued(second)
    first_id = create(sdk, first)
    assert enqueued(first) == emu.queued_tokens("gpt-test")
    second_id = create(sdk, second)
    emu.settle()
    assert ["completed", "failed"] == [
        sdk.batches.retrieve(i).status for i in (first_id, second_id)
    ]
    assert 0 == emu.queued_tokens("gpt-test")
    third_id = create(sdk, second)
    emu.settle()
    assert "completed" == sdk.batches.retrieve(third_id).status
    assert len(first) + len(second) == settled_ledger(emu).total_billed()


def test_a_queue_exactly_at_the_limit_is_accepted(
    limited: tuple[Emulator, openai.OpenAI],
) -> None:
    """Batches that fill the queue to exactly the limit all run."""
    emu, sdk = limited
    halves = lines(5, tag="a"), lines(5, tag="b")
    assert 100 == sum(enqueued(half) for half in halves)
    ids = [create(sdk, half) for half in halves]
    emu.settle()
    assert ["completed", "completed"] == [sdk.batches.retrieve(i).status for i in ids]


def test_other_models_have_their_own_queue(limited: tuple[Emulator, openai.OpenAI]) -> None:
    """A limit named for one model leaves other models unlimited."""
    emu, sdk = limited
    batch_id = create(sdk, lines(40, model="other-model"))
    emu.settle()
    assert "completed" == sdk.batches.retrieve(batch_id).status


def test_billed_input_tokens_equal_the_enqueued_count(
    limited: tuple[Emulator, openai.OpenAI],
) -> None:
    """A batch's usage.input_tokens equals what it enqueued: the documented count."""
    emu, sdk = limited
    batch_lines = lines(4)
    batch_id = create(sdk, batch_lines)
    emu.settle()
    usage = sdk.batches.retrieve(batch_id).usage
    assert usage is not None
    assert enqueued(batch_lines) == usage.input_tokens


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        ([], None),
        (["--enqueued-token-limit", "500"], 500),
        (["--enqueued-token-limit", "gpt-4o=9"], {"gpt-4o": 9}),
        (
            ["--enqueued-token-limit", "7", "--enqueued-token-limit", "gpt-4o=9"],
            {"gpt-4o": 9, "*": 7},
        ),
    ],
)
def test_the_command_line_takes_limits(argv: list[str], expected: object) -> None:
    """--enqueued-token-limit takes N for every model or MODEL=N for one, repeatably."""
    args = build_parser().parse_args(argv)
    assert expected == token_limits(args.enqueued_token_limit)


@pytest.mark.parametrize("bad", ["0", "x", "=5", "gpt=-1"])
def test_the_command_line_refuses_bad_limits(bad: str) -> None:
    """A limit that is not a positive integer is an argparse error."""
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--enqueued-token-limit", bad])


def test_a_limit_below_one_is_refused() -> None:
    """Emulator(enqueued_token_limit=0) is a ValueError naming the problem."""
    with pytest.raises(ValueError, match="positive integer"):
        Emulator(enqueued_token_limit=0)
