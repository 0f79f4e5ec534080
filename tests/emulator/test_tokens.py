"""The emulator's token count: what a call bills is what a batch line enqueues, within a bound."""

from __future__ import annotations

import json
import math
from typing import Any

import openai
from hypothesis import given
from hypothesis import strategies as st

from inert.emulator import Emulator
from inert.emulator._answers import ROLES
from inert.emulator._calls import answer
from inert.emulator._faults import Faults
from inert.emulator._tokens import prompt_tokens

text = st.text(max_size=60)
content = st.one_of(
    text, st.lists(st.builds(lambda t: {"type": "text", "text": t}, text), min_size=1, max_size=3)
)
message = st.builds(
    lambda role, body: {"role": role, "content": body}, st.sampled_from(ROLES), content
)
chat_bodies = st.builds(
    lambda model, messages: {"model": model, "messages": messages},
    st.text(min_size=1, max_size=10),
    st.lists(message, min_size=1, max_size=5),
)
embedding_bodies = st.builds(
    lambda model, inputs: {"model": model, "input": inputs},
    st.text(min_size=1, max_size=10),
    st.one_of(
        st.text(min_size=1, max_size=60),
        st.lists(st.text(min_size=1, max_size=60), min_size=1, max_size=5),
    ),
)
input_item = st.builds(
    lambda role, body: {"role": role, "content": body},
    st.sampled_from(["user", "assistant", "system", "developer"]),
    st.one_of(
        text,
        st.lists(
            st.builds(lambda t: {"type": "input_text", "text": t}, text), min_size=1, max_size=3
        ),
    ),
)
response_bodies = st.builds(
    lambda model, inputs, instructions: (
        {"model": model, "input": inputs}
        | ({} if instructions is None else {"instructions": instructions})
    ),
    st.text(min_size=1, max_size=10),
    st.one_of(text, st.lists(input_item, min_size=1, max_size=4)),
    st.none() | text,
)
completion_bodies = st.builds(
    lambda model, prompt: {"model": model, "prompt": prompt},
    st.text(min_size=1, max_size=10),
    st.one_of(text, st.lists(text, min_size=1, max_size=4)),
)
moderation_bodies = st.builds(
    lambda inputs: {"input": inputs},
    st.one_of(
        text,
        st.lists(text, min_size=1, max_size=4),
        st.lists(st.builds(lambda t: {"type": "text", "text": t}, text), min_size=1, max_size=3),
    ),
)
BODIES = {
    "/v1/chat/completions": chat_bodies,
    "/v1/embeddings": embedding_bodies,
    "/v1/responses": response_bodies,
    "/v1/completions": completion_bodies,
    "/v1/moderations": moderation_bodies,
}


def bound(body: dict[str, Any]) -> int:
    """A quarter of the body's most compact JSON, rounded up."""
    return math.ceil(len(json.dumps(body, separators=(",", ":"), ensure_ascii=False)) / 4)


@given(st.sampled_from(sorted(BODIES)).flatmap(lambda e: st.tuples(st.just(e), BODIES[e])))
def test_the_count_never_exceeds_a_quarter_of_the_json(case: tuple[str, dict[str, Any]]) -> None:
    """For an accepted body, the enqueued count is at most ceil(len(compact JSON) / 4)."""
    endpoint, body = case
    result = answer(endpoint, body, faults=Faults(), created=0)
    assert 200 == result.status
    assert result.prompt_tokens == prompt_tokens(endpoint, body)
    assert prompt_tokens(endpoint, body) <= bound(body)


def test_the_sdk_sees_the_documented_count(client: openai.OpenAI, emu: Emulator) -> None:
    """usage.prompt_tokens is 4 per message plus 3, plus a quarter of each message's text."""
    messages: list[Any] = [
        {"role": "system", "content": "Be brief."},  # 9 characters: 3 tokens
        {"role": "user", "content": "What is an oak?"},  # 15 characters: 4 tokens
    ]
    completion = client.chat.completions.create(model="m", messages=messages)
    assert completion.usage is not None
    assert (3 + 4) + 2 * 4 + 3 == completion.usage.prompt_tokens
