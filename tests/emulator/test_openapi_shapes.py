"""Every answer the emulator sends validates against OpenAI's published schemas (vendored).

Happy paths, error paths and fault paths alike: batch objects in every status,
file objects and lists, output and error file lines (and the bodies inside them),
model answers on every endpoint, and every error body. See ``_openapi.py`` for
the few documented relaxations of the spec.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any

import openai
import pydantic
import pytest

from inert.emulator import Emulator, Faults

from ._openapi import problems, validator
from ._support import BatchLine, chat_line, jsonl

Raw = Callable[[], Any]

BODY_SCHEMAS = {
    "/v1/chat/completions": "CreateChatCompletionResponse",
    "/v1/embeddings": "CreateEmbeddingResponse",
    "/v1/responses": "Response",
    "/v1/completions": "CreateCompletionResponse",
    "/v1/moderations": "CreateModerationResponse",
}


class Word(pydantic.BaseModel):
    lemma: str
    syllables: int
    senses: list[str]


def body(call: Raw) -> tuple[int, Any]:
    """The status and JSON body of a raw SDK call, whether it succeeded or not."""
    try:
        response = call()
    except openai.APIStatusError as exc:
        return exc.status_code, exc.response.json()
    return response.http_response.status_code, response.http_response.json()


def valid(component: str, value: object) -> None:
    """Assert that ``value`` validates as ``component``, listing every problem if not."""
    assert [] == problems(component, value), json.dumps(value)[:2000]


def lines(count: int, endpoint: str = "/v1/chat/completions") -> list[BatchLine]:
    """``count`` distinct lines for ``endpoint``."""
    bodies: dict[str, Callable[[int], dict[str, Any]]] = {
        "/v1/chat/completions": lambda i: {
            "model": "gpt-test",
            "messages": [{"role": "user", "content": f"q {i}"}],
        },
        "/v1/embeddings": lambda i: {"model": "emb", "input": [f"w {i}", "x"]},
        "/v1/responses": lambda i: {"model": "gpt-test", "input": f"define {i}"},
        "/v1/completions": lambda i: {"model": "gpt-test", "prompt": f"say {i}"},
        "/v1/moderations": lambda i: {"input": f"text {i}"},
    }
    return [
        {"custom_id": f"c{i}", "method": "POST", "url": endpoint, "body": bodies[endpoint](i)}
        for i in range(count)
    ]


def run_batch(
    client: openai.OpenAI,
    emu: Emulator,
    batch_lines: list[BatchLine],
    endpoint: str = "/v1/chat/completions",
) -> str:
    """Upload, create (validating the created batch) and settle a batch; its id."""
    uploaded = client.files.create(file=("in.jsonl", jsonl(batch_lines)), purpose="batch")
    status, created = body(
        lambda: client.batches.with_raw_response.create(
            input_file_id=uploaded.id,
            endpoint=endpoint,  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]  # one of the SDK's endpoint literals
            completion_window="24h",
            metadata={"shard": "1"},
        )
    )
    assert 200 == status
    valid("Batch", created)
    emu.settle()
    return str(created["id"])


def check_files_of(client: openai.OpenAI, batch: dict[str, Any]) -> int:
    """Validate every line of a batch's output and error files and the bodies in them."""
    checked = 0
    for key in ("output_file_id", "error_file_id"):
        file_id = batch[key]
        if file_id is None:
            continue
        status, meta = body(functools.partial(client.files.with_raw_response.retrieve, file_id))
        assert 200 == status
        valid("OpenAIFile", meta)
        for raw in client.files.content(file_id).text.split("\n"):
            if not raw:
                continue
            line = json.loads(raw)
            valid("BatchRequestOutput", line)
            response = line["response"]
            if response is not None:
                schema = (
                    BODY_SCHEMAS[batch["endpoint"]]
                    if response["status_code"] == 200
                    else "ErrorResponse"
                )
                valid(schema, response["body"])
            checked += 1
    return checked


def test_every_component_is_vendored() -> None:
    """Each schema the tests name is in the vendored document."""
    for component in [
        *BODY_SCHEMAS.values(),
        "Batch",
        "OpenAIFile",
        "ListFilesResponse",
        "ListBatchesResponse",
        "DeleteFileResponse",
        "ErrorResponse",
        "BatchRequestOutput",
    ]:
        validator(component)


