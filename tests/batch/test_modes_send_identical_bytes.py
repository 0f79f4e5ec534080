"""The immediate and the batch runner put the very same bytes on the wire for an op."""

from __future__ import annotations

import json

import httpx2
import openai
from pydantic import BaseModel

from inert import BatchRunner, ImmediateRunner, Request, Store
from inert.emulator import Emulator
from inert.openai import structured


class Gloss(BaseModel):
    text: str
    score: int


def gloss(word: str) -> Request[Gloss]:
    # Keyword order here differs from sorted order, so a runner that re-serialized
    # the body in insertion order would be caught.
    return structured(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": f"Gloss {word} — ünïcode too"}],
        response_format=Gloss,
        temperature=0.0,
        max_completion_tokens=50,
    )


async def test_batch_lines_carry_the_bytes_the_immediate_runner_posts(
    emu: Emulator, store: Store
) -> None:
    """Each batch line's body is byte for byte the body the immediate runner sent."""
    posted: dict[str, bytes] = {}

    async def capture(request: httpx2.Request) -> None:
        if request.url.path.endswith("/chat/completions"):
            body = request.content
            posted[json.loads(body)["messages"][0]["content"]] = body

    async with openai.AsyncOpenAI(
        base_url=emu.base_url,
        api_key="sk-test",
        http_client=httpx2.AsyncClient(event_hooks={"request": [capture]}),
    ) as client:
        words = ["ant", "bee", "cat"]
        immediate = await ImmediateRunner(client).run_all([gloss(w) for w in words])
        batch = BatchRunner(client, store=store, poll_interval=0.01, progress=False)
        batched = await batch.run_all([gloss(w) for w in words])
        (batch_id,) = emu.batch_ids()
        remote = await client.batches.retrieve(batch_id)
        lines = (await client.files.content(remote.input_file_id)).content.splitlines()

    in_lines = {}
    for line in lines:
        body = line[line.index(b',"body":') + len(b',"body":') : -1]
        in_lines[json.loads(body)["messages"][0]["content"]] = body
    assert immediate == batched
    assert 3 == len(posted)
    assert posted == in_lines
