"""Helpers of the reliability suite: cheap structured requests and their fault-free answers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pydantic

from inert import Op, Request, call
from inert.emulator import Faults
from inert.emulator._answers import chat_completion
from inert.openai import CHAT_COMPLETIONS, structured
from inert.testing import op_of

MODEL = "gpt-4o-mini"


class Words(pydantic.BaseModel):
    """A small structured answer, like the workload's synonyms."""

    words: list[str]


_TEMPLATE: Op[Words] = op_of(
    structured(
        model=MODEL, messages=[{"role": "user", "content": "template"}], response_format=Words
    )
)


def word_request(i: int, *, salt: str = "") -> Request[Words]:
    """The ``i``-th structured request: the body ``structured`` builds, made without its cost.

    ``structured`` runs the SDK's parameter transform (about 0.4 ms a call); for
    thousands of requests the suite builds the same body directly.
    """
    body = dict(_TEMPLATE.body)
    body["messages"] = [{"role": "user", "content": f"synonyms of word {i}{salt}"}]
    return call(Op(endpoint=CHAT_COMPLETIONS, body=body, decode=_TEMPLATE.decode))


def expected_answers(requests: Sequence[Request[Any]]) -> list[Any]:
    """What a fault-free emulator answers, computed in process (answers depend on the body only)."""
    answers: list[Any] = []
    for request in requests:
        op = op_of(request)
        raw, _, _ = chat_completion(op.body, op.key, Faults(), created=0, request_id="expected")
        answers.append(op.decode(raw))
    return answers
