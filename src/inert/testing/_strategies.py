"""Hypothesis strategies: schema-valid values, raw API responses and failures.

Values are derived from the strict JSON schema that the request carries (the one
``openai.lib.type_to_response_format_param`` builds from a pydantic model), so a
strategy for an op needs nothing but the op's body: it works for any op built by
``inert.openai`` or ``inert.anthropic`` and for ops built by hand with the same
format. Each provider's answers come in its own shape: a chat completion for
``/v1/chat/completions``, a ``Response`` for ``/v1/responses`` (schema under
``text.format``) and an Anthropic ``Message`` for ``/v1/messages`` (schema under
``output_config.format``); :func:`chat_completion`, :func:`openai_response` and
:func:`anthropic_message` build one by hand, :func:`answer_for` the one an op's
provider would send.

Supported schema keywords: ``type`` (also as a list), ``enum``, ``const``,
``anyOf``/``oneOf``, a one-element ``allOf``, ``$ref`` into ``$defs`` (recursion
included), ``properties``/``required``/``additionalProperties``/``propertyNames``,
``minProperties``/``maxProperties``, ``items``/``prefixItems``/``minItems``/
``maxItems``/``uniqueItems``, ``minimum``/``maximum``/``exclusiveMinimum``/
``exclusiveMaximum``/``multipleOf`` (integers), ``minLength``/``maxLength``/
``pattern`` and the formats ``date-time``, ``date``, ``time`` and ``uuid``.
Anything else raises a ``ValueError`` naming where in the schema it is. Checks
that a schema cannot express (a pydantic ``field_validator``) are not known here:
pass ``values=`` to :func:`responses_for` for such models.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC
from typing import TYPE_CHECKING, Any, Final, Literal, TypeVar, cast, overload

from hypothesis import strategies as st

from inert._errors import (
    ApiError,
    CancelledRequestError,
    ConnectionFailedError,
    ContentFilterError,
    ExpiredError,
    InvalidOutputError,
    RateLimitError,
    RefusalError,
    RequestError,
    TruncatedError,
)
from inert._json import JSON, JSONObject, canonical_dumps, validate_json
from inert._op import Op
from inert._request import Request

if TYPE_CHECKING:
    from anthropic.types import StopReason
    from pydantic import BaseModel

M = TypeVar("M", bound="BaseModel")
T = TypeVar("T")

CHAT_COMPLETIONS: Final = "/v1/chat/completions"
EMBEDDINGS: Final = "/v1/embeddings"
RESPONSES: Final = "/v1/responses"
MESSAGES: Final = "/v1/messages"
_DEFAULT_MAX_ITEMS: Final = 4
_DEFAULT_MAX_PROPERTIES: Final = 3
_TEST_MODEL: Final = "gpt-test"
_TEST_CLAUDE: Final = "claude-test"

Strategy = st.SearchStrategy


# --- values from a JSON schema -----------------------------------------------------------


def json_for_schema(schema: Mapping[str, Any]) -> Strategy[JSON]:
    """A strategy of JSON values that are valid for ``schema`` (a JSON Schema object).

    ``$ref``\\ s are resolved against ``schema`` itself, as in a response format.

    Raises:
        ValueError: the schema uses a keyword this module cannot satisfy; the
            message names where it is.
    """
    return _SchemaStrategies(schema).build(schema, "#")


_FORMATS: Final[Mapping[str, Callable[[], Strategy[JSON]]]] = {
    "date-time": lambda: st.datetimes(timezones=st.none() | st.just(UTC)).map(
        lambda d: d.isoformat()
    ),
    "date": lambda: st.dates().map(lambda d: d.isoformat()),
    "time": lambda: st.times().map(lambda t: t.isoformat()),
    "uuid": lambda: st.uuids().map(str),
}

_IGNORED: Final = frozenset(
    {"title", "description", "default", "examples", "$defs", "definitions", "$schema", "$id",
     "strict", "discriminator", "readOnly", "writeOnly", "deprecated", "$comment"}
)  # fmt: skip


def _any_json() -> Strategy[JSON]:
    leaves: Strategy[JSON] = (
        st.none()
        | st.booleans()
        | st.integers(-(2**31), 2**31)
        | st.floats(allow_nan=False, allow_infinity=False)
        | st.text(max_size=12)
    )
    return st.recursive(
        leaves,
        lambda inner: (
            st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
        ),
        max_leaves=8,
    )


class _SchemaStrategies:
    """Builds strategies for the subschemas of one root schema (``$ref``\\ s shared)."""

    def __init__(self, root: Mapping[str, Any]) -> None:
        self.root = root
        self.refs: dict[str, Strategy[JSON]] = {}

    def build(self, schema: object, where: str) -> Strategy[JSON]:
        if schema is True or schema == {}:
            return _any_json()
        if not isinstance(schema, Mapping):
            raise ValueError(f"the schema at {where} is {schema!r}, not a JSON Schema object")
        if "$ref" in schema:
            return self._ref(schema["$ref"], where)
        if "const" in schema:
            return st.just(cast(JSON, schema["const"]))
        if "enum" in schema:
            return st.sampled_from(cast(list[JSON], list(schema["enum"])))
        for word in ("anyOf", "oneOf"):
            if word in schema:
                rest = {k: v for k, v in schema.items() if k != word}
                return st.one_of(
                    [
                        self.build({**rest, **alt}, f"{where}/{word}/{i}")
                        for i, alt in enumerate(schema[word])
                    ]
                )
        if "allOf" in schema:
            parts = schema["allOf"]
            if len(parts) != 1:
                raise ValueError(
                    f"the schema at {where} combines {len(parts)} schemas with allOf; only one is supported"
                )
            rest = {k: v for k, v in schema.items() if k != "allOf"}
            return self.build({**rest, **parts[0]}, f"{where}/allOf/0")
        kind = schema.get("type")
        if isinstance(kind, list):
            return st.one_of([self.build({**schema, "type": k}, where) for k in kind])
        if kind is None:
            return _any_json()
        builder = {
            "string": self._string,
            "integer": self._integer,
            "number": self._number,
            "boolean": lambda s, w: st.booleans(),
            "null": lambda s, w: st.none(),
            "array": self._array,
            "object": self._object,
        }.get(kind)
        if builder is None:
            raise ValueError(f"the schema at {where} has the unknown type {kind!r}")
        return builder(schema, where)

    def _ref(self, ref: object, where: str) -> Strategy[JSON]:
        if not isinstance(ref, str) or not ref.startswith("#"):
            raise ValueError(
                f"the schema at {where} refers to {ref!r}; only local refs (#/...) are supported"
            )
        cached = self.refs.get(ref)
        if cached is not None:
            return cached
        target: object = self.root
        for part in ref[1:].split("/")[1:] if ref != "#" else []:
            part = part.replace("~1", "/").replace("~0", "~")
            if not isinstance(target, Mapping) or part not in target:
                raise ValueError(f"the schema at {where} refers to {ref!r}, which does not exist")
            target = target[part]
        built: list[Strategy[JSON]] = []
        # Deferred, so a recursive model refers to itself without building forever.
        self.refs[ref] = st.deferred(lambda: built[0])
        built.append(self.build(target, ref))
        return self.refs[ref]

    def _string(self, schema: Mapping[str, Any], where: str) -> Strategy[JSON]:
        min_size = int(schema.get("minLength", 0))
        max_size = schema.get("maxLength")
        pattern = schema.get("pattern")
        if pattern is not None:
            strings = st.from_regex(pattern)
            if "$" in pattern:
                # Python's ``$`` also matches before a final newline; JSON Schema's
                # (and pydantic's Rust regex) does not.
                strings = strings.filter(lambda s: not s.endswith("\n"))
            if min_size or max_size is not None:
                upper = math.inf if max_size is None else int(max_size)
                strings = strings.filter(lambda s: min_size <= len(s) <= upper)
            return strings
        form = schema.get("format")
        if form is not None and form in _FORMATS:
            return _FORMATS[form]()
        return st.text(min_size=min_size, max_size=None if max_size is None else int(max_size))

    def _integer(self, schema: Mapping[str, Any], where: str) -> Strategy[JSON]:
        low, high = _bounds(schema)
        lo = None if low is None else (math.floor(low[0]) + 1 if low[1] else math.ceil(low[0]))
        hi = None if high is None else (math.ceil(high[0]) - 1 if high[1] else math.floor(high[0]))
        step = schema.get("multipleOf")
        if step is None:
            return st.integers(lo, hi)
        if not isinstance(step, int) or step <= 0:
            raise ValueError(
                f"the schema at {where} has multipleOf {step!r}; only positive integers are supported"
            )
        return st.integers(
            None if lo is None else -(-lo // step), None if hi is None else hi // step
        ).map(lambda k: k * step)

    def _number(self, schema: Mapping[str, Any], where: str) -> Strategy[JSON]:
        if "multipleOf" in schema:
            raise ValueError(
                f"the schema at {where} has multipleOf on a number; only integers support it"
            )
        low, high = _bounds(schema)
        return st.floats(
            min_value=None if low is None else low[0],
            max_value=None if high is None else high[0],
            exclude_min=low is not None and low[1],
            exclude_max=high is not None and high[1],
            allow_nan=False,
            allow_infinity=False,
        )

    def _array(self, schema: Mapping[str, Any], where: str) -> Strategy[JSON]:
        min_size = int(schema.get("minItems", 0))
        max_items = schema.get("maxItems")
        prefix = [
            self.build(s, f"{where}/prefixItems/{i}")
            for i, s in enumerate(schema.get("prefixItems", ()))
        ]
        items = schema.get("items")
        if prefix:
            head: Strategy[list[JSON]] = st.tuples(*prefix).map(list)
            if items is None or items is False:
                return head
            max_rest = (
                min_size + _DEFAULT_MAX_ITEMS if max_items is None else int(max_items)
            ) - len(prefix)
            rest = st.lists(
                self.build(items, f"{where}/items"),
                min_size=max(0, min_size - len(prefix)),
                max_size=max(0, max_rest),
            )
            return st.tuples(head, rest).map(lambda hr: hr[0] + hr[1])
        max_size = min_size + _DEFAULT_MAX_ITEMS if max_items is None else int(max_items)
        element = self.build(True if items is None else items, f"{where}/items")
        if schema.get("uniqueItems"):
            return st.lists(
                element, min_size=min_size, max_size=max_size, unique_by=canonical_dumps
            )
        return st.lists(element, min_size=min_size, max_size=max_size)

    def _object(self, schema: Mapping[str, Any], where: str) -> Strategy[JSON]:
        properties: Mapping[str, Any] = schema.get("properties", {})
        required = set(schema.get("required", ()))
        unknown = required - set(properties)
        if unknown:
            raise ValueError(
                f"the schema at {where} requires {sorted(unknown)} without describing them"
            )
        fixed = {
            k: self.build(v, f"{where}/properties/{k}")
            for k, v in properties.items()
            if k in required
        }
        optional = {
            k: self.build(v, f"{where}/properties/{k}")
            for k, v in properties.items()
            if k not in required
        }
        known: Strategy[dict[str, JSON]] = st.fixed_dictionaries(fixed, optional=optional)
        extra = schema.get("additionalProperties", True)
        if extra is False or (extra is True and properties):
            # Extra keys are allowed by a schema without ``additionalProperties: false``,
            # but a model rarely wants them: leave them out.
            return known
        min_extra = max(0, int(schema.get("minProperties", 0)) - len(fixed))
        max_props = schema.get("maxProperties")
        max_extra = (
            min_extra + _DEFAULT_MAX_PROPERTIES
            if max_props is None
            else int(max_props) - len(properties)
        )
        if "propertyNames" in schema:
            names = self.build(
                {"type": "string", **schema["propertyNames"]}, f"{where}/propertyNames"
            )
        else:
            names = st.text(max_size=10)
        keys = cast(Strategy[str], names).filter(lambda k: k not in properties)
        values = self.build(extra, f"{where}/additionalProperties")
        more = st.dictionaries(keys, values, min_size=min_extra, max_size=max(min_extra, max_extra))
        return st.tuples(known, more).map(lambda km: {**km[1], **km[0]})


def _bounds(
    schema: Mapping[str, Any],
) -> tuple[tuple[float, bool] | None, tuple[float, bool] | None]:
    """``(low, high)``, each ``(value, exclusive)`` or ``None``, the tighter bound kept."""
    low: tuple[float, bool] | None = None
    high: tuple[float, bool] | None = None
    if "minimum" in schema:
        low = (schema["minimum"], False)
    if "exclusiveMinimum" in schema and (low is None or schema["exclusiveMinimum"] >= low[0]):
        low = (schema["exclusiveMinimum"], True)
    if "maximum" in schema:
        high = (schema["maximum"], False)
    if "exclusiveMaximum" in schema and (high is None or schema["exclusiveMaximum"] <= high[0]):
        high = (schema["exclusiveMaximum"], True)
    return low, high


# --- models and ops ----------------------------------------------------------------------


def schema_of(model: type[BaseModel]) -> JSONObject:
    """The strict JSON schema of ``model``, exactly as a structured-output request sends it."""
    from openai.lib import type_to_response_format_param

    param = type_to_response_format_param(model)
    if isinstance(param, dict) and param["type"] == "json_schema":
        schema = validate_json(param["json_schema"].get("schema"))
        if isinstance(schema, dict):
            return schema
    raise TypeError(f"the SDK built no JSON schema for {model!r}: {param!r:.200}")


def _response_schema(op: Op[Any]) -> Mapping[str, Any] | None:
    """The JSON schema the op's answer format asks for, or ``None`` for free text.

    The format is ``response_format`` for chat completions, ``text.format`` for the
    Responses API and ``output_config.format`` for Anthropic's Messages.
    """
    body = op.body
    fmt: object
    if op.endpoint == RESPONSES:
        text = body.get("text")
        fmt = text.get("format") if isinstance(text, dict) else None
        if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
            schema = fmt.get("schema")
            return cast(Mapping[str, Any], schema) if isinstance(schema, dict) else None
    elif op.endpoint == MESSAGES:
        model = _output_format_of(op)
        if model is not None:
            # The SDK's conversion moves what Anthropic's structured outputs do not
            # enforce (bounds, lengths) from the schema into its description, but the
            # decoder validates them: draw from the model's own schema, which has them.
            return schema_of(model)
        config = body.get("output_config")
        fmt = config.get("format") if isinstance(config, dict) else None
        if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
            schema = fmt.get("schema")
            return cast(Mapping[str, Any], schema) if isinstance(schema, dict) else None
        return None
    else:
        fmt = body.get("response_format")
    if not isinstance(fmt, dict):
        return None
    if fmt.get("type") == "json_object":
        return {"type": "object"}
    spec = fmt.get("json_schema")
    if (
        fmt.get("type") == "json_schema"
        and isinstance(spec, dict)
        and isinstance(spec.get("schema"), dict)
    ):
        return cast(Mapping[str, Any], spec["schema"])
    return None


def _output_format_of(op: Op[Any]) -> type[BaseModel] | None:
    """The ``output_format`` model of an op built by :func:`inert.anthropic.message`."""
    from inert import anthropic

    for model, decoder in anthropic._DECODERS.items():  # inert's own registry of decoders
        if decoder is op.decode:
            return model
    return None


def _content_text(value: object) -> str:
    if isinstance(value, str):
        return value
    dump = getattr(value, "model_dump_json", None)
    if callable(dump):
        return cast(str, dump())
    return json.dumps(value, ensure_ascii=False, allow_nan=False)


def chat_completion(
    content: BaseModel | JSON,
    *,
    model: str = _TEST_MODEL,
    finish_reason: str = "stop",
    refusal: str | None = None,
    prompt_tokens: int = 10,
    completion_tokens: int = 10,
    id: str = "chatcmpl-test",
    created: int = 1_700_000_000,
) -> JSONObject:
    """The raw body of a chat completion whose first choice says ``content``.

    ``content`` is a pydantic model instance (sent as its JSON), a string (sent as
    it is), ``None`` (no content, as with a refusal) or any other JSON value (sent
    as JSON text). Use it in answer tables: ``{op: chat_completion(Synonyms(...))}``.
    """
    text = None if content is None else _content_text(content)
    return {
        "id": id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text, "refusal": refusal},
                "logprobs": None,
                "finish_reason": finish_reason,
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


def openai_response(
    content: BaseModel | JSON,
    *,
    model: str = _TEST_MODEL,
    status: Literal["completed", "incomplete"] = "completed",
    incomplete_reason: Literal["max_output_tokens", "content_filter"] = "max_output_tokens",
    refusal: str | None = None,
    input_tokens: int = 10,
    output_tokens: int = 10,
    id: str = "resp_test",
    created: int = 1_700_000_000,
) -> JSONObject:
    """The raw body of a Responses API answer (``POST /v1/responses``) saying ``content``.

    One assistant message with one ``output_text`` part (``content`` as for
    :func:`chat_completion`; ``None`` leaves the message without parts), or a
    ``refusal`` part when ``refusal`` is given. ``status="incomplete"`` is an answer
    cut off, for the ``incomplete_reason`` given. The shape is the openai SDK's
    ``Response`` (openai/openai-openapi), as the emulator sends it.
    """
    text = None if content is None else _content_text(content)
    parts: list[JSON] = []
    if refusal is not None:
        parts.append({"type": "refusal", "refusal": refusal})
    elif text is not None:
        parts.append({"type": "output_text", "text": text, "annotations": [], "logprobs": []})
    return {
        "id": id,
        "object": "response",
        "created_at": created,
        "status": status,
        "completed_at": created if status == "completed" else None,
        "error": None,
        "incomplete_details": {"reason": incomplete_reason} if status == "incomplete" else None,
        "instructions": None,
        "model": model,
        "output": [
            {
                "id": f"msg_{id}",
                "type": "message",
                "role": "assistant",
                "status": status,
                "content": parts,
            }
        ],
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
        "usage": {
            "input_tokens": input_tokens,
            "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
            "output_tokens": output_tokens,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": input_tokens + output_tokens,
        },
        "metadata": {},
    }


def anthropic_message(
    content: BaseModel | JSON,
    *,
    model: str = _TEST_CLAUDE,
    stop_reason: StopReason = "end_turn",
    input_tokens: int = 10,
    output_tokens: int = 10,
    id: str = "msg_test",
) -> JSONObject:
    """The raw body of an Anthropic Messages answer (``POST /v1/messages``) saying ``content``.

    One ``text`` block (``content`` as for :func:`chat_completion`; ``None`` leaves
    ``content`` empty). ``stop_reason="refusal"`` is a refusal and ``"max_tokens"``
    an answer cut off, as Anthropic reports them. The shape is the anthropic SDK's
    ``Message``, as the emulator sends it.
    """
    text = None if content is None else _content_text(content)
    blocks: list[JSON] = [] if text is None else [{"type": "text", "text": text}]
    return {
        "id": id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": blocks,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens},
    }


def answer_for(op: Op[Any] | Request[Any], content: BaseModel | JSON) -> JSONObject:
    """The raw, successful answer that ``op``'s API sends saying ``content``.

    A chat completion, a Responses ``Response`` or an Anthropic ``Message``, by the
    op's endpoint (with the op's model): what a respond function of a
    :class:`~inert.testing.FakeRunner` returns, whichever provider the op calls.

    Raises:
        ValueError: the op's endpoint answers no text (embeddings, a hand-made one).
    """
    source = _source(op)
    assert isinstance(source, Op)
    endpoint = source.endpoint
    if endpoint == RESPONSES:
        return openai_response(content, model=source.model or _TEST_MODEL)
    if endpoint == MESSAGES:
        return anthropic_message(content, model=source.model or _TEST_CLAUDE)
    if endpoint == CHAT_COMPLETIONS:
        return chat_completion(content, model=source.model or _TEST_MODEL)
    raise ValueError(
        f"no text answer for {endpoint} ({source!r}); {_ANSWERED_WORDS} are answered "
        "with text: answer other ops with a raw body"
    )


def _envelopes(
    model: str,
    contents: Strategy[str | None],
    *,
    finish_reason: str = "stop",
    refusal: Strategy[str | None] | None = None,
    endpoint: str = CHAT_COMPLETIONS,
) -> Strategy[JSONObject]:
    """Answers of ``endpoint``'s shape; ``finish_reason`` in chat terms (``"length"``:
    cut off, ``"content_filter"``: withheld), ``refusal``: the refusal's words."""
    if endpoint == RESPONSES:
        return st.builds(
            lambda content, refused, ident, created, prompt, out: openai_response(
                content,
                model=model,
                status="completed" if finish_reason == "stop" else "incomplete",
                incomplete_reason=(
                    "content_filter" if finish_reason == "content_filter" else "max_output_tokens"
                ),
                refusal=refused,
                id=f"resp_{ident}",
                created=created,
                input_tokens=prompt,
                output_tokens=out,
            ),
            contents,
            st.none() if refusal is None else refusal,
            st.text("0123456789abcdef", min_size=8, max_size=8),
            st.integers(1_600_000_000, 1_900_000_000),
            st.integers(1, 4000),
            st.integers(1, 4000),
        )
    if endpoint == MESSAGES:
        return st.builds(
            lambda content, refused, ident, prompt, out: anthropic_message(
                refused if refused is not None else content,
                model=model,
                stop_reason=(
                    "refusal"
                    if refused is not None
                    else "max_tokens"
                    if finish_reason == "length"
                    else "end_turn"
                ),
                id=f"msg_{ident}",
                input_tokens=prompt,
                output_tokens=out,
            ),
            contents,
            st.none() if refusal is None else refusal,
            st.text("0123456789abcdef", min_size=24, max_size=24),
            st.integers(1, 4000),
            st.integers(1, 4000),
        )
    return st.builds(
        lambda content, refused, ident, created, prompt, out: chat_completion(
            content,
            model=model,
            finish_reason=finish_reason,
            refusal=refused,
            id=f"chatcmpl-{ident}",
            created=created,
            prompt_tokens=prompt,
            completion_tokens=out,
        ),
        contents,
        st.none() if refusal is None else refusal,
        st.text("0123456789abcdef", min_size=8, max_size=8),
        st.integers(1_600_000_000, 1_900_000_000),
        st.integers(1, 4000),
        st.integers(1, 4000),
    )


