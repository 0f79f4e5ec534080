"""Request builders for OpenAI endpoints: ``structured``, ``chat``, ``completion``, ``embedding``,
and the Responses API's ``response`` and ``response_object``.

Each builder performs no I/O: it validates its arguments against the SDK's own
parameter types, builds the exact JSON body the SDK would send and returns a
``Request[T]`` whose op decodes the raw response. Both runners send that same body
(the immediate runner over HTTP, the batch runner as a JSONL line), so the two
modes cannot drift apart.

* :func:`structured` sends what ``client.chat.completions.parse(...)`` sends: the
  strict ``response_format`` comes from the SDK's
  :func:`openai.lib.type_to_response_format_param`.
* :func:`chat` and :func:`completion` send what ``client.chat.completions.create(...)``
  sends.
* :func:`embedding` sends what ``client.embeddings.create(...)`` sends for one input.
* :func:`response` sends what ``client.responses.parse(...)`` sends (with ``text_format``,
  the strict ``text.format`` from the SDK's own
  ``openai.lib._parsing._responses.type_to_text_format_param``), or what
  ``client.responses.create(...)`` sends without it; :func:`response_object` is the raw
  form, answering the SDK's typed ``Response``.

Unknown or mistyped parameters are refused when the request is built, with a
message naming the parameter; the allowed names and types are read from the SDK's
``TypedDict`` of parameters, never from a hand-written list.
"""

from __future__ import annotations

import base64
import struct
import typing
from collections.abc import Callable, Mapping, Sequence
from functools import cache
from typing import Any, Final, TypeVar, overload

import pydantic
from openai._utils import maybe_transform
from openai.lib import type_to_response_format_param
from openai.lib._parsing import validate_input_tools
from openai.lib._parsing._responses import type_to_text_format_param
from openai.types import embedding_create_params
from openai.types.chat import ChatCompletion, ChatCompletionMessageParam, completion_create_params
from openai.types.responses import Response, ResponseInputParam, response_create_params

from inert._errors import (
    ApiError,
    ContentFilterError,
    InvalidOutputError,
    RefusalError,
    TruncatedError,
)
from inert._json import JSON, JSONObject, validate_json
from inert._op import Op
from inert._params import NotPlain as _NotPlain
from inert._params import check_params as _check_params
from inert._params import check_value as _check_value
from inert._params import json_part as _json_part
from inert._request import Request, _Call

__all__ = [
    "CHAT_COMPLETIONS",
    "EMBEDDINGS",
    "RESPONSES",
    "chat",
    "completion",
    "embedding",
    "response",
    "response_object",
    "structured",
]

M = TypeVar("M", bound=pydantic.BaseModel)

CHAT_COMPLETIONS: Final = "/v1/chat/completions"
"""The endpoint of chat completions (and of their batch lines)."""
EMBEDDINGS: Final = "/v1/embeddings"
"""The endpoint of embeddings."""
RESPONSES: Final = "/v1/responses"
"""The endpoint of the Responses API (and of its batch lines)."""

# --- parameter validation, derived from the SDK's TypedDicts ---------------------------

_CHAT_PARAMS: Final[Mapping[str, Any]] = typing.get_type_hints(
    completion_create_params.CompletionCreateParamsNonStreaming
)
_EMBEDDING_PARAMS: Final[Mapping[str, Any]] = typing.get_type_hints(
    embedding_create_params.EmbeddingCreateParams
)
_RESPONSE_PARAMS: Final[Mapping[str, Any]] = typing.get_type_hints(
    response_create_params.ResponseCreateParamsNonStreaming
)


def _message_types() -> Mapping[str, Any]:
    by_role: dict[str, Any] = {}
    for member in typing.get_args(ChatCompletionMessageParam):
        role = typing.get_type_hints(member)["role"]
        for literal in typing.get_args(role):
            by_role[literal] = member
    return by_role


_MESSAGE_TYPES: Final = _message_types()
_NEEDS_CONTENT: Final = frozenset({"developer", "system", "user", "tool"})


_PLAIN_ROLES: Final = frozenset({"developer", "system", "user", "assistant"})
"""Roles whose message may be just ``{"role": ..., "content": "text"}``."""


