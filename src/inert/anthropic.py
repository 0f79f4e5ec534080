"""Request builders for Anthropic's Messages API: ``message`` and ``message_object``.

Each builder performs no I/O: it checks its arguments against the ``anthropic``
SDK's own parameter types, builds the JSON body the SDK would send and returns a
``Request[T]`` whose op decodes the raw ``Message``. Both runners send that body:
the immediate runner posts it to ``/v1/messages`` through an
``anthropic.AsyncAnthropic``, the batch runner sends it as the ``params`` of one
request of a Message Batch, so the two modes cannot drift apart.

* :func:`message` with ``output_format=Model`` sends what
  ``client.messages.parse(..., output_format=Model)`` sends: the JSON schema under
  ``output_config.format`` is the SDK's own conversion
  (``anthropic.lib._parse._transform.to_json_output_format``), and the answer is
  validated as ``Model``. Without it the answer is the message's text.
* :func:`message_object` answers the SDK's typed ``anthropic.types.Message``.

The ops' endpoint is ``/v1/messages``, which no OpenAI endpoint shares: an
Anthropic op's key (its dedup and cache key, and its batch ``custom_id``) never
equals an OpenAI op's, and the runners send each op through the client of the
provider its endpoint belongs to.
"""

from __future__ import annotations

import typing
from collections.abc import Callable, Mapping, Sequence
from functools import cache
from typing import Any, Final, TypeVar, overload

import pydantic
import pydantic_core
from anthropic.lib._parse._transform import to_json_output_format
from anthropic.types import Message, MessageParam, message_create_params

from inert._errors import ApiError, InvalidOutputError, RefusalError, TruncatedError
from inert._json import JSON, JSONObject, validate_json
from inert._op import Op
from inert._params import NotPlain, check_params, check_value, json_part
from inert._request import Request, _Call

__all__ = ["MESSAGES", "message", "message_object"]

M = TypeVar("M", bound=pydantic.BaseModel)

MESSAGES: Final = "/v1/messages"
"""The endpoint of Anthropic's Messages API (a Message Batch request's ``params`` are its body)."""

_PARAMS: Final[Mapping[str, Any]] = typing.get_type_hints(
    message_create_params.MessageCreateParamsNonStreaming
)
_HEADERS: Final = frozenset({"workspace_id", "user_profile_id"})
"""Parameters the SDK sends as headers, not in the body: they belong on the client."""
_RESERVED: Final = frozenset({"model", "max_tokens", "messages", "output_format"})
_ROLES: Final = ("user", "assistant", "system")
_PLAIN_ROLES: Final = frozenset({"user", "assistant"})
_WHAT: Final = "anthropic messages"


# --- building ---------------------------------------------------------------------------


def _plain(value: object, name: str) -> JSON:
    """``value`` as plain JSON: checked as is, or first dumped the way the SDK dumps it."""
    part = json_part(value, name)
    if not isinstance(part, NotPlain):
        return part
    return validate_json(pydantic_core.to_jsonable_python(value), path=(name,))


def _check_messages(messages: object) -> JSON:
    """The messages as plain JSON, each checked against the SDK's ``MessageParam``."""
    if isinstance(messages, str | bytes) or not isinstance(messages, Sequence):
        raise TypeError(
            "messages must be a list of messages such as "
            "[{'role': 'user', 'content': 'Hello'}]; "
            f"got {type(messages).__name__}"
        )
    if not messages:
        raise ValueError("messages must not be empty")
    if all(
        type(m) is dict
        and len(m) == 2
        and m.get("role") in _PLAIN_ROLES
        and type(m.get("content")) is str
        for m in messages
    ):
        return [{"role": m["role"], "content": m["content"]} for m in messages]
    for i, item in enumerate(messages):
        if not isinstance(item, Mapping):
            raise TypeError(
                f"messages[{i}] must be a mapping with 'role' and 'content'; "
                f"got {type(item).__name__}"
            )
        role = item.get("role")
        if role not in _ROLES:
            raise ValueError(
                f"messages[{i}] has no valid 'role' (got {role!r}); use one of "
                f"{', '.join(_ROLES)} (a system prompt may also go in system=...)"
            )
        if "content" not in item:
            raise ValueError(f"messages[{i}] (role {role!r}) has no 'content'")
    plain = _plain(list(messages), "messages")
    check_value(_WHAT, "messages", _PARAMS["messages"], plain)
    return plain


