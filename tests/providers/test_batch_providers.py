"""BatchRunner with one client per provider: each provider's ops through its own batch API."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from typing import Any

import anthropic
import openai
import pydantic
import pytest
from tests.billing import assert_billed_once, assert_reports_add_up, settled_ledger

from inert import BatchRunner, ImmediateRunner, Request, Steps, Store, gather, program
from inert.anthropic import message
from inert.emulator import Emulator
from inert.errors import MissingClientError
from inert.openai import chat, response

from .conftest import Recorder

FAST: Any = {"poll_interval": 0.02, "poll_interval_max": 0.05, "progress": False}


class Sense(pydantic.BaseModel):
    """A structured answer."""

    definition: str


def _claude(prompt: str) -> Request[Sense]:
    content: Any = [{"role": "user", "content": prompt}]
    return message(model="claude-haiku-4-5", max_tokens=300, messages=content, output_format=Sense)


def _chat(prompt: str) -> Request[str]:
    return chat(model="gpt-4o-mini", messages=[{"role": "user", "content": prompt}])


def _response(prompt: str) -> Request[Sense]:
    return response(model="gpt-4o-mini", input=prompt, text_format=Sense)


@program
def entry(word: str) -> Steps[tuple[str, ...]]:
    """Three dependent rounds; each mixes an OpenAI endpoint with Anthropic Messages."""
    gloss, sense = yield from gather(
        _chat(f"Gloss '{word}'."), _claude(f"Give a sense of '{word}'.")
    )
    definition, note = yield from gather(
        _response(f"Define '{word}' as: {gloss}"), _claude(f"Note on '{word}': {sense.definition}")
    )
    example, usage = yield from gather(
        _chat(f"Use '{word}' as in: {definition.definition}"),
        _claude(f"Usage of '{word}' after: {note.definition}"),
    )
    return (
        gloss,
        sense.definition,
        definition.definition,
        note.definition,
        example,
        usage.definition,
    )


WORDS = ["lantern", "quill", "ember"]


async def test_a_mixed_run_is_one_batch_per_provider_per_round_and_matches_immediate(
    openai_client: openai.AsyncOpenAI,
    anthropic_client: anthropic.AsyncAnthropic,
    open_store: Callable[[], Store],
    emu: Emulator,
    recorder: Recorder,
) -> None:
    """Immediate and batch give the same results; each round is one batch job per provider,
    each line is billed once, and a rerun from the store sends nothing."""
    requests = [entry(word) for word in WORDS]
    immediate = ImmediateRunner(openai=openai_client, anthropic=anthropic_client)
    expected = await immediate.run_all(requests)
    distinct = immediate.report.ops_sent
    assert 3 * 6 == distinct
    paid = set(settled_ledger(emu).counts())
    assert 3 * 6 == len(paid)
    emu.reset()
    recorder.paths.clear()

    runner = BatchRunner(
        openai=openai_client, anthropic=anthropic_client, store=open_store(), **FAST
    )
    assert expected == await runner.run_all(requests)
    assert 3 == runner.report.rounds
    assert 6 == runner.report.batches_created
    openai_batches = [await openai_client.batches.retrieve(b) for b in emu.batch_ids()]
    assert ["/v1/chat/completions", "/v1/responses", "/v1/chat/completions"] == [
        b.endpoint for b in openai_batches
    ]
    message_batches = [
        await anthropic_client.messages.batches.retrieve(b) for b in emu.message_batch_ids()
    ]
    assert [len(WORDS)] * 3 == [b.request_counts.succeeded for b in message_batches]
    assert "/anthropic/v1/messages/batches" in recorder.paths
    assert "/anthropic/v1/messages" not in recorder.paths  # nothing went immediate
    assert_billed_once(emu, paid)
    by_endpoint: dict[str, int] = {}
    for charge in settled_ledger(emu).charges():
        assert charge.batch, charge
        by_endpoint[charge.endpoint] = by_endpoint.get(charge.endpoint, 0) + 1
    assert {"/v1/chat/completions": 6, "/v1/responses": 3, "/v1/messages": 9} == by_endpoint
    assert {"openai": 9, "anthropic": 9} == {
        provider: usage.calls for provider, usage in runner.report.by_provider.items()
    }

    sent_before = len(recorder.paths)
    again = BatchRunner(
        openai=openai_client, anthropic=anthropic_client, store=open_store(), **FAST
    )
    assert expected == await again.run_all(requests)
    assert 0 == again.report.ops_sent
    assert distinct == again.report.cache_hits
    assert sent_before == len(recorder.paths)
    assert_billed_once(emu, paid)


async def test_a_batch_run_needing_a_missing_client_fails_before_sending(
    openai_client: openai.AsyncOpenAI, open_store: Callable[[], Store], recorder: Recorder
) -> None:
    """Anthropic ops on a BatchRunner without an Anthropic client: MissingClientError, nothing sent."""
    runner = BatchRunner(openai_client, store=open_store(), **FAST)
    with pytest.raises(MissingClientError, match=r"BatchRunner\(\.\.\., anthropic="):
        await runner.run(gather(_chat("a"), _claude("b")))
    assert [] == recorder.paths


async def test_anthropic_alone_needs_no_openai_client(
    anthropic_client: anthropic.AsyncAnthropic, open_store: Callable[[], Store], emu: Emulator
) -> None:
    """A BatchRunner given only an Anthropic client runs Message Batches (no upload)."""
    runner = BatchRunner(anthropic=anthropic_client, store=open_store(), **FAST)
    result = await runner.run(_claude("Define 'owl'."))
    assert isinstance(result, Sense)
    assert [] == emu.batch_ids()
    assert 1 == len(emu.message_batch_ids())
    shard = runner.store.shards()[0]
    assert ("downloaded", "inline", "/v1/messages") == (
        shard.state,
        shard.input_file_id,
        shard.endpoint,
    )


async def test_the_providers_batches_of_a_round_run_side_by_side(
    openai_client: openai.AsyncOpenAI,
    anthropic_client: anthropic.AsyncAnthropic,
    open_store: Callable[[], Store],
    recorder: Recorder,
) -> None:
    """A round's OpenAI batch and Message Batch are both created before either one's answers
    are downloaded: the providers' shards go in parallel, not one after the other."""
    runner = BatchRunner(
        openai=openai_client, anthropic=anthropic_client, store=open_store(), **FAST
    )
    await runner.run(gather(_chat("Gloss 'oak'."), _claude("Give a sense of 'oak'.")))
    paths = recorder.paths

    def first(pattern: str) -> int:
        return next(i for i, path in enumerate(paths) if re.fullmatch(pattern, path))

    created = max(first("/v1/batches"), first("/anthropic/v1/messages/batches"))
    downloaded = min(
        first("/v1/files/[^/]+/content"), first("/anthropic/v1/messages/batches/[^/]+/results")
    )
    assert created < downloaded, paths


async def test_two_runners_on_one_store_pay_each_providers_lines_once(
    openai_client: openai.AsyncOpenAI,
    anthropic_client: anthropic.AsyncAnthropic,
    open_store: Callable[[], Store],
    emu: Emulator,
) -> None:
    """Two BatchRunners on one store run the mixed three-round requests at once: Message
    Batches are claimed like OpenAI's, so both answer everything, each line of each
    provider is billed once, and the two reports add up to the ledger."""
    requests = [entry(word) for word in WORDS]
    expected = await ImmediateRunner(openai=openai_client, anthropic=anthropic_client).run_all(
        requests
    )
    paid = set(settled_ledger(emu).counts())
    emu.reset()
    emu.set_time_scale(0.5)  # batches long enough for the second run to find the first's
    runners = [
        BatchRunner(openai=openai_client, anthropic=anthropic_client, store=open_store(), **FAST)
        for _ in range(2)
    ]
    answers = await asyncio.gather(*(runner.run_all(requests) for runner in runners))
    assert [expected, expected] == answers
    assert_billed_once(emu, paid)
    assert_reports_add_up(emu, [runner.report for runner in runners])
    assert 3 == len(emu.message_batch_ids())