def _plain_messages(messages: object) -> list[JSON] | None:
    """Copies of messages that are all ``{"role": r, "content": "text"}``, else None.

    Such a message is valid for the SDK's types as it stands and is plain JSON, so
    it needs neither pydantic's check nor a walk (the common case, kept cheap).
    """
    if messages.__class__ is not list or not messages:
        return None
    # A list (the class check above); its items are checked below.
    given = typing.cast("list[dict[str, str]]", messages)
    # Made at its final length (appending would leave room for three more messages in
    # every body of a round).
    plain: list[JSON] = [None] * len(given)
    for i, message in enumerate(given):
        if message.__class__ is not dict or len(message) != 2:
            return None
        role = message.get("role")
        content = message.get("content")
        if content.__class__ is not str or role.__class__ is not str or role not in _PLAIN_ROLES:
            return None
        plain[i] = {"role": role, "content": content}
    return plain


def _check_messages(messages: object) -> list[ChatCompletionMessageParam]:
    if isinstance(messages, str | bytes) or not isinstance(messages, Sequence):
        raise TypeError(
            "messages must be a list of messages such as "
            "[{'role': 'user', 'content': 'Hello'}]; "
            f"got {type(messages).__name__}"
        )
    if not messages:
        raise ValueError("messages must not be empty")
    for i, message in enumerate(messages):
        if not isinstance(message, Mapping):
            raise TypeError(
                f"messages[{i}] must be a mapping with 'role' and 'content'; "
                f"got {type(message).__name__}"
            )
        role = message.get("role")
        if role not in _MESSAGE_TYPES:
            raise ValueError(
                f"messages[{i}] has no valid 'role' (got {role!r}); "
                f"use one of {', '.join(sorted(_MESSAGE_TYPES))}"
            )
        if role in _NEEDS_CONTENT and "content" not in message:
            raise ValueError(f"messages[{i}] (role {role!r}) has no 'content'")
        _check_value("chat", f"messages[{i}]", _MESSAGE_TYPES[str(role)], message)
    checked: list[ChatCompletionMessageParam] = list(messages)
    return checked


def _chat_body(
    what: str,
    model: str,
    messages: Sequence[ChatCompletionMessageParam],
    params: Mapping[str, object],
    *,
    reserved: frozenset[str],
    fixed: Mapping[str, JSON],
) -> JSONObject:
    """The plain JSON body of a chat completion, every part checked once."""
    if not isinstance(model, str) or not model:  # type: ignore[redundant-expr]  # untyped callers
        raise TypeError(f"model must be a non-empty string; got {model!r}")
    fast = _plain_messages(messages)
    if fast is not None and not params:
        return {"model": model, **fixed, "messages": fast}
    plain: JSON | _NotPlain = fast
    checked: Sequence[object] = messages
    if fast is None:
        plain = _json_part(messages, "messages")
        checked = _check_messages(messages)
    plain_params = _check_params(what, params, _CHAT_PARAMS, reserved)
    if not isinstance(plain, _NotPlain) and plain_params is not None:
        return {"model": model, **fixed, "messages": plain, **plain_params}
    raw: dict[str, object] = {"model": model, **fixed, "messages": checked, **params}
    if "tools" in raw:
        raw["tools"] = list(raw["tools"])  # type: ignore[call-overload]  # pyright: ignore[reportArgumentType]  # validated iterable
    return _plain_body(raw, completion_create_params.CompletionCreateParamsNonStreaming)


def _transform_or_check(raw: dict[str, object], params_type: type) -> tuple[JSONObject, bool]:
    """``raw`` as the SDK would send it, and whether it was checked as plain JSON.

    A body that is plain JSON comes out of the SDK's transform equal to itself (see
    :func:`_transformed`), so it is only checked; any other goes through the
    transform. A body that cannot be sent at all (a cycle, nesting too deep) is
    refused with the check's message, not the transform's ``RecursionError``.
    """
    try:
        plain = validate_json(raw)
    except (TypeError, ValueError) as error:
        try:
            body = maybe_transform(raw, params_type)
        except RecursionError:
            raise error from None
        assert isinstance(body, dict)
        return body, False
    assert isinstance(plain, dict)
    return plain, True