def _embeddings(op: Op[Any]) -> Strategy[JSONObject]:
    inputs = op.body.get("input")
    count = len(inputs) if isinstance(inputs, list) else 1
    dims = op.body.get("dimensions")
    size = dims if isinstance(dims, int) and dims > 0 else 8
    vector = st.lists(st.floats(-1.0, 1.0, width=32), min_size=size, max_size=size)
    return st.builds(
        lambda vectors, prompt: {
            "object": "list",
            "data": [
                {"object": "embedding", "index": i, "embedding": cast(JSON, v)}
                for i, v in enumerate(vectors)
            ],
            "model": op.model or _TEST_MODEL,
            "usage": {"prompt_tokens": prompt, "total_tokens": prompt},
        },
        st.lists(vector, min_size=count, max_size=count),
        st.integers(1, 4000),
    )


def _source(source: Op[Any] | Request[Any] | type[BaseModel]) -> Op[Any] | type[BaseModel]:
    if isinstance(source, Request):
        from inert.testing._fake import op_of

        return op_of(source)
    return source


def _contents(
    source: Op[Any] | Request[Any] | type[BaseModel], values: Strategy[BaseModel | JSON] | None
) -> tuple[str, Strategy[str]]:
    """The model name and a strategy of valid ``message.content`` texts for ``source``."""
    source = _source(source)
    if values is not None:
        model = source.model if isinstance(source, Op) else None
        default = (
            _TEST_CLAUDE if isinstance(source, Op) and source.endpoint == MESSAGES else _TEST_MODEL
        )
        return model or default, values.map(_content_text)
    if isinstance(source, Op):
        if source.endpoint not in _ANSWERED:
            raise ValueError(
                f"no response strategy for {source.endpoint} ({source!r}); "
                f"{_ANSWERED_WORDS} and embeddings are supported: answer other ops with "
                "a table or a function"
            )
        model = source.model or (_TEST_CLAUDE if source.endpoint == MESSAGES else _TEST_MODEL)
        schema = _response_schema(source)
        if schema is None:
            return model, st.text()
        return model, json_for_schema(schema).map(_content_text)
    return _TEST_MODEL, json_for_schema(schema_of(source)).map(_content_text)