def _open_object(schema: JSON, where: str = "") -> str | None:
    """Where in a pydantic JSON schema an object accepts arbitrary keys, if anywhere."""
    work: list[tuple[JSON, str]] = [(schema, where)]
    while work:
        node, at = work.pop()
        if isinstance(node, list):
            work.extend((item, f"{at}[{i}]") for i, item in enumerate(node))
            continue
        if not isinstance(node, dict):
            continue
        extra = node.get("additionalProperties")
        if extra is not None and extra is not False:
            return at or "the root"
        work.extend((value, f"{at}.{key}") for key, value in node.items())
    return None


@cache
def _output_format(output_format: type[pydantic.BaseModel]) -> JSONObject:
    """``output_config.format`` for a model, built once per class by the SDK's conversion.

    The SDK's conversion gives every object ``additionalProperties: false`` (which
    Anthropic's structured outputs require), so a ``dict[str, X]`` field would only
    ever be answered with ``{}``: such a model is refused here instead.
    """
    where = _open_object(validate_json(output_format.model_json_schema()))
    if where is not None:
        raise TypeError(
            f"output_format {output_format.__name__} cannot be expressed in Anthropic's "
            f"structured outputs: the object at {where} accepts arbitrary keys (a dict[...] "
            "field or extra='allow'); give it named fields"
        )
    fmt = validate_json(dict(to_json_output_format(output_format)))
    assert isinstance(fmt, dict)
    return fmt


def _body(
    model: str,
    max_tokens: int,
    messages: Sequence[MessageParam],
    params: Mapping[str, object],
    output_format: type[pydantic.BaseModel] | None,
) -> JSONObject:
    """The plain JSON body of a Messages request, every part checked once."""
    if not isinstance(model, str) or not model:  # type: ignore[redundant-expr]  # untyped callers
        raise TypeError(f"model must be a non-empty string; got {model!r}")
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:  # type: ignore[redundant-expr]  # untyped callers
        raise TypeError(
            f"max_tokens must be a whole number of at least 1 (Anthropic requires it); "
            f"got {max_tokens!r}"
        )
    for name in params:
        if name in _HEADERS:
            raise TypeError(
                f"{_WHAT} parameter {name!r} is sent as a header, not in the body; set it "
                "on the client (default_headers) instead"
            )
    body: JSONObject = {
        "max_tokens": max_tokens,
        "messages": _check_messages(messages),
        "model": model,
    }
    if params:
        plain = check_params(_WHAT, params, _PARAMS, _RESERVED)
        if plain is None:
            plain = {name: _plain(value, name) for name, value in params.items()}
        body.update(plain)
    if output_format is not None:
        config = body.get("output_config")
        if config is None:
            config = {}
        if not isinstance(config, dict):
            raise TypeError(f"{_WHAT} parameter 'output_config' must be a mapping")
        if config.get("format") is not None:
            # The SDK's own rule (validate_output_config_conflict): one format, not two.
            raise TypeError(
                f"{_WHAT} parameter 'output_config' has a 'format' and output_format is "
                "given too; use one of them"
            )
        body["output_config"] = {**config, "format": _output_format(output_format)}
    return body


# --- decoding ---------------------------------------------------------------------------


def _api_error(raw: Mapping[str, Any]) -> ApiError:
    """An Anthropic error body (``{"type": "error", "error": {"type", "message"}}``)."""
    error = raw.get("error")
    details: Mapping[str, Any] = error if isinstance(error, Mapping) else {}
    kind = details.get("type")
    return ApiError(
        f"the API answered with an error: {details.get('message', error)}",
        code=kind if isinstance(kind, str) else None,
        body=dict(raw),
    )


def _message_text(raw: JSON) -> str:
    """The text of a ``Message``, or the typed error of a bad answer.

    ``stop_reason`` ``"max_tokens"`` (or ``"model_context_window_exceeded"``) means
    the answer was cut off: :class:`TruncatedError`; ``"refusal"`` means the model
    declined (Anthropic's structured-outputs guide: the output may then not match
    the schema): :class:`RefusalError`. The text is that of every ``text`` block,
    joined.
    """
    if not isinstance(raw, dict):
        raise InvalidOutputError(f"expected a message object, got {type(raw).__name__}")
    content = raw.get("content")
    if not isinstance(content, list):
        if raw.get("error") is not None:
            raise _api_error(raw)
        raise InvalidOutputError("the message has no content")
    texts = [
        block["text"]
        for block in content
        if isinstance(block, dict)
        and block.get("type") == "text"
        and isinstance(block.get("text"), str)
    ]
    text = "".join(t for t in texts if isinstance(t, str))
    stop = raw.get("stop_reason")
    if stop == "refusal":
        raise RefusalError(f"the model refused: {text}", refusal=text)
    if stop in ("max_tokens", "model_context_window_exceeded"):
        raise TruncatedError(
            f"the answer was cut off (stop_reason {stop!r}); raise max_tokens or shorten the prompt"
        )
    if not texts:
        raise InvalidOutputError(f"the message has no text (stop_reason {stop!r})")
    return text


