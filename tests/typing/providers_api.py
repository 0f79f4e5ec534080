"""Typing expectations for the Responses builders and ``inert.anthropic``.

Checked by mypy --strict and basedpyright, never run (see core_api.py for the pins).
"""

from __future__ import annotations

from typing import assert_type

from anthropic import AsyncAnthropic
from anthropic.types import Message, MessageParam
from openai import AsyncOpenAI
from openai.types.responses import Response
from pydantic import BaseModel

from inert import ImmediateRunner, Request
from inert.anthropic import message as anthropic_message
from inert.anthropic import message_object
from inert.openai import response, response_object


class Sense(BaseModel):
    """A structured answer."""

    definition: str


assert_type(response(model="m", input="Define 'owl'.", text_format=Sense), Request[Sense])
assert_type(response(model="m", input="Define 'owl'."), Request[str])
assert_type(response(model="m", input=[{"role": "user", "content": "Define 'owl'."}]), Request[str])
assert_type(response_object(model="m", input="Define 'owl'."), Request[Response])

response(model="m", input="x", text_format=int)  # type: ignore[type-var]  # pyright: ignore[reportArgumentType, reportCallIssue]  # not a pydantic model
response(model="m", input=3)  # type: ignore[call-overload]  # pyright: ignore[reportArgumentType]  # input is text or items

# --- inert.anthropic ----------------------------------------------------------------

PROMPT: list[MessageParam] = [{"role": "user", "content": "Define 'owl'."}]

assert_type(
    anthropic_message(
        model="claude-haiku-4-5", max_tokens=99, messages=PROMPT, output_format=Sense
    ),
    Request[Sense],
)
assert_type(
    anthropic_message(model="claude-haiku-4-5", max_tokens=99, messages=PROMPT), Request[str]
)
assert_type(
    message_object(model="claude-haiku-4-5", max_tokens=99, messages=PROMPT), Request[Message]
)

anthropic_message(model="m", max_tokens=9, messages=PROMPT, output_format=int)  # type: ignore[type-var]  # pyright: ignore[reportArgumentType, reportCallIssue]  # not a pydantic model
anthropic_message(model="m", messages=PROMPT)  # type: ignore[call-overload]  # pyright: ignore[reportCallIssue]  # max_tokens is required
anthropic_message(model="m", max_tokens="9", messages=PROMPT)  # type: ignore[call-overload]  # pyright: ignore[reportArgumentType]  # a number of tokens


def runners(openai_client: AsyncOpenAI, anthropic_client: AsyncAnthropic) -> None:
    """Runners take one client per provider, by name; the OpenAI one also positionally."""
    ImmediateRunner(openai_client)
    ImmediateRunner(openai=openai_client, anthropic=anthropic_client)
    ImmediateRunner(anthropic=anthropic_client)
    ImmediateRunner(anthropic=openai_client)  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]  # the wrong provider's client