_ANSWERED: Final = (CHAT_COMPLETIONS, RESPONSES, MESSAGES)
"""The endpoints whose answers carry text (or structured output) these strategies draw."""
_ANSWERED_WORDS: Final = "chat completions, Responses and Anthropic Messages"


def responses_for(
    source: Op[Any] | Request[Any] | type[BaseModel],
    *,
    values: Strategy[BaseModel | JSON] | None = None,
) -> Strategy[JSONObject]:
    """Raw, successful response bodies for an op (or for a response model).

    For a chat completion the envelope is complete (``id``, ``object``, ``created``,
    ``model``, ``choices[0].message`` with ``content`` and ``refusal: null``,
    ``finish_reason: "stop"``, ``usage``); its content is the JSON text of a value
    valid for the op's ``response_format`` schema, or free text when it has none.
    A Responses op gets a ``Response`` (:func:`openai_response`, its text valid for
    ``text.format``), an Anthropic Messages op a ``Message``
    (:func:`anthropic_message`, valid for ``output_config.format``); a model class
    gets chat completions. For an embeddings op it is one vector per input.

    Args:
        source: an op or a single-call request (its body decides the schema), or a
            pydantic model class.
        values: the contents to send instead (model instances or JSON values), for
            models whose validators a schema cannot express.
    """
    source = _source(source)
    if isinstance(source, Op) and source.endpoint == EMBEDDINGS and values is None:
        return _embeddings(source)
    model, contents = _contents(source, values)
    endpoint = source.endpoint if isinstance(source, Op) else CHAT_COMPLETIONS
    return _envelopes(model, contents, endpoint=endpoint)