BREAKAGES: list[tuple[str, str, list[object], object]] = [
    ("Response", "responses text", ["output", 0, "content", 0, "type"], "bogus"),
    ("Response", "responses text", ["usage", "input_tokens_details"], None),
    ("Response", "responses text", ["tools"], None),
    ("CreateChatCompletionResponse", "chat text", ["choices", 0, "finish_reason"], "done"),
    ("CreateChatCompletionResponse", "chat text", ["choices", 0, "message", "role"], "user"),
    ("CreateModerationResponse", "moderations", ["results", 0, "categories", "hate"], None),
    ("CreateCompletionResponse", "completions", ["choices", 0, "text"], 3),
    ("CreateEmbeddingResponse", "embeddings", ["data", 0, "embedding"], [["0.1"]]),
]


@pytest.mark.parametrize(("component", "name", "path", "value"), BREAKAGES)
def test_a_broken_answer_fails_its_schema(
    client: openai.OpenAI, component: str, name: str, path: list[object], value: object
) -> None:
    """A real answer with one nested field broken (None: removed) no longer validates."""
    _, answer = body(lambda: ANSWERS[name][1](client))
    valid(component, answer)
    node: Any = answer
    for step in path[:-1]:
        node = node[step]
    if value is None:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    assert problems(component, answer)


def test_the_schemas_are_not_vacuous() -> None:
    """The validators refuse objects with a wrong type, a missing field or an unknown status."""
    assert problems("Batch", {"id": "b", "object": "batch"})
    assert problems("ErrorResponse", {"error": {"message": "m"}})
    assert problems(
        "OpenAIFile",
        {
            "id": "f",
            "object": "file",
            "bytes": "9",
            "created_at": 1,
            "filename": "x",
            "purpose": "batch",
            "status": "processed",
        },
    )
    good = {
        "id": "b",
        "object": "batch",
        "endpoint": "/v1/chat/completions",
        "input_file_id": "f",
        "completion_window": "24h",
        "status": "done",
        "created_at": 1,
    }
    assert problems("Batch", good)
    assert problems(
        "BatchRequestOutput", {"id": "x", "custom_id": 1, "response": None, "error": None}
    )


@pytest.mark.parametrize("endpoint", sorted(BODY_SCHEMAS))
def test_completed_batches_and_their_files(
    client: openai.OpenAI, emu: Emulator, endpoint: str
) -> None:
    """A completed batch, its output and error lines (ok, failed, expired) and their bodies validate."""
    emu.set_faults(Faults(line_expired=0.3, line_failed=0.3))
    batch_id = run_batch(client, emu, lines(12, endpoint), endpoint)
    status, batch = body(lambda: client.batches.with_raw_response.retrieve(batch_id))
    assert (200, "completed") == (status, batch["status"])
    valid("Batch", batch)
    assert batch["error_file_id"] is not None
    assert 12 == check_files_of(client, batch)


@pytest.mark.parametrize(
    "faults",
    [
        Faults(external_cancel=1.0),
        Faults(batch_expire=1.0),
        Faults(batch_failed=1.0),
        Faults(unknown_custom_id=1.0),
        Faults(drop_output=1.0),
    ],
    ids=["external_cancel", "batch_expire", "batch_failed", "unknown_custom_id", "drop_output"],
)
def test_batches_ended_by_faults(client: openai.OpenAI, emu: Emulator, faults: Faults) -> None:
    """Cancelled, expired, failed and odd-output batches, and their files, validate."""
    emu.set_faults(faults)
    batch_id = run_batch(client, emu, lines(10))
    status, batch = body(lambda: client.batches.with_raw_response.retrieve(batch_id))
    assert 200 == status
    valid("Batch", batch)
    check_files_of(client, batch)


def test_batches_failing_validation(client: openai.OpenAI, emu: Emulator) -> None:
    """Batches failing validation (bad lines, the enqueued-token limit) validate with their errors."""
    bad: list[BatchLine] = [
        chat_line("a", "x"),
        chat_line("a", "y"),
        {"custom_id": "b", "method": "GET"},
    ]
    batch_id = run_batch(client, emu, bad)
    status, batch = body(lambda: client.batches.with_raw_response.retrieve(batch_id))
    assert (200, "failed") == (status, batch["status"])
    assert 2 == len(batch["errors"]["data"])
    valid("Batch", batch)
    with (
        Emulator(enqueued_token_limit=1) as limited,
        openai.OpenAI(base_url=limited.base_url, api_key="k", max_retries=0) as sdk,
    ):
        limited_id = run_batch(sdk, limited, lines(2))
        _, refused = body(lambda: sdk.batches.with_raw_response.retrieve(limited_id))
    assert "token_limit_exceeded" == refused["errors"]["data"][0]["code"]
    valid("Batch", refused)


