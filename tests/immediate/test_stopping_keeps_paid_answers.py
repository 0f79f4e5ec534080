"""A run that fails, is interrupted or is cancelled stops paying and keeps what it paid for.

Counts come from the emulator's ledger (what the server billed), answers kept from
the store the runner wrote to.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import openai
import pytest
from tests.billing import settled_ledger

from inert import ImmediateRunner, Op, Request, Store, call
from inert._json import JSON
from inert.emulator import Emulator
from inert.openai import structured

from .conftest import Recorder, Synonyms

MODEL = "gpt-4o-mini"
CONCURRENCY = 16


def _ask(word: str) -> Request[Synonyms]:
    return structured(
        model=MODEL,
        messages=[{"role": "user", "content": f"Synonyms of {word!r}."}],
        response_format=Synonyms,
    )


def _billed_and_kept(emulator: Emulator, store: Store) -> tuple[set[str], set[str]]:
    """Keys the server billed, and those of them the store holds."""
    billed = set(settled_ledger(emulator).counts())
    return billed, set(store.get_responses(sorted(billed)))


def _boom(_: Synonyms) -> float:
    return 1 / 0


async def test_a_failing_map_sends_no_new_call_and_stores_every_paid_answer(
    client: openai.AsyncOpenAI, emulator: Emulator, tmp_path: Path
) -> None:
    """A bug in one .map among 2,000 requests ends the run after at most the calls on the wire."""
    emulator.set_latency_ms(20)
    store = Store(tmp_path / "answers.db")
    runner = ImmediateRunner(client, max_concurrency=CONCURRENCY, store=store)
    requests: list[Request[object]] = [_ask(f"word {i}") for i in range(2000)]
    requests[0] = _ask("word 0").map(_boom)
    with pytest.raises(ZeroDivisionError):
        await runner.run_all(requests)
    billed, kept = _billed_and_kept(emulator, store)
    assert len(billed) <= 2 * CONCURRENCY
    assert billed == kept


def _interrupting(error: type[BaseException]) -> Request[JSON]:
    """A call whose decoder raises ``error`` (an interrupt, not a per-item failure)."""

    def decode(raw: JSON) -> JSON:
        raise error

    body: dict[str, JSON] = {
        "model": MODEL,
        "messages": [{"role": "user", "content": "interrupt me"}],
    }
    return call(Op(endpoint="/v1/chat/completions", body=body, decode=decode))


@pytest.mark.parametrize("error", [KeyboardInterrupt, SystemExit])
def test_an_interrupt_raised_in_a_decoder_keeps_every_paid_answer(
    emulator: Emulator, tmp_path: Path, error: type[BaseException]
) -> None:
    """KeyboardInterrupt or SystemExit from a decoder stops new calls; calls on the wire are kept."""
    emulator.set_latency_ms(20)
    store = Store(tmp_path / "answers.db")
    requests: list[Request[object]] = [_interrupting(error)]
    requests += [_ask(f"word {i}") for i in range(300)]

    async def main() -> None:
        async with openai.AsyncOpenAI(base_url=emulator.base_url, api_key="test-key") as sdk:
            runner = ImmediateRunner(sdk, max_concurrency=CONCURRENCY, store=store)
            await runner.run_all(requests)

    # Its own event loop: the interrupt leaves the loop, as it would in a script.
    with pytest.raises(error):
        asyncio.run(main())
    billed, kept = _billed_and_kept(emulator, store)
    assert len(billed) <= 2 * CONCURRENCY
    # The interrupting call itself was paid for, and its raw answer is kept too.
    assert billed == kept


async def test_cancelling_a_run_finishes_the_calls_on_the_wire_and_stores_them(
    client: openai.AsyncOpenAI, emulator: Emulator, recorder: Recorder, tmp_path: Path
) -> None:
    """A cancelled run starts nothing new, waits for the calls already sent, and stores them."""
    emulator.set_latency_ms(300)
    store = Store(tmp_path / "answers.db")
    runner = ImmediateRunner(client, max_concurrency=CONCURRENCY, store=store)
    run = asyncio.ensure_future(runner.run_all([_ask(f"word {i}") for i in range(500)]))
    await recorder.until(lambda r: r.in_flight == CONCURRENCY)
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    billed, kept = _billed_and_kept(emulator, store)
    assert CONCURRENCY <= len(billed) <= 2 * CONCURRENCY
    assert billed == kept
