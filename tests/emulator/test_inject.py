"""One-shot injected faults: each route and kind, as the SDK sees them."""

from __future__ import annotations

from collections.abc import Callable

import openai
import pytest

from inert.emulator import Emulator

from ._support import chat_line, jsonl, read_jsonl

Call = Callable[[openai.OpenAI, dict[str, str]], object]


def _ids(client: openai.OpenAI) -> dict[str, str]:
    """A batch input file and a completed batch, for the routes that need ids."""
    uploaded = client.files.create(file=("in.jsonl", jsonl([chat_line("a", "x")])), purpose="batch")
    batch = client.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    return {"file": uploaded.id, "batch": batch.id}


ROUTE_CALLS: dict[str, Call] = {
    "chat.completions": lambda c, _: c.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "hi"}]
    ),
    "embeddings": lambda c, _: c.embeddings.create(model="e", input="hi"),
    "files.create": lambda c, _: c.files.create(file=("x.jsonl", b"{}\n"), purpose="batch"),
    "files.list": lambda c, _: c.files.list(),
    "files.retrieve": lambda c, ids: c.files.retrieve(ids["file"]),
    "files.content": lambda c, ids: c.files.content(ids["file"]),
    "files.delete": lambda c, ids: c.files.delete(ids["file"]),
    "batches.create": lambda c, ids: c.batches.create(
        input_file_id=ids["file"], endpoint="/v1/chat/completions", completion_window="24h"
    ),
    "batches.list": lambda c, _: c.batches.list(),
    "batches.retrieve": lambda c, ids: c.batches.retrieve(ids["batch"]),
    "batches.cancel": lambda c, ids: c.batches.cancel(ids["batch"]),
}


@pytest.fixture
def slow(emu: Emulator) -> Emulator:
    """The emulator with batches slow enough to stay cancellable through a test."""
    emu.set_time_scale(1000)
    return emu


@pytest.mark.parametrize("route", sorted(ROUTE_CALLS))
def test_a_rate_limit_hits_once_then_the_route_answers(
    client: openai.OpenAI, slow: Emulator, route: str
) -> None:
    """An injected 429 (with its Retry-After) hits the next call to that route only."""
    ids = _ids(client)
    slow.inject(route, "rate_limit", retry_after=2.5)
    with pytest.raises(openai.RateLimitError) as caught:
        ROUTE_CALLS[route](client, ids)
    assert "2.500" == caught.value.response.headers["retry-after"]
    ROUTE_CALLS[route](client, ids)


@pytest.mark.parametrize("route", sorted(ROUTE_CALLS))
def test_server_errors_take_the_given_status(
    client: openai.OpenAI, slow: Emulator, route: str
) -> None:
    """count=2 server errors with status 502 fail two calls in a row, in OpenAI's error shape."""
    ids = _ids(client)
    slow.inject(route, "server_error", count=2, status=502)
    for _ in range(2):
        with pytest.raises(openai.InternalServerError) as caught:
            ROUTE_CALLS[route](client, ids)
        assert 502 == caught.value.status_code
    ROUTE_CALLS[route](client, ids)


@pytest.mark.parametrize("route", sorted(ROUTE_CALLS))
def test_a_disconnect_drops_the_connection(
    client: openai.OpenAI, slow: Emulator, route: str
) -> None:
    """An injected disconnect surfaces as APIConnectionError, and nothing happens at the server."""
    ids = _ids(client)
    slow.inject(route, "disconnect")
    with pytest.raises(openai.APIConnectionError):
        ROUTE_CALLS[route](client, ids)
    assert 1 == len(slow.batch_ids())
    assert 0 == slow.ledger.total_billed()


def test_a_rate_limit_without_retry_after_sends_no_header(
    client: openai.OpenAI, emu: Emulator
) -> None:
    """A 429 injected without retry_after carries no Retry-After header."""
    emu.inject("files.list", "rate_limit")
    with pytest.raises(openai.RateLimitError) as caught:
        client.files.list()
    assert "retry-after" not in caught.value.response.headers


