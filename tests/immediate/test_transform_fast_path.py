"""Plain-JSON bodies skip the SDK's transform because it would return them unchanged."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from openai._utils import maybe_transform
from openai.types import embedding_create_params
from openai.types.chat import completion_create_params

from inert.openai import _transformed

CHAT = completion_create_params.CompletionCreateParamsNonStreaming


def sent(body: object) -> object:
    """The JSON value that goes on the wire (a tuple and a list are the same array)."""
    return json.loads(json.dumps(body))


scalars = st.none() | st.booleans() | st.integers() | st.text(max_size=8)
json_values = st.recursive(
    scalars | st.floats(allow_nan=False, allow_infinity=False),
    lambda children: (
        st.lists(children, max_size=3)
        | st.tuples(children, children)
        | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=8,
)
content_parts = st.lists(
    st.fixed_dictionaries({"type": st.just("text"), "text": st.text(max_size=10)}), max_size=2
)
messages = st.lists(
    st.fixed_dictionaries(
        {
            "role": st.sampled_from(["system", "user", "assistant", "developer"]),
            "content": st.text(max_size=10) | content_parts,
        }
    ),
    min_size=1,
    max_size=3,
)
# Every declared parameter, with JSON values of any shape: the SDK's transform walks
# each by its declared type, so odd values exercise every branch it could take.
chat_params = st.dictionaries(
    st.sampled_from(sorted(CHAT.__annotations__)), json_values, max_size=6
)


@settings(max_examples=300, deadline=None)
@given(model=st.text(min_size=1, max_size=8), messages=messages, params=chat_params)
def test_plain_chat_bodies_transform_to_themselves(
    model: str, messages: list[dict[str, Any]], params: dict[str, Any]
) -> None:
    """For a plain-JSON chat body the fast path equals the SDK's transform."""
    raw: dict[str, object] = {**params, "model": model, "messages": messages}
    assert sent(maybe_transform(raw, CHAT)) == sent(_transformed(raw, CHAT))


@settings(max_examples=100, deadline=None)
@given(
    params=st.dictionaries(
        st.sampled_from(sorted(embedding_create_params.EmbeddingCreateParams.__annotations__)),
        json_values,
        max_size=4,
    )
)
def test_plain_embedding_bodies_transform_to_themselves(params: dict[str, Any]) -> None:
    """The same holds for embedding bodies."""
    params_type = embedding_create_params.EmbeddingCreateParams
    assert sent(maybe_transform(params, params_type)) == sent(
        _transformed(dict(params), params_type)
    )


def test_bodies_with_other_objects_still_go_through_the_transform() -> None:
    """A generator is not JSON: it takes the SDK's path, which lists an iterable of messages."""
    message = {"role": "user", "content": "hi"}
    raw: dict[str, object] = {"model": "m", "messages": (m for m in [message])}
    assert [message] == _transformed(raw, CHAT)["messages"]
