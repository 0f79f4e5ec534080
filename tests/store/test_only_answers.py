"""Only answers are stored: an error object sent with 200 is a failure, never a cached answer,
and a stored answer can be forgotten."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx2
import openai
import pytest
from returns.result import Failure, Success
from tests.billing import settled_ledger

from inert import ImmediateRunner, Op, Store, call
from inert._json import JSON
from inert.emulator import Emulator
from inert.errors import ApiError, ConnectionFailedError, InvalidOutputError
from inert.openai import CHAT_COMPLETIONS
from inert.testing import op_of

from ._support import ask

REFUSED = "REFUSED-BY-GATEWAY"


class Gateway(httpx2.AsyncBaseTransport):
    """A proxy in front of the API that answers some calls itself: 200 with an error object.

    Gateways and proxies report their own failures this way (the body is the API's
    ``ErrorResponse`` shape, openai-openapi); the call never reaches the API, so it
    is not billed there.
    """

    def __init__(self) -> None:
        self.inner = httpx2.AsyncHTTPTransport()
        self.refusing = True

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        if self.refusing and REFUSED.encode() in request.content:
            return httpx2.Response(
                200,
                json={"error": {"message": "upstream overloaded", "code": "gateway_busy"}},
            )
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


@pytest.fixture
def gateway() -> Gateway:
    """A fresh gateway that refuses the marked calls."""
    return Gateway()


@pytest.fixture
async def proxied(emu: Emulator, gateway: Gateway) -> AsyncIterator[openai.AsyncOpenAI]:
    """An SDK client that reaches the emulator through the gateway."""
    http = openai.DefaultAsyncHttpxClient(transport=gateway)
    async with openai.AsyncOpenAI(
        base_url=emu.base_url, api_key="test", http_client=http, max_retries=0
    ) as sdk:
        yield sdk


async def test_an_error_object_sent_with_200_is_a_failure_and_is_not_stored(
    proxied: openai.AsyncOpenAI, gateway: Gateway, emu: Emulator, store_path: Path
) -> None:
    """The refused calls fail with ApiError(status 200, the gateway's code); a rerun asks again."""
    requests = [ask(i, REFUSED if i % 3 == 0 else "") for i in range(6)]
    with Store(store_path) as store:
        runner = ImmediateRunner(proxied, store=store, progress=False)
        results = await runner.run_all_settled(requests)
        refused = [r.failure() for r in results if isinstance(r, Failure)]
        assert [(200, "gateway_busy")] * 2 == [
            (e.status, e.code) for e in refused if isinstance(e, ApiError)
        ]
        assert 4 == store.response_count()
        assert 4 == settled_ledger(emu).total_billed()

        gateway.refusing = False
        again = await runner.run_all_settled(requests)
        assert all(isinstance(r, Success) for r in again)
        assert 2 == runner.report.ops_sent
        assert 6 == settled_ledger(emu).total_billed()


async def test_an_error_object_an_older_inert_stored_is_not_served(
    client: openai.AsyncOpenAI, emu: Emulator, store_path: Path
) -> None:
    """A stored error object is asked again, and the real answer takes its place."""
    request = ask(1, " kept by an older inert")
    key = op_of(request).key
    with Store(store_path) as store:
        store.put_responses([(op_of(request), {"error": {"message": "from a proxy"}})])
        value = await ImmediateRunner(client, store=store, progress=False).run(request)
        stored = store.get_responses([key])[key]
    assert isinstance(value, str)
    assert 1 == settled_ledger(emu).times_billed(key)
    assert isinstance(stored, dict)
    assert "choices" in stored


def rejecting(error: Exception) -> Op[str]:
    """The chat op of ``ask(7)`` with a decoder that always raises ``error``."""

    def decode(raw: JSON) -> str:
        raise error

    return Op(endpoint=CHAT_COMPLETIONS, body=op_of(ask(7)).body, decode=decode)


@pytest.mark.parametrize(
    ("error", "kept"),
    [
        (ApiError("the body is an error report"), False),
        (ConnectionFailedError("the body is no answer"), False),
        (InvalidOutputError("the answer does not parse"), True),
    ],
    ids=["ApiError", "ConnectionFailedError", "InvalidOutputError"],
)
async def test_a_body_the_decoder_rejects_as_a_transport_failure_is_not_stored(
    client: openai.AsyncOpenAI, store_path: Path, error: Exception, kept: bool
) -> None:
    """A decoder's ApiError/ConnectionFailedError says "no answer"; any other error keeps it."""
    op = rejecting(error)
    with Store(store_path) as store:
        result = await ImmediateRunner(client, store=store, progress=False).run_all_settled(
            [call(op)]
        )
        assert [type(error)] == [type(r.failure()) for r in result if isinstance(r, Failure)]
        assert kept == bool(store.get_responses([op.key]))


async def test_a_forgotten_answer_is_asked_again_and_the_rest_are_not(
    client: openai.AsyncOpenAI, emu: Emulator, store_path: Path
) -> None:
    """``forget`` drops exactly the given answers; the next run pays for those alone."""
    requests = [ask(i, " forget") for i in range(4)]
    keys = [op_of(r).key for r in requests]
    with Store(store_path) as store:
        runner = ImmediateRunner(client, store=store, progress=False)
        await runner.run_all(requests)
        assert 1 == store.forget([keys[2], keys[2], "not-a-stored-key"])
        assert {keys[0], keys[1], keys[3]} == set(store.get_responses(keys))
        await runner.run_all(requests)
    assert [1, 1, 2, 1] == [settled_ledger(emu).times_billed(key) for key in keys]
