"""The strategies generate valid values, valid envelopes and typed failures."""

from __future__ import annotations

import importlib.util
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openai.types.chat import ChatCompletion
from pydantic import BaseModel

from inert import RequestError
from inert._json import JSON
from inert.errors import ContentFilterError, InvalidOutputError, RefusalError, TruncatedError
from inert.openai import chat, embedding, structured
from inert.testing import (
    FailureKind,
    failure_responses_for,
    failures,
    json_for_schema,
    op_of,
    responses_for,
    schema_of,
    values_for,
)

from .models import SHAPES, Collections, Leaf

EXAMPLES = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _lexicon_models() -> tuple[type[BaseModel], ...]:
    if importlib.util.find_spec("lexicon.models") is None:  # pragma: no cover
        return ()
    from lexicon.models import RESPONSE_MODELS

    return RESPONSE_MODELS


MODELS = SHAPES + _lexicon_models()


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_generated_json_validates_against_its_model(model: type[BaseModel]) -> None:
    """Every value drawn for a model's strict schema validates as that model from JSON text."""

    @EXAMPLES
    @given(json_for_schema(schema_of(model)))
    def check(value: JSON) -> None:
        instance = model.model_validate_json(json.dumps(value))
        assert type(instance) is model

    check()


STRICT_MODELS = [m for m in MODELS if m is not Collections]
"""The shapes OpenAI's strict mode can express (dict fields are open objects: refused)."""


def test_open_objects_are_refused_by_structured() -> None:
    """A model with dict fields has values, but no strict schema: ``structured`` says so."""
    with pytest.raises(TypeError, match="accepts arbitrary keys"):
        structured(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": "hi"}],
            response_format=Collections,
        )


@pytest.mark.parametrize("model", STRICT_MODELS, ids=lambda m: m.__name__)
def test_generated_responses_decode_with_the_structured_decoder(model: type[BaseModel]) -> None:
    """A response drawn for a structured op decodes, with the op's own decoder, to its model."""
    op = op_of(
        structured(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], response_format=model
        )
    )

    @settings(max_examples=15, deadline=None)
    @given(responses_for(op))
    def check(raw: dict[str, JSON]) -> None:
        assert model is type(op.decode(raw))

    check()


@EXAMPLES
@given(st.data())
def test_values_for_a_model_and_for_its_op_agree_on_type(data: st.DataObject) -> None:
    """``values_for`` yields instances of the model, whether given the class or the op."""
    op = op_of(
        structured(model="m", messages=[{"role": "user", "content": "x"}], response_format=Leaf)
    )
    assert Leaf is type(data.draw(values_for(Leaf)))
    assert Leaf is type(data.draw(values_for(op)))


@EXAMPLES
@given(st.data())
def test_chat_envelope_is_a_complete_successful_completion(data: st.DataObject) -> None:
    """The envelope validates as the SDK's ChatCompletion: stop, no refusal, consistent usage."""
    op = op_of(
        structured(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}], response_format=Leaf
        )
    )
    completion = ChatCompletion.model_validate(data.draw(responses_for(op)))
    (choice,) = completion.choices
    usage = completion.usage
    assert usage is not None
    assert (completion.model, choice.finish_reason, choice.message.refusal) == (
        "gpt-4o-mini",
        "stop",
        None,
    )
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert Leaf.model_validate_json(choice.message.content or "") is not None


@EXAMPLES
@given(st.data())
def test_text_and_embedding_ops_get_responses_their_decoders_accept(data: st.DataObject) -> None:
    """Free-text chats decode to text and embeddings to a vector of the asked size."""
    text_op = op_of(chat(model="m", messages=[{"role": "user", "content": "x"}]))
    vector_op = op_of(embedding(model="e", input="word", dimensions=5))
    assert isinstance(text_op.decode(data.draw(responses_for(text_op))), str)
    assert len(vector_op.decode(data.draw(responses_for(vector_op)))) == 5


EXPECTED_ERRORS: dict[FailureKind, type[RequestError]] = {
    "refusal": RefusalError,
    "truncation": TruncatedError,
    "content_filter": ContentFilterError,
    "invalid_output": InvalidOutputError,
}


@pytest.mark.parametrize("kind", sorted(EXPECTED_ERRORS))
def test_failure_responses_decode_to_their_typed_error(kind: FailureKind) -> None:
    """Each kind of bad answer makes the structured decoder raise its own error class."""
    op = op_of(
        structured(model="m", messages=[{"role": "user", "content": "x"}], response_format=Leaf)
    )

    @settings(max_examples=20, deadline=None)
    @given(failure_responses_for(op, kinds=[kind]))
    def check(raw: dict[str, JSON]) -> None:
        with pytest.raises(RequestError) as caught:
            op.decode(raw)
        assert EXPECTED_ERRORS[kind] is type(caught.value)

    check()


def test_free_text_ops_get_no_invalid_output_failures() -> None:
    """Any text is a valid answer to a plain chat, so no invalid-output kind applies."""
    op = op_of(chat(model="m", messages=[{"role": "user", "content": "x"}]))
    with pytest.raises(ValueError, match="invalid_output"):
        failure_responses_for(op, kinds=["invalid_output"])


@settings(max_examples=30, deadline=None)
@given(failures())
def test_failures_are_request_errors_with_a_message(error: RequestError) -> None:
    """``failures()`` draws RequestError subclasses that carry a message."""
    assert isinstance(error, RequestError)
    assert error.message


def test_unsupported_schema_is_refused_naming_where() -> None:
    """A schema keyword the strategies cannot satisfy is a ValueError naming its path."""
    schema = {
        "type": "object",
        "properties": {"a": {"allOf": [{"type": "integer"}, {"minimum": 1}]}},
    }
    with pytest.raises(ValueError, match=r"#/properties/a"):
        json_for_schema(schema)