@overload
def values_for(source: type[M]) -> Strategy[M]: ...
@overload
def values_for(source: Op[T]) -> Strategy[T]: ...
@overload
def values_for(source: Request[T]) -> Strategy[T]: ...
def values_for(source: type[BaseModel] | Op[Any] | Request[Any]) -> Strategy[Any]:
    """Decoded values: instances of a response model, or what an op decodes to.

    For a model class the values are valid JSON for its strict schema, parsed the
    way a structured-output decoder parses them (``model_validate_json``). For an
    op (or a single-call request such as ``structured(...)`` returns), they are
    :func:`responses_for` the op passed through the op's own decoder.
    """
    source = _source(source)
    if isinstance(source, Op):
        return responses_for(source).map(source.decode)
    model = source
    return json_for_schema(schema_of(model)).map(
        lambda v: model.model_validate_json(json.dumps(v, allow_nan=False))
    )


# --- failures ----------------------------------------------------------------------------


def failures() -> Strategy[RequestError]:
    """Errors a runner can report for one op: API errors, rate limits, lost connections,
    expired or cancelled batch lines, refusals, truncation, filtered or invalid output."""
    messages = st.sampled_from(["injected failure", "the fake said no", "boom"])
    return st.one_of(
        st.builds(
            lambda m, status: ApiError(
                m, status=status, code="server_error" if status >= 500 else "invalid_request"
            ),
            messages,
            st.sampled_from([400, 404, 500, 502, 503]),
        ),
        st.builds(lambda m: RateLimitError(m, status=429, code="rate_limit_exceeded"), messages),
        st.builds(ConnectionFailedError, messages),
        st.builds(ExpiredError, messages),
        st.builds(CancelledRequestError, messages),
        st.builds(lambda m: RefusalError(m, refusal="I can't help with that."), messages),
        st.builds(TruncatedError, messages),
        st.builds(ContentFilterError, messages),
        st.builds(InvalidOutputError, messages),
    )


