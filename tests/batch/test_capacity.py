"""The enqueued-token limit: shards sized and submitted so the queue holds, refusals waited out.

OpenAI limits the prompt tokens a model may have queued in unfinished batches; a batch
over it fails validation with ``token_limit_exceeded``, a signal to wait rather than a
verdict on the requests. These tests run against an emulator with such a limit.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping

import openai
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.billing import settled_ledger

from inert import BatchRunner, ImmediateRunner, Op, Store
from inert.emulator import Emulator
from inert.emulator._tokens import prompt_tokens
from inert.openai import CHAT_COMPLETIONS
from inert.testing import op_of

from ._support import MODEL, Words, ask

WORDS = " ".join(f"w{i}" for i in range(60))
REQUESTS = [ask(f"capacity {i}: {WORDS}") for i in range(8)]
KEYS = [op_of(r).key for r in REQUESTS]
LINE_TOKENS = 3 + 4 + (len(f"capacity 0: {WORDS}") + 3) // 4
"""What one request enqueues at the emulator (docs/emulator.md)."""


@pytest.fixture
def limited() -> Iterator[Emulator]:
    """An emulator whose queue holds about two and a half requests of gpt-4o-mini."""
    with Emulator(time_scale=0.05, seed=0, enqueued_token_limit=LINE_TOKENS * 5 // 2) as emu:
        yield emu


@pytest.fixture
async def limited_client(limited: Emulator) -> AsyncIterator[openai.AsyncOpenAI]:
    """A client with the SDK's default retries on the limited emulator."""
    async with openai.AsyncOpenAI(base_url=limited.base_url, api_key="k") as sdk:
        yield sdk


@pytest.fixture
async def expected(limited_client: openai.AsyncOpenAI, limited: Emulator) -> list[Words]:
    """The answers to REQUESTS, asked immediately (the emulator is reset afterwards)."""
    answers = await ImmediateRunner(limited_client).run_all(REQUESTS)
    limited.reset()
    return answers


def fast(
    client: openai.AsyncOpenAI,
    store: Store,
    *,
    max_requests_per_batch: int = 50_000,
    enqueued_token_limit: int | Mapping[str, int] | None = None,
) -> BatchRunner:
    """A batch runner that polls every few milliseconds and shows no progress."""
    return BatchRunner(
        client,
        store=store,
        poll_interval=0.01,
        poll_interval_max=0.05,
        progress=False,
        max_requests_per_batch=max_requests_per_batch,
        enqueued_token_limit=enqueued_token_limit,
    )


def billed_once(emu: Emulator) -> bool:
    """Every request billed exactly once, once every batch ran to its end."""
    return dict.fromkeys(KEYS, 1) == settled_ledger(emu).counts()


async def test_a_known_limit_smaller_than_a_round_is_never_exceeded(
    limited_client: openai.AsyncOpenAI, limited: Emulator, store: Store, expected: list[Words]
) -> None:
    """Told the limit, the runner answers every request in one run and no batch is refused."""
    runner = fast(limited_client, store, enqueued_token_limit={MODEL: LINE_TOKENS * 5 // 2})
    assert expected == await runner.run_all(REQUESTS)
    records = store.shards()
    assert {"downloaded"} == {r.state for r in records}
    assert all(r.tokens <= LINE_TOKENS * 5 // 2 or r.size == 1 for r in records)
    assert 1 == runner.report.rounds
    assert billed_once(limited)


async def test_refused_batches_wait_for_the_queue_and_are_resubmitted(
    limited_client: openai.AsyncOpenAI, limited: Emulator, store: Store, expected: list[Words]
) -> None:
    """Not told the limit, shards refused with token_limit_exceeded wait, go again, pay once."""
    runner = fast(limited_client, store, max_requests_per_batch=2)
    assert expected == await runner.run_all(REQUESTS)
    refused = [r for r in store.shards() if r.state == "failed"]
    assert refused
    assert all(r.error is not None and "token_limit_exceeded" in r.error for r in refused)
    children = {r.parent_id for r in store.shards() if r.parent_id is not None}
    assert {r.id for r in refused} <= children
    assert billed_once(limited)


async def test_a_shard_alone_over_the_limit_is_split(
    limited_client: openai.AsyncOpenAI, limited: Emulator, store: Store, expected: list[Words]
) -> None:
    """One shard that alone exceeds an unknown limit is refused, split, and all of it answered."""
    runner = fast(limited_client, store)
    assert expected == await runner.run_all(REQUESTS)
    first = store.shards()[0]
    assert (8, "failed") == (first.size, first.state)
    assert max(r.size for r in store.shards() if r.state == "downloaded") <= 2
    assert billed_once(limited)


async def test_a_known_limit_splits_a_round_into_shards_that_fit(
    limited_client: openai.AsyncOpenAI, store: Store
) -> None:
    """With a limit of two lines' estimate, a round of eight is cut into shards of two."""
    ops = [op_of(r) for r in REQUESTS]
    two_lines = max(len(_line(op)) for op in ops) * 2
    runner = fast(limited_client, store, enqueued_token_limit=two_lines)
    await runner.run_all(REQUESTS)
    assert [2, 2, 2, 2] == [r.size for r in store.shards()]


def _line(op: Op[object]) -> bytes:
    from inert._runners._batch import jsonl_line

    return jsonl_line(op).encode()


@pytest.mark.parametrize("bad", [0, -5, 1.5, "100", {"gpt-4o-mini": 0}, {None: 10}])
def test_a_bad_limit_is_refused_when_the_runner_is_built(
    limited_client: openai.AsyncOpenAI, store: Store, bad: object
) -> None:
    """An enqueued_token_limit that is not a positive int (or a mapping of them) is refused."""
    with pytest.raises(ValueError, match="enqueued_token_limit"):
        fast(limited_client, store, enqueued_token_limit=bad)  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]  # the mistake under test


texts = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=300)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["system", "user", "assistant"]), texts), min_size=1, max_size=5
    )
)
def test_the_estimate_is_never_below_the_emulators_count(messages: list[tuple[str, str]]) -> None:
    """For any chat body, the runner's token estimate is at least what the emulator enqueues."""
    from inert._runners._batch import plan_shards

    body = {"model": MODEL, "messages": [{"role": r, "content": t} for r, t in messages]}
    op = Op(endpoint=CHAT_COMPLETIONS, body=body, decode=lambda raw: raw)
    (plan,), _ = plan_shards([op], max_requests=10, max_bytes=10**9)
    assert plan.tokens >= prompt_tokens(CHAT_COMPLETIONS, body)
    assert plan.tokens == len(_line(op))
