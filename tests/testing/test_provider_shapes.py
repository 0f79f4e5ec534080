"""The testing toolkit speaks each provider's shape: Responses and Anthropic Messages ops get
answers their SDKs parse, values valid for their formats, and the failures their decoders type."""

from __future__ import annotations

from typing import Any

import anthropic.types
import openai.types.responses
import pydantic
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from inert import Request, Steps, gather, program
from inert.anthropic import message, message_object
from inert.errors import ContentFilterError, InvalidOutputError, RefusalError, TruncatedError
from inert.openai import chat, embedding, response, response_object
from inert.testing import (
    FailureKind,
    FakeRunner,
    answer_for,
    anthropic_message,
    chat_completion,
    failure_kinds_for,
    failure_responses_for,
    op_of,
    openai_response,
    responses_for,
    values_for,
)


class Sense(pydantic.BaseModel):
    """A structured answer with bounds a strategy must respect."""

    definition: str
    level: int = pydantic.Field(ge=1, le=5)
    tags: list[str]


def claude(word: str) -> Request[Sense]:
    """An Anthropic Messages request with structured output."""
    content: Any = [{"role": "user", "content": f"Define '{word}'."}]
    return message(model="claude-haiku-4-5", max_tokens=200, messages=content, output_format=Sense)


def gpt(word: str) -> Request[Sense]:
    """A Responses request with structured output."""
    return response(model="gpt-4o-mini", input=f"Define '{word}'.", text_format=Sense)


def claude_text(word: str) -> Request[str]:
    """An Anthropic Messages request for text."""
    return message(
        model="claude-haiku-4-5", max_tokens=50, messages=[{"role": "user", "content": word}]
    )


STRUCTURED = {"responses": gpt("owl"), "messages": claude("owl")}


def test_the_hand_built_answers_parse_with_each_sdks_own_models() -> None:
    """openai_response is an openai ``Response``, anthropic_message an anthropic ``Message``."""
    made = openai_response(Sense(definition="a bird", level=2, tags=[]), model="gpt-4o")
    parsed = openai.types.responses.Response.model_validate(made)
    assert ("gpt-4o", '{"definition":"a bird","level":2,"tags":[]}') == (
        parsed.model,
        parsed.output_text,
    )
    said = anthropic.types.Message.model_validate(anthropic_message("hello", output_tokens=7))
    assert ("claude-test", 7) == (said.model, said.usage.output_tokens)
    assert "hello" == "".join(b.text for b in said.content if b.type == "text")
    openai.types.responses.Response.model_validate(openai_response(None, refusal="no"))
    openai.types.responses.Response.model_validate(openai_response("x", status="incomplete"))
    anthropic.types.Message.model_validate(anthropic_message(None, stop_reason="max_tokens"))


def test_answer_for_uses_the_shape_and_model_of_the_ops_provider() -> None:
    """answer_for gives a chat completion, a Response or a Message, by the op's endpoint."""
    value = Sense(definition="d", level=1, tags=["t"])
    text = value.model_dump_json()
    chat_op = op_of(chat(model="gpt-4.1", messages=[{"role": "user", "content": "x"}]))
    assert chat_completion(value, model="gpt-4.1") == answer_for(chat_op, value)
    assert openai_response(text, model="gpt-4o-mini") == answer_for(gpt("owl"), value)
    assert anthropic_message(text, model="claude-haiku-4-5") == answer_for(claude("owl"), value)
    with pytest.raises(ValueError, match="/v1/embeddings"):
        answer_for(embedding(model="text-embedding-3-small", input="x"), value)


@pytest.mark.parametrize("kind", sorted(STRUCTURED))
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_drawn_answers_parse_with_the_sdk_and_decode_to_valid_values(
    kind: str, data: st.DataObject
) -> None:
    """responses_for draws bodies the provider's SDK parses, whose text the op decodes."""
    request = STRUCTURED[kind]
    raw = data.draw(responses_for(request))
    if kind == "responses":
        openai.types.responses.Response.model_validate(raw)
    else:
        anthropic.types.Message.model_validate(raw)
    value = op_of(request).decode(raw)
    assert isinstance(value, Sense)
    assert 1 <= value.level <= 5


