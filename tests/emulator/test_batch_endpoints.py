"""Every model endpoint the emulator serves also runs inside batches, billed as batch lines."""

from __future__ import annotations

from typing import Any

import openai
import pytest
from tests.billing import settled_ledger

from inert._json import op_key
from inert.emulator import Emulator

from ._support import BatchLine, jsonl, read_jsonl

BODIES: dict[str, list[dict[str, Any]]] = {
    "/v1/responses": [{"model": "gpt-test", "input": f"Define word {i}."} for i in range(3)],
    "/v1/completions": [{"model": "gpt-test", "prompt": f"Say {i}"} for i in range(3)],
    "/v1/moderations": [
        {"model": "omni-moderation-latest", "input": f"text {i}"} for i in range(3)
    ],
    "/v1/embeddings": [{"model": "emb", "input": f"word {i}"} for i in range(3)],
    "/v1/chat/completions": [
        {"model": "gpt-test", "messages": [{"role": "user", "content": f"q {i}"}]} for i in range(3)
    ],
}
OBJECTS = {
    "/v1/responses": "response",
    "/v1/completions": "text_completion",
    "/v1/embeddings": "list",
    "/v1/chat/completions": "chat.completion",
}


@pytest.mark.parametrize("endpoint", sorted(BODIES))
def test_batches_run_on_every_endpoint(client: openai.OpenAI, emu: Emulator, endpoint: str) -> None:
    """A batch on each endpoint completes with one 200 answer per line, each billed once as batch."""
    bodies = BODIES[endpoint]
    lines: list[BatchLine] = [
        {"custom_id": f"l{i}", "method": "POST", "url": endpoint, "body": body}
        for i, body in enumerate(bodies)
    ]
    uploaded = client.files.create(file=("in.jsonl", jsonl(lines)), purpose="batch")
    batch = client.batches.create(
        input_file_id=uploaded.id,
        endpoint=endpoint,  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]  # one of the SDK's endpoint literals
        completion_window="24h",
    )
    emu.settle()
    done = client.batches.retrieve(batch.id)
    assert ("completed", endpoint) == (done.status, done.endpoint)
    output = read_jsonl(client, done.output_file_id)
    assert {f"l{i}" for i in range(3)} == {str(line["custom_id"]) for line in output}
    for line in output:
        response = line["response"]
        assert isinstance(response, dict)
        assert 200 == response["status_code"]
        if endpoint in OBJECTS:
            assert OBJECTS[endpoint] == response["body"]["object"]
        else:
            assert response["body"]["results"]
    keys = [op_key(endpoint, body) for body in bodies]
    assert [(0, 1)] * 3 == [
        (e.immediate, e.batch) for e in settled_ledger(emu).entries() if e.key in keys
    ]