def test_not_json_serves_an_html_page(client: openai.OpenAI, emu: Emulator) -> None:
    """not_json answers a proxy's HTML page with status 200, which the SDK hands back as text."""
    ids = _ids(client)
    emu.inject("batches.retrieve", "not_json")
    page = client.batches.retrieve(ids["batch"])
    assert isinstance(page, str)
    assert page.startswith("<html>")
    emu.inject("files.create", "not_json", status=502)
    with pytest.raises(openai.InternalServerError) as caught:
        client.files.create(file=("x.jsonl", b"{}\n"), purpose="batch")
    assert "text/html" == caught.value.response.headers["content-type"].split(";")[0]


@pytest.mark.parametrize("status", [None, 500, 502])
def test_create_lost_makes_the_batch_and_loses_the_answer(
    client: openai.OpenAI, emu: Emulator, status: int | None
) -> None:
    """create_lost makes exactly one batch, which runs and bills, while the caller sees a failure."""
    uploaded = client.files.create(file=("in.jsonl", jsonl([chat_line("a", "x")])), purpose="batch")
    emu.inject("batches.create", "create_lost", status=status)
    expected = openai.APIConnectionError if status is None else openai.InternalServerError
    with pytest.raises(expected):
        client.batches.create(
            input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
        )
    (batch_id,) = emu.batch_ids()
    emu.settle()
    assert "completed" == client.batches.retrieve(batch_id).status
    assert 1 == emu.ledger.total_billed()


def test_truncated_cuts_one_download_short(client: openai.OpenAI, emu: Emulator) -> None:
    """truncated answers 200 with the first part of the file only; the next download is whole."""
    lines = jsonl([chat_line(f"c{i}", f"q {i}") for i in range(10)])
    uploaded = client.files.create(file=("in.jsonl", lines), purpose="batch")
    emu.inject("files.content", "truncated")
    cut = client.files.content(uploaded.id).content
    assert 0 < len(cut) < len(lines)
    assert lines.startswith(cut)
    assert not cut.endswith(b"\n")
    assert lines == client.files.content(uploaded.id).content


def test_injections_are_taken_in_order(client: openai.OpenAI, emu: Emulator) -> None:
    """Faults queued for one route are taken first in, first out, and other routes are untouched."""
    emu.inject("files.list", "server_error", status=503)
    emu.inject("files.list", "rate_limit")
    client.batches.list()
    with pytest.raises(openai.InternalServerError):
        client.files.list()
    with pytest.raises(openai.RateLimitError):
        client.files.list()
    assert [] == client.files.list().data


@pytest.mark.parametrize(
    ("route", "kind", "extra", "problem"),
    [
        ("files.upload", "rate_limit", {}, "unknown route"),
        ("files.list", "teapot", {}, "unknown fault kind"),
        ("files.list", "create_lost", {}, "batches.create route only"),
        ("batches.create", "truncated", {}, "files.content route only"),
        ("files.list", "rate_limit", {"count": 0}, "positive integer"),
        ("files.list", "server_error", {"status": 404}, "does not fit"),
        ("files.list", "disconnect", {"retry_after": 1.0}, "retry_after"),
    ],
)
def test_bad_injections_are_refused(
    emu: Emulator, route: str, kind: str, extra: dict[str, int | float], problem: str
) -> None:
    """inject refuses an unknown route or kind, or a kind, count or status that does not fit."""
    with pytest.raises(ValueError, match=problem):
        emu.inject(route, kind, **extra)  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]  # mixed keyword values


def test_truncated_output_file_is_a_prefix(client: openai.OpenAI, emu: Emulator) -> None:
    """A truncated download of a batch output file is a prefix of the whole file."""
    uploaded = client.files.create(
        file=("in.jsonl", jsonl([chat_line(f"c{i}", f"q {i}") for i in range(6)])), purpose="batch"
    )
    batch = client.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    emu.settle()
    output_id = client.batches.retrieve(batch.id).output_file_id
    assert output_id is not None
    whole = client.files.content(output_id).content
    emu.inject("files.content", "truncated")
    assert whole.startswith(client.files.content(output_id).content)
    assert 6 == len(read_jsonl(client, output_id))