def test_batches_in_flight_and_cancelling(client: openai.OpenAI, emu: Emulator) -> None:
    """A validating batch, a cancelling one and the list of batches validate."""
    emu.set_time_scale(1000)
    uploaded = client.files.create(file=("in.jsonl", jsonl(lines(3))), purpose="batch")
    ids = [
        client.batches.create(
            input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
        ).id
        for _ in range(3)
    ]
    status, cancelling = body(lambda: client.batches.with_raw_response.cancel(ids[0]))
    assert (200, "cancelling") == (status, cancelling["status"])
    valid("Batch", cancelling)
    status, page = body(lambda: client.batches.with_raw_response.list(limit=2))
    assert 200 == status
    valid("ListBatchesResponse", page)
    assert page["has_more"]


def test_file_objects_lists_and_deletes(client: openai.OpenAI, emu: Emulator) -> None:
    """Uploads (with and without expiry), file lists (empty and not) and deletions validate."""
    status, empty = body(lambda: client.files.with_raw_response.list())
    assert (200, []) == (status, empty["data"])
    valid("ListFilesResponse", empty)
    uploads = [
        body(
            lambda: client.files.with_raw_response.create(
                file=("in.jsonl", b"{}\n"), purpose="batch"
            )
        ),
        body(
            lambda: client.files.with_raw_response.create(file=("n.txt", b"x"), purpose="user_data")
        ),
        body(
            lambda: client.files.with_raw_response.create(
                file=("e.txt", b"x"),
                purpose="vision",
                expires_after={"anchor": "created_at", "seconds": 3600},
            )
        ),
    ]
    for status, uploaded in uploads:
        assert 200 == status
        valid("OpenAIFile", uploaded)
    status, page = body(lambda: client.files.with_raw_response.list(limit=2))
    valid("ListFilesResponse", page)
    file_id = uploads[0][1]["id"]
    status, deleted = body(lambda: client.files.with_raw_response.delete(file_id))
    assert (200, True) == (status, deleted["deleted"])
    valid("DeleteFileResponse", deleted)


ANSWERS: dict[str, tuple[str, Callable[[openai.OpenAI], Any]]] = {
    "chat text": (
        "CreateChatCompletionResponse",
        lambda c: c.chat.completions.with_raw_response.create(
            model="m", messages=[{"role": "user", "content": "hi"}]
        ),
    ),
    "chat structured": (
        "CreateChatCompletionResponse",
        lambda c: c.chat.completions.with_raw_response.parse(
            model="m", messages=[{"role": "user", "content": "hi"}], response_format=Word
        ),
    ),
    "chat cut": (
        "CreateChatCompletionResponse",
        lambda c: c.chat.completions.with_raw_response.create(
            model="m", messages=[{"role": "user", "content": "hi"}], max_completion_tokens=1
        ),
    ),
    "embeddings": (
        "CreateEmbeddingResponse",
        lambda c: c.embeddings.with_raw_response.create(model="e", input=["a", "b"]),
    ),
    "embeddings base64": (
        "CreateEmbeddingResponse",
        lambda c: c.embeddings.with_raw_response.create(
            model="e", input="a", encoding_format="base64", dimensions=4
        ),
    ),
    "responses text": (
        "Response",
        lambda c: c.responses.with_raw_response.create(
            model="m",
            input=[{"role": "user", "content": "hi"}],
            instructions="Be brief.",
            metadata={"k": "v"},
        ),
    ),
    "responses structured": (
        "Response",
        lambda c: c.responses.with_raw_response.parse(model="m", input="hi", text_format=Word),
    ),
    "responses cut": (
        "Response",
        lambda c: c.responses.with_raw_response.create(
            model="m", input="hi", max_output_tokens=16, text={"format": {"type": "json_object"}}
        ),
    ),
    "completions": (
        "CreateCompletionResponse",
        lambda c: c.completions.with_raw_response.create(model="m", prompt=["a", "b"]),
    ),
    "moderations": (
        "CreateModerationResponse",
        lambda c: c.moderations.with_raw_response.create(input=["calm", "violence"]),
    ),
}


@pytest.mark.parametrize("name", sorted(ANSWERS))
@pytest.mark.parametrize(
    "faults",
    [Faults(), Faults(refusal=1.0), Faults(truncation=1.0), Faults(invalid_output=1.0)],
    ids=["clean", "refusal", "truncation", "invalid_output"],
)
def test_model_answers(client: openai.OpenAI, emu: Emulator, name: str, faults: Faults) -> None:
    """Every model endpoint's answer validates, with and without answer faults."""
    emu.set_faults(faults)
    component, call = ANSWERS[name]
    status, answer = body(lambda: call(client))
    assert 200 == status
    valid(component, answer)