FailureKind = Literal["refusal", "truncation", "content_filter", "invalid_output"]
"""A kind of bad answer that an op's decoder turns into a typed error."""

FAILURE_KINDS: Final[tuple[FailureKind, ...]] = (
    "refusal",
    "truncation",
    "content_filter",
    "invalid_output",
)
SUPPORTED_ENDPOINTS: Final = frozenset({*_ANSWERED, EMBEDDINGS})


def failure_kinds_for(source: Op[Any] | Request[Any] | type[BaseModel]) -> tuple[FailureKind, ...]:
    """The failure kinds that make sense for ``source``: all four for structured
    outputs, no ``invalid_output`` for free text, none for other endpoints.

    Anthropic's Messages have no ``content_filter`` (their bad answers are
    ``stop_reason`` ``"refusal"`` and ``"max_tokens"``).
    """
    source = _source(source)
    if not isinstance(source, Op):
        return FAILURE_KINDS
    if source.endpoint not in _ANSWERED:
        return ()
    kinds: tuple[FailureKind, ...] = FAILURE_KINDS
    if source.endpoint == MESSAGES:
        kinds = tuple(k for k in kinds if k != "content_filter")
    if _response_schema(source) is None:
        kinds = tuple(k for k in kinds if k != "invalid_output")
    return kinds