@settings(max_examples=25, deadline=None)
@given(gpt_value=values_for(gpt("owl")), claude_value=values_for(claude("owl")))
def test_values_for_the_new_builders_are_instances_of_their_models(
    gpt_value: Sense, claude_value: Sense
) -> None:
    """values_for a Responses or Messages request draws valid instances of its model."""
    for value in (gpt_value, claude_value):
        assert isinstance(value, Sense)
        assert 1 <= value.level <= 5


@settings(max_examples=10, deadline=None)
@given(text=values_for(claude_text("owl")), whole=values_for(message_object(
    model="claude-haiku-4-5", max_tokens=9, messages=[{"role": "user", "content": "x"}])))  # fmt: skip
def test_text_and_raw_anthropic_requests_get_text_and_messages(
    text: str, whole: anthropic.types.Message
) -> None:
    """A text request draws strings; message_object draws the SDK's typed Message."""
    assert isinstance(text, str)
    assert isinstance(whole, anthropic.types.Message)


def test_the_failure_kinds_are_the_ones_each_api_can_give() -> None:
    """Anthropic has no content filter answer; free text has no invalid output."""
    assert ("refusal", "truncation", "content_filter", "invalid_output") == failure_kinds_for(
        gpt("owl")
    )
    assert ("refusal", "truncation", "invalid_output") == failure_kinds_for(claude("owl"))
    assert ("refusal", "truncation") == failure_kinds_for(claude_text("owl"))
    raw = response_object(model="gpt-4o-mini", input="x")
    assert ("refusal", "truncation", "content_filter") == failure_kinds_for(raw)


ERRORS: dict[FailureKind, type[Exception]] = {
    "refusal": RefusalError,
    "truncation": TruncatedError,
    "content_filter": ContentFilterError,
    "invalid_output": InvalidOutputError,
}


@pytest.mark.parametrize(
    ("kind", "failure"),
    [(k, f) for k in sorted(STRUCTURED) for f in ERRORS if f in failure_kinds_for(STRUCTURED[k])],
)
@settings(max_examples=15, deadline=None)
@given(data=st.data())
def test_each_failure_answer_becomes_its_typed_error(
    kind: str, failure: FailureKind, data: st.DataObject
) -> None:
    """A drawn bad answer parses with the SDK and the op's decoder raises the matching error."""
    request = STRUCTURED[kind]
    raw = data.draw(failure_responses_for(request, kinds=[failure]))
    if kind == "responses":
        openai.types.responses.Response.model_validate(raw)
    else:
        anthropic.types.Message.model_validate(raw)
    with pytest.raises(ERRORS[failure]):
        op_of(request).decode(raw)


def test_content_filter_is_refused_for_an_anthropic_op() -> None:
    """Asking for a failure Anthropic cannot give is an error naming the kinds that apply."""
    with pytest.raises(ValueError, match="kinds must be some of"):
        failure_responses_for(claude("owl"), kinds=["content_filter"])


@program
def entry(word: str) -> Steps[tuple[Sense, Sense, str]]:
    """Two providers in two rounds."""
    first, second = yield from gather(gpt(word), claude(word))
    note = yield from claude_text(f"{word}: {first.definition} / {second.definition}")
    return first, second, note


def test_a_table_of_models_answers_every_provider_in_its_shape() -> None:
    """A model instance in a table is answered as a Response or a Message as the op needs."""
    value = Sense(definition="a bird", level=3, tags=["night"])
    fake = FakeRunner.from_table(
        {gpt("owl"): value, claude("owl"): value},
        default=lambda op: answer_for(op, "a note"),
    )
    assert (value, value, "a note") == fake.run_sync(entry("owl"))
    assert 2 == fake.report.rounds
    assert {"openai", "anthropic"} == set(fake.report.by_provider)
    assert (1, 2) == (
        fake.report.by_provider["openai"].calls,
        fake.report.by_provider["anthropic"].calls,
    )


@settings(max_examples=20, deadline=None)
@given(data=st.data())
def test_from_data_runs_a_mixed_pipeline(data: st.DataObject) -> None:
    """FakeRunner.from_data draws valid answers for Responses and Messages ops alike."""
    first, second, note = FakeRunner.from_data(data).run_sync(entry("wren"))
    assert isinstance(first, Sense)
    assert isinstance(second, Sense)
    assert isinstance(note, str)
