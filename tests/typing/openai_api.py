"""Typing expectations for ``inert.openai`` and ``ImmediateRunner``.

Checked by mypy --strict and basedpyright, never run (see core_api.py for the pins).
"""

from __future__ import annotations

from typing import assert_type

import openai
from openai.types.chat import ChatCompletion, ChatCompletionMessageParam
from pydantic import BaseModel

from inert import ImmediateRunner, Request
from inert.openai import chat, completion, embedding, structured


class Synonyms(BaseModel):
    """A structured answer."""

    words: list[str]


MESSAGES: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Synonyms of 'bright'."}]

assert_type(structured(model="m", messages=MESSAGES, response_format=Synonyms), Request[Synonyms])
assert_type(chat(model="m", messages=MESSAGES), Request[str])
assert_type(embedding(model="e", input="bright"), Request[list[float]])
assert_type(completion(model="m", messages=MESSAGES), Request[ChatCompletion])

structured(model="m", messages=MESSAGES, response_format=int)  # type: ignore[type-var]  # pyright: ignore[reportArgumentType]  # not a pydantic model
embedding(model="e", input=["a", "b"])  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]  # one input, one vector


async def runs(client: openai.AsyncOpenAI, requests: list[Request[Synonyms]]) -> None:
    """What the runner's methods return."""
    runner = ImmediateRunner(client)
    assert_type(await runner.run_all(requests), list[Synonyms])
    assert_type(await runner.run(requests[0]), Synonyms)
    assert_type(runner.run_all_sync(requests), list[Synonyms])