_DECODERS: dict[type[pydantic.BaseModel], Callable[[JSON], Any]] = {}


def _format_decoder(output_format: type[M]) -> Callable[[JSON], M]:
    """One shared decoder per model class: the message's text validated as the model."""
    decoder = _DECODERS.get(output_format)
    if decoder is None:
        name = output_format.__name__

        def decode(raw: JSON) -> M:
            text = _message_text(raw)
            try:
                return output_format.model_validate_json(text)
            except pydantic.ValidationError as error:
                raise InvalidOutputError(
                    f"the answer does not validate as {name}: {error}"
                ) from error

        decoder = _DECODERS[output_format] = decode
    return decoder


def _decode_message(raw: JSON) -> Message:
    if isinstance(raw, dict) and raw.get("error") is not None and "content" not in raw:
        raise _api_error(raw)
    try:
        return Message.model_validate(raw)
    except pydantic.ValidationError as error:
        raise InvalidOutputError(f"the answer is not a message object: {error}") from error


# --- builders ---------------------------------------------------------------------------


@overload
def message(
    *,
    model: str,
    max_tokens: int,
    messages: Sequence[MessageParam],
    output_format: type[M],
    dedup: bool = True,
    **params: object,
) -> Request[M]: ...


@overload
def message(
    *,
    model: str,
    max_tokens: int,
    messages: Sequence[MessageParam],
    output_format: None = None,
    dedup: bool = True,
    **params: object,
) -> Request[str]: ...


def message(
    *,
    model: str,
    max_tokens: int,
    messages: Sequence[MessageParam],
    output_format: type[M] | None = None,
    dedup: bool = True,
    **params: object,
) -> Request[M] | Request[str]:
    """A Messages API call (``POST /v1/messages``): its text, or parsed as ``output_format``.

    With ``output_format`` the body is what ``client.messages.parse(model=...,
    max_tokens=..., messages=..., output_format=..., **params)`` sends: the model's
    JSON schema, converted by the SDK's own ``to_json_output_format``, under
    ``output_config.format`` (beside any other ``output_config`` setting, such as
    ``effort``). Without it the body is what ``client.messages.create(...)`` sends.

    Args:
        model: the model name, such as ``"claude-haiku-4-5"``.
        max_tokens: the most tokens the answer may have (Anthropic requires it).
        messages: the conversation, as the SDK takes it (``{"role": "user",
            "content": "..."}``, ...).
        output_format: a pydantic model class the answer must validate as, or None
            for the text.
        dedup: ``False`` when every occurrence must be a separate call.
        **params: any other parameter of ``messages.create`` (``system``,
            ``temperature``, ``stop_sequences``, ``thinking``, ...), checked against
            the SDK's types.

    Returns:
        A request for the validated model instance (or the text). A refusal
        (``stop_reason: "refusal"``), an answer cut off (``"max_tokens"``) and output
        that fails validation are :class:`~inert.errors.RefusalError`,
        :class:`~inert.errors.TruncatedError` and
        :class:`~inert.errors.InvalidOutputError`.

    Raises:
        TypeError: an unknown or mistyped parameter, a header parameter
            (``workspace_id``), an ``output_format`` that is not a pydantic model
            class or one structured outputs cannot express, or an
            ``output_config`` with a ``format`` beside ``output_format``.
        ValueError: ``stream=True`` or malformed messages.
    """
    if output_format is not None and not (
        isinstance(output_format, type)  # type: ignore[redundant-expr]  # untyped callers
        and issubclass(output_format, pydantic.BaseModel)
    ):
        raise TypeError(
            f"output_format must be a pydantic BaseModel subclass; got {output_format!r}"
        )
    body = _body(model, max_tokens, messages, params, output_format)
    if output_format is None:
        return _Call(Op._built(MESSAGES, body, _message_text, dedup))
    return _Call(Op._built(MESSAGES, body, _format_decoder(output_format), dedup))


def message_object(
    *,
    model: str,
    max_tokens: int,
    messages: Sequence[MessageParam],
    dedup: bool = True,
    **params: object,
) -> Request[Message]:
    """A Messages API call returned whole, as the SDK's typed ``anthropic.types.Message``.

    The raw form: no refusal or truncation checks, for callers who need tool use
    blocks, thinking blocks or usage details. The body is what
    ``client.messages.create`` sends for the same arguments.

    Raises:
        TypeError: an unknown or mistyped parameter; the message names it.
        ValueError: ``stream=True`` or malformed messages.
    """
    body = _body(model, max_tokens, messages, params, None)
    return _Call(Op._built(MESSAGES, body, _decode_message, dedup))