def _transformed(raw: dict[str, object], params_type: type) -> dict[str, object]:
    """``raw`` as the SDK transforms a body of ``params_type`` before sending it.

    The SDK's transform drops omitted values, dumps pydantic models, turns other
    iterables into lists and applies field aliases and formats; the chat and
    embedding params declare no alias or format. So a body that is already plain
    JSON comes out equal to itself (tuples become lists either way), and the
    transform, which costs far more than the rest of building a request, is run
    only on bodies that hold something else. tests/immediate pins the equality.
    """
    body, _ = _transform_or_check(raw, params_type)
    return dict(body)


def _plain_body(raw: dict[str, object], params_type: type) -> JSONObject:
    """The transformed body, checked as plain JSON exactly once (naming any bad value)."""
    body, checked = _transform_or_check(raw, params_type)
    if checked:
        return body
    plain = validate_json(body)
    assert isinstance(plain, dict)
    return plain


# --- decoding ---------------------------------------------------------------------------


def _api_error(raw: Mapping[str, Any]) -> ApiError:
    error = raw.get("error")
    details: Mapping[str, Any] = error if isinstance(error, Mapping) else {}
    code = details.get("code")
    status = raw.get("status_code")
    return ApiError(
        f"the API answered with an error: {details.get('message', error)}",
        status=status if isinstance(status, int) else None,
        code=code if isinstance(code, str) else None,
        body=dict(raw),
    )


def _content_of(raw: JSON) -> str:
    """The answer text of a chat completion, or the typed error of a bad answer."""
    if not isinstance(raw, dict):
        raise InvalidOutputError(f"expected a chat completion object, got {type(raw).__name__}")
    choices = raw.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        if "error" in raw:
            raise _api_error(raw)
        raise InvalidOutputError("the chat completion has no choices")
    choice = choices[0]
    finish = choice.get("finish_reason")
    if finish == "length":
        raise TruncatedError("the answer was cut off at the token limit (finish_reason 'length')")
    if finish == "content_filter":
        raise ContentFilterError("the answer was withheld by the content filter")
    message = choice.get("message")
    if not isinstance(message, dict):
        raise InvalidOutputError("the chat completion has no message")
    refusal = message.get("refusal")
    if isinstance(refusal, str) and refusal:
        raise RefusalError(f"the model refused: {refusal}", refusal=refusal)
    content = message.get("content")
    if not isinstance(content, str):
        raise InvalidOutputError("the chat completion message has no text content")
    return content


@cache
def _response_format(response_format: type[pydantic.BaseModel]) -> JSON:
    """The strict ``response_format`` of a model, built and transformed once per class.

    Exactly what ``parse`` sends: the SDK's conversion, then the SDK's transform for
    the ``response_format`` field (done apart because walking a schema is slow).
    """
    fields: dict[str, object] = {"response_format": type_to_response_format_param(response_format)}
    transformed = _plain_body(fields, completion_create_params.CompletionCreateParamsNonStreaming)
    checked = transformed["response_format"]
    _check_strict(response_format, checked)
    return checked


def _check_strict(response_format: type[pydantic.BaseModel], response: JSON) -> None:
    """Refuse a schema OpenAI's strict mode cannot express: an object open to any key.

    Strict mode requires ``additionalProperties: false`` on every object; a
    ``dict[str, X]`` field (or ``extra="allow"``) makes an open object, which the API
    would reject with a 400 for every request (in a batch, only hours later).
    """
    work: list[tuple[JSON, str]] = [(response, "")]
    while work:
        node, where = work.pop()
        if isinstance(node, list):
            work.extend((item, f"{where}[{i}]") for i, item in enumerate(node))
            continue
        if not isinstance(node, dict):
            continue
        kind = node.get("type")
        is_object = kind == "object" or (isinstance(kind, list) and "object" in kind)
        if (is_object or "properties" in node) and node.get("additionalProperties") is not False:
            raise TypeError(
                f"response_format {response_format.__name__} cannot be expressed in OpenAI's "
                f"strict structured outputs: the object at {where or 'the root'} accepts "
                "arbitrary keys (a dict[...] field or extra='allow'); give it named fields"
            )
        work.extend((value, f"{where}.{key}") for key, value in node.items())


