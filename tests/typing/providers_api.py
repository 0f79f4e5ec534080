"""Typing expectations for the Responses builders and ``inert.anthropic``.

Checked by mypy --strict and basedpyright, never run (see core_api.py for the pins).
"""

from __future__ import annotations

from typing import assert_type

from openai.types.responses import Response
from pydantic import BaseModel

from inert import Request
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
