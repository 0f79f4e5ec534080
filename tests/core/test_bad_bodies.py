"""Bodies no API can take are refused when the op is built, naming the bad value's place.

The fast check (C encoder, UTF-8, a parse back) and the slow walk must agree on
every value; these properties pin that, and the four kinds of bodies that used
to fail only in the middle of a run: lone surrogates, cycles, deep nesting and
integers wider than 64 bits.
"""

from __future__ import annotations

import enum
import json
from typing import Any

import pydantic
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from inert import Op
from inert._json import (
    INT_MAX,
    INT_MIN,
    JSON,
    MAX_DEPTH,
    canonical_dumps,
    validate_json,
    validate_slowly,
)
from inert.openai import chat, embedding, structured
from inert.testing import op_of

ENDPOINT = "/v1/chat/completions"

plain_values: st.SearchStrategy[JSON] = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(INT_MIN, INT_MAX)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=20,
)
# Values that are not all plain JSON: tuples, non-string keys, NaN, bytes, wide ints,
# lone surrogates; the fast check and the slow walk must agree on each.
odd_leaves = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text()
    | st.text(st.characters(categories=["Cs"]), min_size=1, max_size=2)
    | st.binary(max_size=2)
)
odd_values: st.SearchStrategy[Any] = st.recursive(
    odd_leaves,
    lambda children: (
        st.lists(children, max_size=3)
        | st.lists(children, max_size=3).map(tuple)
        | st.dictionaries(st.text(max_size=4) | st.integers(-3, 3), children, max_size=3)
    ),
    max_leaves=12,
)
paths = st.lists(st.sampled_from(["a", "b", 0]), min_size=0, max_size=6)


class Answer(pydantic.BaseModel):
    """A structured answer."""

    text: str


def identity(raw: JSON) -> JSON:
    return raw


def build(body: Any) -> Op[JSON]:
    return Op(endpoint=ENDPOINT, body=body, decode=identity)


def placed(path: list[str | int], leaf: object) -> tuple[dict[str, Any], str]:
    """A body holding ``leaf`` at ``path`` (ints make lists), and how messages name the place."""
    value: Any = leaf
    for part in reversed(path):
        value = [value] if isinstance(part, int) else {part: value}
    where = "body['x']" + "".join(f"[{p!r}]" for p in path)
    return {"x": value}, where


def outcome(check: Any, value: object) -> tuple[str, Any]:
    try:
        return "ok", check(value)
    except (TypeError, ValueError) as error:
        return type(error).__name__, str(error)


def test_no_property_here_is_timed() -> None:
    """The suite's Hypothesis profile sets no deadline: a slow example on a busy machine is no bug.

    (These walks of deep or wide bodies once failed at random on Hypothesis's 200 ms deadline.)
    """
    assert settings().deadline is None
    assert settings.default is not None
    assert settings.default.deadline is None


@given(value=odd_values)
def test_the_fast_check_and_the_slow_walk_agree_on_every_value(value: object) -> None:
    """Both return the same plain value, or both refuse it with the same message."""
    assert outcome(validate_slowly, value) == outcome(validate_json, value)


@given(body=st.dictionaries(st.text(max_size=6), plain_values, max_size=4))
def test_a_plain_body_is_kept_as_an_equal_copy(body: dict[str, JSON]) -> None:
    """The op's body equals the input but is not it, so changing the input changes nothing."""
    op = build(body)
    assert body == op.body
    body["added later"] = 1
    assert "added later" not in op.body
    assert canonical_dumps(op.body) == op.canonical_body()


def exact_types(value: object) -> bool:
    """True if ``value`` is made of exact dicts, lists, str, int, float, bool and None."""
    if type(value) is dict:
        return all(type(k) is str and exact_types(v) for k, v in value.items())
    if type(value) is list:
        return all(exact_types(v) for v in value)
    return value is None or type(value) in (str, int, float, bool)


@given(value=odd_values)
def test_an_op_keeps_what_the_slow_walk_returns_or_refuses_alike(value: object) -> None:
    """Building an op gives the slow walk's plain copy (exact types, a new container at
    every level), or the same refusal, whichever path the op's check took."""
    body = {"x": value}
    expected = outcome(validate_slowly, body)
    actual = outcome(lambda b: build(b).body, body)
    assert expected == actual
    if actual[0] == "ok":
        assert exact_types(actual[1])
        assert actual[1] is not body
        if isinstance(value, list | dict):
            assert actual[1]["x"] is not value


class Role(enum.StrEnum):
    """A str subclass, as bodies built from enums hold."""

    USER = "user"


class Level(enum.IntEnum):
    """An int subclass."""

    HIGH = 3


def test_subclasses_of_json_types_are_kept_as_the_plain_types() -> None:
    """Enum members and other subclasses, as values or keys, become plain str and int."""
    body: dict[str, Any] = {
        "messages": [{"role": Role.USER, "content": "hi"}],
        "n": Level.HIGH,
        "meta": {Role.USER: 1},
    }
    op = build(body)
    assert op.body == {"messages": [{"role": "user", "content": "hi"}], "n": 3, "meta": {"user": 1}}
    assert exact_types(op.body)
    assert op.key == build(json.loads(canonical_dumps(op.body))).key


def test_every_container_of_a_plain_body_is_a_copy() -> None:
    """Changing any nested part of the input afterwards changes nothing in the op."""
    message = {"role": "user", "content": "hi"}
    messages = [message]
    body: dict[str, Any] = {"messages": messages, "tools": [[1, 2], {"a": None}]}
    op = build(body)
    key = op.key
    text = op.canonical_body()
    message["content"] = "changed"
    messages.append({"role": "user", "content": "more"})
    body["tools"][0].append(3)
    body["tools"][1]["b"] = 1.5
    assert text == canonical_dumps(op.body)
    assert key == build(json.loads(text)).key