_DECODERS: dict[type[pydantic.BaseModel], Callable[[JSON], Any]] = {}


def _structured_decoder(response_format: type[M]) -> Callable[[JSON], M]:
    """One shared decoder per model class (decoding is on the hot path)."""
    decoder = _DECODERS.get(response_format)
    if decoder is None:
        name = response_format.__name__

        def decode(raw: JSON) -> M:
            content = _content_of(raw)
            try:
                return response_format.model_validate_json(content)
            except pydantic.ValidationError as error:
                raise InvalidOutputError(
                    f"the answer does not validate as {name}: {error}"
                ) from error

        decoder = _DECODERS[response_format] = decode
    return decoder


def _decode_chat(raw: JSON) -> str:
    return _content_of(raw)


def _decode_completion(raw: JSON) -> ChatCompletion:
    if isinstance(raw, dict) and "error" in raw and "choices" not in raw:
        raise _api_error(raw)
    try:
        return ChatCompletion.model_validate(raw)
    except pydantic.ValidationError as error:
        raise InvalidOutputError(f"the answer is not a chat completion: {error}") from error


def _decode_embedding(raw: JSON) -> list[float]:
    if not isinstance(raw, dict):
        raise InvalidOutputError(f"expected an embeddings list, got {type(raw).__name__}")
    data = raw.get("data")
    if not isinstance(data, list) or not data or not isinstance(data[0], dict):
        if "error" in raw:
            raise _api_error(raw)
        raise InvalidOutputError("the embeddings response has no data")
    vector = data[0].get("embedding")
    if isinstance(vector, str):  # encoding_format="base64": little-endian float32
        packed = base64.b64decode(vector)
        return list(struct.unpack(f"<{len(packed) // 4}f", packed))
    if isinstance(vector, list) and all(
        isinstance(v, float | int) and not isinstance(v, bool) for v in vector
    ):
        return [float(v) for v in vector]  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]  # numbers, checked above
    raise InvalidOutputError("the embedding is neither a list of numbers nor base64")


# --- builders ---------------------------------------------------------------------------

_STRUCTURED_RESERVED: Final = frozenset({"model", "messages", "response_format"})
_STREAM: Final[Mapping[str, JSON]] = {"stream": False}
_CHAT_RESERVED: Final = frozenset({"model", "messages"})


def structured(
    *,
    model: str,
    messages: Sequence[ChatCompletionMessageParam],
    response_format: type[M],
    dedup: bool = True,
    **params: object,
) -> Request[M]:
    """A chat completion whose answer is parsed into ``response_format``.

    The body is exactly what ``client.chat.completions.parse(model=..., messages=...,
    response_format=..., **params)`` sends (``stream: false`` and the strict JSON
    schema built by the SDK's own conversion).

    Args:
        model: the model name.
        messages: the chat messages, as the SDK takes them.
        response_format: a pydantic model class; the answer must validate as it.
        dedup: ``False`` when every occurrence must be a separate call (sampling at
            temperature > 0 where distinct samples are wanted).
        **params: any other parameter of chat completions (``temperature``,
            ``max_completion_tokens``, ...), checked against the SDK's types.

    Returns:
        A request for the validated model instance. A refusal, a truncated answer,
        a content-filtered answer and an answer that fails validation are
        :class:`~inert.errors.RefusalError`, :class:`~inert.errors.TruncatedError`,
        :class:`~inert.errors.ContentFilterError` and
        :class:`~inert.errors.InvalidOutputError`.

    Raises:
        TypeError: an unknown or mistyped parameter, a ``response_format`` that is
            not a pydantic model class, or one strict mode cannot express (an object
            open to arbitrary keys, such as a ``dict[str, X]`` field); the message
            names it.
        ValueError: ``stream=True`` or malformed messages.
    """
    if not (
        isinstance(response_format, type)  # type: ignore[redundant-expr]  # untyped callers
        and issubclass(response_format, pydantic.BaseModel)
    ):
        raise TypeError(
            f"response_format must be a pydantic BaseModel subclass; got {response_format!r}"
        )
    if "tools" in params:
        _check_value("chat", "tools", _CHAT_PARAMS["tools"], params["tools"])
        validate_input_tools(params["tools"])  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]  # validated above
    body = _chat_body("chat", model, messages, params, reserved=_STRUCTURED_RESERVED, fixed=_STREAM)
    body["response_format"] = _response_format(response_format)
    return _Call(Op._built(CHAT_COMPLETIONS, body, _structured_decoder(response_format), dedup))


