"""Requests shared by the Anthropic batch tests and their crash child."""

from __future__ import annotations

from typing import Any

import pydantic

from inert import Request
from inert.anthropic import message

WORDS = ("owl", "lark", "wren", "kite", "rook", "tern")


class Gloss(pydantic.BaseModel):
    """A structured answer."""

    definition: str


def claude(word: str) -> Request[Gloss]:
    """One Messages request with structured output."""
    content: Any = [{"role": "user", "content": f"Define '{word}'."}]
    return message(model="claude-haiku-4-5", max_tokens=200, messages=content, output_format=Gloss)


def claude_requests() -> list[Request[Gloss]]:
    """The requests every Anthropic batch test runs."""
    return [claude(word) for word in WORDS]