ERRORS: dict[str, Callable[[openai.OpenAI], Any]] = {
    "400 chat": lambda c: c.chat.completions.with_raw_response.create(model="m", messages=[]),
    "400 responses": lambda c: c.post("/responses", body={"model": "m"}, cast_to=object),
    "400 completions": lambda c: c.post("/completions", body={"model": "m"}, cast_to=object),
    "400 moderations": lambda c: c.post("/moderations", body={}, cast_to=object),
    "400 embeddings": lambda c: c.post("/embeddings", body={"model": "e"}, cast_to=object),
    "400 not json": lambda c: c.post(
        "/chat/completions",
        body=None,
        cast_to=object,
        options={"headers": {"Content-Type": "application/json"}},
    ),
    "400 metadata": lambda c: c.post(
        "/batches",
        body={
            "input_file_id": "f",
            "endpoint": "/v1/chat/completions",
            "completion_window": "24h",
            "metadata": {"k": 1},
        },
        cast_to=object,
    ),
    "400 window": lambda c: c.post(
        "/batches",
        body={"input_file_id": "f", "endpoint": "/v1/chat/completions", "completion_window": "1h"},
        cast_to=object,
    ),
    "400 purpose": lambda c: c.post(
        "/files",
        body=None,
        cast_to=object,
        options={"headers": {"Content-Type": "multipart/form-data; boundary=x"}},
    ),
    "400 list limit": lambda c: c.get("/batches", options={"params": {"limit": 0}}, cast_to=object),
    "404 file": lambda c: c.files.with_raw_response.retrieve("file-none"),
    "404 content": lambda c: c.files.with_raw_response.content("file-none"),
    "404 batch": lambda c: c.batches.with_raw_response.retrieve("batch_none"),
    "404 route": lambda c: c.get("/models", cast_to=object),
}


def _raw_error(client: openai.OpenAI, call: Callable[[openai.OpenAI], Any]) -> tuple[int, Any]:
    try:
        call(client)
    except openai.APIStatusError as exc:
        return exc.status_code, exc.response.json()
    raise AssertionError("the call succeeded")


@pytest.mark.parametrize("name", sorted(ERRORS))
def test_error_bodies(client: openai.OpenAI, name: str) -> None:
    """Every 4xx the emulator answers has OpenAI's error shape."""
    status, error = _raw_error(client, ERRORS[name])
    assert int(name[:3]) == status
    valid("ErrorResponse", error)


def test_auth_and_fault_errors(emu: Emulator) -> None:
    """401s, injected and drawn 429s, 5xx and lost creates answer OpenAI's error shape."""
    with (
        Emulator(api_key="right") as guarded,
        openai.OpenAI(base_url=guarded.base_url, api_key="wrong", max_retries=0) as wrong,
    ):
        unauthorised = [
            _raw_error(wrong, lambda c: c.files.list()),
            _raw_error(
                wrong,
                lambda c: c.get(
                    "/files", cast_to=object, options={"headers": {"Authorization": ""}}
                ),
            ),
        ]
    for status, error in unauthorised:
        assert 401 == status
        valid("ErrorResponse", error)
    with openai.OpenAI(base_url=emu.base_url, api_key="k", max_retries=0) as sdk:
        uploaded = sdk.files.create(file=("in.jsonl", jsonl(lines(1))), purpose="batch")
        emu.inject("batches.create", "create_lost", status=502)
        emu.inject("files.list", "server_error", status=503, retry_after=1)
        emu.inject("files.list", "rate_limit")
        seen = [
            _raw_error(
                sdk,
                lambda c: c.batches.create(
                    input_file_id=uploaded.id,
                    endpoint="/v1/chat/completions",
                    completion_window="24h",
                ),
            ),
            _raw_error(sdk, lambda c: c.files.list()),
            _raw_error(sdk, lambda c: c.files.list()),
        ]
        emu.set_faults(Faults(server_error=1.0))
        seen.append(_raw_error(sdk, lambda c: c.batches.list()))
        emu.set_faults(Faults(rate_limit=1.0))
        seen.append(_raw_error(sdk, lambda c: c.batches.list()))
    assert [502, 503, 429] == [status for status, _ in seen[:3]]
    assert seen[3][0] in (500, 503)
    assert 429 == seen[4][0]
    for _, error in seen:
        valid("ErrorResponse", error)