def failure_responses_for(
    source: Op[Any] | Request[Any] | type[BaseModel], *, kinds: Sequence[FailureKind] | None = None
) -> Strategy[JSONObject]:
    """Raw answers that a structured-output decoder must turn into a typed error.

    For a chat completion: ``refusal``: ``message.refusal`` is set and ``content``
    is null (RefusalError); ``truncation``: ``finish_reason == "length"`` with the
    JSON cut short (TruncatedError); ``content_filter``: ``finish_reason ==
    "content_filter"`` (ContentFilterError); ``invalid_output``: content that is not
    valid for the schema (InvalidOutputError). A Responses op gets the same in its
    shape (a ``refusal`` part; ``status: "incomplete"`` with the reason
    ``max_output_tokens`` or ``content_filter``), an Anthropic op ``stop_reason``
    ``"refusal"`` and ``"max_tokens"``. ``kinds`` defaults to :func:`failure_kinds_for`.
    """
    source = _source(source)
    applicable = failure_kinds_for(source)
    if kinds is None:
        kinds = applicable
    unknown = set(kinds) - set(applicable)
    if unknown or not kinds:
        raise ValueError(
            f"kinds must be some of {FAILURE_KINDS} that apply to {source!r}; got {list(kinds)}"
        )
    model, contents = _contents(source, None)
    endpoint = source.endpoint if isinstance(source, Op) else CHAT_COMPLETIONS
    options: list[Strategy[JSONObject]] = []
    if "refusal" in kinds:
        options.append(
            _envelopes(
                model,
                st.none(),
                refusal=st.sampled_from(["I'm sorry, but I can't help with that."]),
                endpoint=endpoint,
            )
        )
    if "truncation" in kinds:
        cut = st.tuples(contents, st.floats(0.0, 0.9)).map(
            lambda tc: tc[0][: int(len(tc[0]) * tc[1])]
        )
        options.append(_envelopes(model, cut, finish_reason="length", endpoint=endpoint))
    if "content_filter" in kinds:
        options.append(
            _envelopes(model, st.none(), finish_reason="content_filter", endpoint=endpoint)
        )
    if "invalid_output" in kinds:
        invalid = st.sampled_from(["", "not json", '{"unterminated": ', "[]", '"a string"', "null"])
        options.append(_envelopes(model, invalid, endpoint=endpoint))
    return st.one_of(options)