def chat(
    *,
    model: str,
    messages: Sequence[ChatCompletionMessageParam],
    dedup: bool = True,
    **params: object,
) -> Request[str]:
    """A chat completion whose answer is its text.

    The body is what ``client.chat.completions.create(model=..., messages=...,
    **params)`` sends. Refusal, truncation and content filtering are typed errors,
    as for :func:`structured`.

    Raises:
        TypeError: an unknown or mistyped parameter; the message names it.
        ValueError: ``stream=True`` or malformed messages.
    """
    body = _chat_body("chat", model, messages, params, reserved=_CHAT_RESERVED, fixed={})
    return _Call(Op._built(CHAT_COMPLETIONS, body, _decode_chat, dedup))


def completion(
    *,
    model: str,
    messages: Sequence[ChatCompletionMessageParam],
    dedup: bool = True,
    **params: object,
) -> Request[ChatCompletion]:
    """A chat completion returned whole, as the SDK's typed ``ChatCompletion``.

    The raw form: no refusal or truncation checks, for callers who need tool calls,
    logprobs or several choices. The body is what ``client.chat.completions.create``
    sends for the same arguments.

    Raises:
        TypeError: an unknown or mistyped parameter; the message names it.
        ValueError: ``stream=True`` or malformed messages.
    """
    body = _chat_body("chat", model, messages, params, reserved=_CHAT_RESERVED, fixed={})
    return _Call(Op._built(CHAT_COMPLETIONS, body, _decode_completion, dedup))


def embedding(
    *,
    model: str,
    input: str,
    dedup: bool = True,
    **params: object,
) -> Request[list[float]]:
    """The embedding vector of one text (``POST /v1/embeddings``).

    The body is what ``client.embeddings.create(model=..., input=..., **params)``
    sends; ``encoding_format="base64"`` answers are decoded as well.

    Raises:
        TypeError: a non-string input, or an unknown or mistyped parameter.
    """
    if not isinstance(model, str) or not model:  # type: ignore[redundant-expr]  # untyped callers
        raise TypeError(f"model must be a non-empty string; got {model!r}")
    if not isinstance(input, str):
        raise TypeError(f"input must be one string (one input, one vector); got {input!r:.60}")
    body: JSONObject = {"input": input, "model": model}
    if params:
        reserved = frozenset({"model", "input"})
        plain_params = _check_params("embeddings", params, _EMBEDDING_PARAMS, reserved)
        if plain_params is not None:
            body.update(plain_params)
        else:
            raw = {**body, **params}
            body = _plain_body(raw, embedding_create_params.EmbeddingCreateParams)
    return _Call(Op._built(EMBEDDINGS, body, _decode_embedding, dedup))


# --- the Responses API (``POST /v1/responses``) ----------------------------------------

_RESPONSE_RESERVED: Final = frozenset({"model", "input", "text_format"})


def _check_input(input: object) -> JSON:
    """The Responses ``input`` as plain JSON: a string or a list of input items."""
    if isinstance(input, str):
        if not input:
            raise ValueError("input must not be empty; give the prompt text or a list of items")
        return input
    if isinstance(input, bytes) or not isinstance(input, Sequence):
        raise TypeError(
            "input must be a string or a list of input items such as "
            "[{'role': 'user', 'content': 'Hello'}]; "
            f"got {type(input).__name__}"
        )
    if not input:
        raise ValueError("input must not be empty")
    fast = _plain_messages(list(input))
    if fast is not None:
        return fast
    plain = _json_part(input, "input")
    _check_value("responses", "input", _RESPONSE_PARAMS["input"], input)
    if isinstance(plain, _NotPlain):
        body = _plain_body(
            {"input": list(input)}, response_create_params.ResponseCreateParamsNonStreaming
        )
        return body["input"]
    return plain