@given(path=paths, surrogate=st.sampled_from(["\ud800", "x\udfff", "\udbff\udc00\ud800"]))
def test_a_lone_surrogate_in_a_value_is_refused_with_its_place(
    path: list[str | int], surrogate: str
) -> None:
    """A string UTF-8 cannot encode is refused at build, naming where it is."""
    body, where = placed(path, surrogate)
    with pytest.raises(ValueError, match="lone surrogate") as caught:
        build(body)
    assert f"{where} holds" in str(caught.value)


@given(path=paths)
def test_a_lone_surrogate_in_a_key_is_refused_with_its_place(path: list[str | int]) -> None:
    """A key UTF-8 cannot encode is refused too, naming the object that has it."""
    body, where = placed(path, {"fine": 1, "bad\ud834": 2})
    with pytest.raises(ValueError, match="lone surrogate") as caught:
        build(body)
    assert f"{where} has a key with" in str(caught.value)


@given(path=paths, kind=st.sampled_from(["dict", "list"]))
def test_a_body_that_contains_itself_is_refused_at_once(path: list[str | int], kind: str) -> None:
    """A cycle is refused (never a hang), naming the place that refers back."""
    loop: Any = {} if kind == "dict" else []
    body, where = placed(path, loop)
    if kind == "dict":
        loop["again"] = body
        where_back = where + "['again']"
    else:
        loop.append(body)
        where_back = where + "[0]"
    with pytest.raises(ValueError, match="contains itself") as caught:
        build(body)
    assert where_back in str(caught.value)


@given(depth=st.integers(1, MAX_DEPTH + 30), kind=st.sampled_from(["dict", "list"]))
def test_nesting_is_accepted_up_to_the_limit_and_refused_past_it(depth: int, kind: str) -> None:
    """A body nesting ``depth`` levels builds iff ``depth <= MAX_DEPTH``."""
    body: Any = {}
    inner = body
    for _ in range(depth - 1):
        child: Any = {} if kind == "dict" else []
        if isinstance(inner, dict):
            inner["k"] = child
        else:
            inner.append(child)
        inner = child
    if depth <= MAX_DEPTH:
        assert body == build(body).body
    else:
        with pytest.raises(ValueError, match=f"deeper than {MAX_DEPTH}"):
            build(body)


def test_a_body_100000_deep_is_refused_when_built() -> None:
    """Far past the limit is the same clear error, not a RecursionError."""
    body: dict[str, Any] = {}
    inner = body
    for _ in range(100_000):
        inner["a"] = {}
        inner = inner["a"]
    with pytest.raises(ValueError, match=f"deeper than {MAX_DEPTH}") as caught:
        build(body)
    assert "body['a']['a']" in str(caught.value)


@given(
    path=paths,
    number=st.integers(INT_MAX + 1, 10**40) | st.integers(-(10**40), INT_MIN - 1),
)
def test_an_integer_beyond_64_bits_is_refused_with_its_place(
    path: list[str | int], number: int
) -> None:
    """An integer no API parameter can take is refused, naming where it is."""
    body, where = placed(path, number)
    with pytest.raises(ValueError, match="64-bit") as caught:
        build(body)
    assert where in str(caught.value)


@given(number=st.integers(INT_MIN, INT_MAX))
def test_every_64_bit_integer_is_carried_exactly(number: int) -> None:
    """Integers in range are sent as they are, to the last digit."""
    assert {"n": number} == build({"n": number}).body


def test_an_integer_of_5000_digits_is_refused_when_built() -> None:
    """Past Python's own limit for writing integers, the same clear error."""
    with pytest.raises(ValueError, match=r"about 5001 digits.*64-bit"):
        build({"seed": 10**5000})


@pytest.mark.parametrize(
    "make",
    [
        lambda: structured(
            model="m",
            messages=[{"role": "user", "content": "bad \ud800"}],
            response_format=Answer,
        ),
        lambda: chat(model="m", messages=[{"role": "user", "content": "bad \ud800"}]),
        lambda: chat(model="m", messages=[{"role": "user", "content": "x"}], seed=2**64),
        lambda: embedding(model="m", input="bad \ud800"),
    ],
    ids=["structured surrogate", "chat surrogate", "chat seed", "embedding surrogate"],
)
def test_builders_refuse_the_same_bodies_at_build(make: Any) -> None:
    """The builders' trusted path still catches what the op's guard catches."""
    with pytest.raises(ValueError, match=r"lone surrogate|64-bit") as caught:
        make()
    assert "body[" in str(caught.value)


def test_a_tool_schema_with_a_cycle_is_refused_by_the_builder() -> None:
    """A cycle inside a parameter is the op's clear error, not the SDK's RecursionError."""
    schema: dict[str, Any] = {"type": "object"}
    schema["properties"] = {"self": schema}
    tool = {"type": "function", "function": {"name": "f", "parameters": schema}}
    with pytest.raises(ValueError, match="contains itself"):
        chat(model="m", messages=[{"role": "user", "content": "x"}], tools=[tool])


@given(
    content=st.text(max_size=20),
    role=st.sampled_from(["user", "system", "developer", "assistant"]),
    temperature=st.none() | st.floats(0, 2),
)
def test_a_builder_key_equals_the_key_of_the_same_body_built_by_hand(
    content: str, role: str, temperature: float | None
) -> None:
    """The builders' trusted path computes the very key the op's guard computes."""
    params: dict[str, Any] = {} if temperature is None else {"temperature": temperature}
    messages: Any = [{"role": role, "content": content}]
    request = chat(model="m", messages=messages, **params)
    op = op_of(request)
    assert build(op.body).key == op.key
