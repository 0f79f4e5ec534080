"""A shard's size is the bytes it writes, with each body's size read off its op.

Batch planning counts every line without encoding its body (``Op.body_size`` is
known from the text the op's key was made of); these laws pin that count to the
bytes actually written, for any body and endpoint, however the op was built.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from tests.strategies import bodies

from inert import Op
from inert._json import JSON
from inert._runners._batch._lines import jsonl_line, plan_shards
from inert.openai import chat
from inert.testing import op_of

endpoints = st.sampled_from(["/v1/chat/completions", "/v1/embeddings", "/v1/ünïcode"])
tuples_inside = st.builds(lambda items: {"items": tuple(items)}, st.lists(st.text(), max_size=3))


def identity(raw: JSON) -> JSON:
    return raw


def utf8_size(op: Op[Any]) -> int:
    return len(op.canonical_body().encode("utf-8"))


@given(endpoint=endpoints, body=bodies | tuples_inside)
def test_the_body_size_is_the_utf8_length_of_the_canonical_body(
    endpoint: str, body: dict[str, Any]
) -> None:
    op = Op(endpoint=endpoint, body=body, decode=identity)
    assert utf8_size(op) == op.body_size
    again = op.with_occurrence(3)
    assert (utf8_size(again), again.body_size) == (op.body_size, op.body_size)


@given(text=st.text(min_size=1), model=st.text(min_size=1, max_size=20))
def test_a_builder_op_knows_its_body_size(text: str, model: str) -> None:
    op = op_of(chat(model=model, messages=[{"role": "user", "content": text}]))
    assert utf8_size(op) == op.body_size


@given(
    texts=st.lists(st.text(), min_size=1, max_size=8, unique=True),
    max_requests=st.integers(1, 4),
)
def test_every_shard_is_as_large_as_the_lines_it_writes(
    texts: list[str], max_requests: int
) -> None:
    members = [
        op_of(chat(model="gpt-4o-mini", messages=[{"role": "user", "content": text}]))
        for text in texts
    ]
    plans, too_large = plan_shards(members, max_requests=max_requests, max_bytes=10**6)
    assert [] == too_large
    assert [op for plan in plans for op in plan.ops] == members
    for plan in plans:
        payload = plan.payload()
        assert len(payload) == plan.size
        assert "".join(jsonl_line(op) for op in plan.ops).encode() == payload
