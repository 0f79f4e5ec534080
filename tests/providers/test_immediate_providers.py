"""ImmediateRunner with one client per provider: each op goes through its provider's client."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anthropic
import openai
import pydantic
import pytest
from tests.billing import assert_billed_once, keys_of, settled_ledger

from inert import ImmediateRunner, Request, Steps, Store, gather, program
from inert.anthropic import message
from inert.emulator import Emulator
from inert.errors import MissingClientError, RateLimitError
from inert.openai import chat, response

from .conftest import Recorder


class Sense(pydantic.BaseModel):
    """A structured answer."""

    definition: str


PROMPT: Any = [{"role": "user", "content": "Define 'owl'."}]


def _claude(word: str) -> Request[Sense]:
    prompt: Any = [{"role": "user", "content": f"Define '{word}'."}]
    return message(model="claude-haiku-4-5", max_tokens=300, messages=prompt, output_format=Sense)


async def test_each_op_goes_to_its_providers_client(
    openai_client: openai.AsyncOpenAI,
    anthropic_client: anthropic.AsyncAnthropic,
    recorder: Recorder,
    emu: Emulator,
) -> None:
    """OpenAI ops reach /v1/..., Anthropic ops /anthropic/v1/messages; each is billed once."""
    requests: list[Request[object]] = [
        chat(model="gpt-4o-mini", messages=PROMPT),
        response(model="gpt-4o-mini", input="Define 'owl'.", text_format=Sense),
        _claude("owl"),
    ]
    runner = ImmediateRunner(openai=openai_client, anthropic=anthropic_client)
    await runner.run_all(requests)
    assert ["/anthropic/v1/messages", "/v1/chat/completions", "/v1/responses"] == sorted(
        recorder.paths
    )
    assert_billed_once(emu, keys_of(requests))


async def test_a_missing_client_fails_the_run_before_anything_is_sent(
    openai_client: openai.AsyncOpenAI, recorder: Recorder
) -> None:
    """Ops for a provider without a client raise MissingClientError naming the argument."""
    both = gather(chat(model="gpt-4o-mini", messages=PROMPT), _claude("owl"))
    with pytest.raises(MissingClientError, match=r"anthropic=anthropic\.AsyncAnthropic"):
        await ImmediateRunner(openai_client).run(both)
    assert [] == recorder.paths


@program
def _gloss_then_claude(word: str) -> Steps[Sense]:
    """A first round on OpenAI; only its answer shows that a second one needs Claude."""
    gloss = yield from chat(model="gpt-4o-mini", messages=[{"role": "user", "content": word}])
    return (yield from _claude(gloss))


async def test_a_later_round_needing_a_missing_client_stops_the_run_keeping_what_was_paid(
    openai_client: openai.AsyncOpenAI,
    anthropic_client: anthropic.AsyncAnthropic,
    emu: Emulator,
    store_path: Path,
) -> None:
    """The round that needs Claude fails at once without sending it, and says so without
    claiming that nothing was sent; the first round's paid answer is kept, so the run
    given the client pays only for the Claude call."""
    with Store(store_path) as store:
        with pytest.raises(MissingClientError) as caught:
            await ImmediateRunner(openai_client, store=store).run(_gloss_then_claude("owl"))
        assert "none of these calls was sent" in str(caught.value)
        assert "nothing was sent" not in str(caught.value)
        assert 1 == settled_ledger(emu).total_billed()
        runner = ImmediateRunner(openai=openai_client, anthropic=anthropic_client, store=store)
        await runner.run(_gloss_then_claude("owl"))
        assert (1, 1) == (runner.report.cache_hits, runner.report.ops_sent)
    assert 2 == settled_ledger(emu).total_billed()


def test_runners_need_some_client_and_the_openai_one_once(
    openai_client: openai.AsyncOpenAI,
) -> None:
    """No client at all, or the OpenAI client both positionally and by name, is a TypeError."""
    with pytest.raises(TypeError, match="needs a client"):
        ImmediateRunner()
    with pytest.raises(TypeError, match="twice"):
        ImmediateRunner(openai_client, openai=openai_client)
    with pytest.raises(TypeError, match="AsyncAnthropic"):
        ImmediateRunner(anthropic=openai_client)  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]  # the wrong kind, on purpose


async def test_anthropic_rate_limits_are_retried_and_typed(
    anthropic_client: anthropic.AsyncAnthropic, emu: Emulator
) -> None:
    """A 429 rate_limit_error is retried after its retry-after; when they persist, RateLimitError."""
    emu.inject("anthropic.messages", "rate_limit", retry_after=0.01)
    runner = ImmediateRunner(anthropic=anthropic_client, backoff_base=0.01, max_retries=2)
    await runner.run(_claude("owl"))
    assert 1 == runner.report.retries
    emu.inject("anthropic.messages", "rate_limit", count=3, retry_after=0.01)
    (result,) = await runner.run_all_settled([_claude("elm")])
    error = result.failure()
    assert isinstance(error, RateLimitError)
    assert ("rate_limit_error", 429) == (error.code, error.status)