@cache
def _text_format(text_format: type[pydantic.BaseModel]) -> JSONObject:
    """The strict ``text.format`` of a model, built once per class by the SDK's conversion.

    Exactly what ``client.responses.parse(text_format=...)`` puts under ``text.format``
    (``type_to_text_format_param``), refused at once if strict mode cannot express it.
    """
    fmt = validate_json(dict(type_to_text_format_param(text_format)))
    assert isinstance(fmt, dict)
    _check_strict(text_format, fmt)
    return fmt


def _response_body(
    model: str,
    input: str | ResponseInputParam,
    params: Mapping[str, object],
    text_format: type[pydantic.BaseModel] | None,
) -> JSONObject:
    """The plain JSON body of a Responses request, every part checked once."""
    if not isinstance(model, str) or not model:  # type: ignore[redundant-expr]  # untyped callers
        raise TypeError(f"model must be a non-empty string; got {model!r}")
    body: JSONObject = {"model": model, "input": _check_input(input)}
    if params:
        plain = _check_params("responses", params, _RESPONSE_PARAMS, _RESPONSE_RESERVED)
        if plain is None:
            raw: dict[str, object] = {**params}
            plain = dict(_plain_body(raw, response_create_params.ResponseCreateParamsNonStreaming))
        body.update(plain)
    if text_format is not None:
        text = body.get("text")
        if text is None:
            text = {}
        if not isinstance(text, dict):
            raise TypeError(f"responses parameter 'text' must be a mapping; got {text!r:.60}")
        if "format" in text:
            # The SDK's own rule in responses.parse: one way to say the format, not two.
            raise TypeError(
                "responses parameter 'text' has a 'format' and text_format is given too; "
                "use one of them"
            )
        body["text"] = {**text, "format": _text_format(text_format)}
    return body


def _response_text(raw: JSON) -> str:
    """The answer text of a ``Response``, or the typed error of a bad answer.

    A response that ran out of ``max_output_tokens`` ends ``status: "incomplete"``
    with ``incomplete_details.reason`` (openai/openai-openapi ``Response``): that is
    a :class:`TruncatedError` (``"content_filter"``: :class:`ContentFilterError`),
    even when it carries some text. A ``refusal`` content part is a
    :class:`RefusalError`. The text is that of every ``output_text`` part of the
    assistant's final messages, joined, as the SDK's ``Response.output_text`` is.
    """
    if not isinstance(raw, dict):
        raise InvalidOutputError(f"expected a response object, got {type(raw).__name__}")
    output = raw.get("output")
    status = raw.get("status")
    if not isinstance(output, list):
        if raw.get("error") is not None:
            raise _api_error(raw)
        raise InvalidOutputError("the response has no output")
    if status == "incomplete":
        details = raw.get("incomplete_details")
        reason = details.get("reason") if isinstance(details, dict) else None
        if reason == "content_filter":
            raise ContentFilterError("the answer was withheld by the content filter")
        raise TruncatedError(
            f"the answer was cut off (status 'incomplete', reason {reason!r}); raise "
            "max_output_tokens or shorten the input"
        )
    if status == "failed":
        error = raw.get("error")
        message = error.get("message") if isinstance(error, dict) else error
        raise ApiError(f"the response failed: {message}", status=None, body=raw)
    texts: list[str] = []
    for item in output:
        if not isinstance(item, dict) or item.get("type") != "message":
            continue
        if item.get("phase") not in (None, "final_answer"):
            continue  # commentary is not the answer (the SDK's parse_text rule)
        content = item.get("content")
        for part in content if isinstance(content, list) else ():
            if not isinstance(part, dict):
                continue
            if part.get("type") == "refusal":
                refusal = part.get("refusal")
                words = refusal if isinstance(refusal, str) else ""
                raise RefusalError(f"the model refused: {words}", refusal=words)
            text = part.get("text")
            if part.get("type") == "output_text" and isinstance(text, str):
                texts.append(text)
    if not texts:
        raise InvalidOutputError("the response has no output text")
    return "".join(texts)


_RESPONSE_DECODERS: dict[type[pydantic.BaseModel], Callable[[JSON], Any]] = {}


def _text_format_decoder(text_format: type[M]) -> Callable[[JSON], M]:
    """One shared decoder per model class: the response's text validated as the model."""
    decoder = _RESPONSE_DECODERS.get(text_format)
    if decoder is None:
        name = text_format.__name__

        def decode(raw: JSON) -> M:
            text = _response_text(raw)
            try:
                return text_format.model_validate_json(text)
            except pydantic.ValidationError as error:
                raise InvalidOutputError(
                    f"the answer does not validate as {name}: {error}"
                ) from error

        decoder = _RESPONSE_DECODERS[text_format] = decode
    return decoder


def _decode_response_object(raw: JSON) -> Response:
    if isinstance(raw, dict) and raw.get("error") is not None and "output" not in raw:
        raise _api_error(raw)
    try:
        return Response.model_validate(raw)
    except pydantic.ValidationError as error:
        raise InvalidOutputError(f"the answer is not a response object: {error}") from error


def _check_text_format(text_format: object) -> None:
    if not (isinstance(text_format, type) and issubclass(text_format, pydantic.BaseModel)):
        raise TypeError(f"text_format must be a pydantic BaseModel subclass; got {text_format!r}")


@overload
def response(
    *,
    model: str,
    input: str | ResponseInputParam,
    text_format: type[M],
    dedup: bool = True,
    **params: object,
) -> Request[M]: ...


@overload
def response(
    *,
    model: str,
    input: str | ResponseInputParam,
    text_format: None = None,
    dedup: bool = True,
    **params: object,
) -> Request[str]: ...


def response(
    *,
    model: str,
    input: str | ResponseInputParam,
    text_format: type[M] | None = None,
    dedup: bool = True,
    **params: object,
) -> Request[M] | Request[str]:
    """A Responses API call (``POST /v1/responses``): its text, or parsed as ``text_format``.

    With ``text_format`` the body is exactly what ``client.responses.parse(model=...,
    input=..., text_format=..., **params)`` sends: ``text.format`` is the strict JSON
    schema the SDK's own ``type_to_text_format_param`` builds (any other ``text``
    settings, such as ``verbosity``, are kept beside it). Without it the body is what
    ``client.responses.create(...)`` sends and the answer is the output text. Both
    runners send that body; the Batch API takes it as a ``/v1/responses`` line.

    Args:
        model: the model name.
        input: the prompt text, or a list of input items (``{"role": "user",
            "content": "..."}`` and the SDK's other item types).
        text_format: a pydantic model class the answer must validate as, or None
            for the text.
        dedup: ``False`` when every occurrence must be a separate call.
        **params: any other parameter of ``responses.create`` (``instructions``,
            ``max_output_tokens``, ``temperature``, ``reasoning``, ...), checked
            against the SDK's types.

    Returns:
        A request for the validated model instance (or the text). A refusal, an
        answer cut off (``status: "incomplete"``, ``incomplete_details.reason``
        ``"max_output_tokens"``), a content-filtered answer and output that fails
        validation are :class:`~inert.errors.RefusalError`,
        :class:`~inert.errors.TruncatedError`,
        :class:`~inert.errors.ContentFilterError` and
        :class:`~inert.errors.InvalidOutputError`.

    Raises:
        TypeError: an unknown or mistyped parameter, a ``text_format`` that is not a
            pydantic model class or one strict mode cannot express, or ``text`` with
            a ``format`` beside ``text_format``; the message names it.
        ValueError: ``stream=True`` or an empty input.
    """
    if text_format is not None:
        _check_text_format(text_format)
    body = _response_body(model, input, params, text_format)
    if text_format is None:
        return _Call(Op._built(RESPONSES, body, _response_text, dedup))
    return _Call(Op._built(RESPONSES, body, _text_format_decoder(text_format), dedup))


def response_object(
    *,
    model: str,
    input: str | ResponseInputParam,
    dedup: bool = True,
    **params: object,
) -> Request[Response]:
    """A Responses API call returned whole, as the SDK's typed ``Response``.

    The raw form: no refusal or truncation checks, for callers who need tool calls,
    reasoning items or usage details. The body is what ``client.responses.create``
    sends for the same arguments.

    Raises:
        TypeError: an unknown or mistyped parameter; the message names it.
        ValueError: ``stream=True`` or an empty input.
    """
    body = _response_body(model, input, params, None)
    return _Call(Op._built(RESPONSES, body, _decode_response_object, dedup))
