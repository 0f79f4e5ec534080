"""Ops: canonical keys that are stable everywhere, and bodies refused unless plain JSON."""

from __future__ import annotations

import hashlib
import json
import math
import subprocess
import sys
from typing import Any

import pytest
from hypothesis import given
from tests.strategies import bodies

from inert import Op
from inert._json import JSON


def identity(raw: JSON) -> JSON:
    return raw


@given(body=bodies)
def test_key_is_the_sha256_of_canonical_endpoint_and_body(body: dict[str, JSON]) -> None:
    """The key is sha256 over sorted-key, compact JSON of ``[endpoint, body]``."""
    text = json.dumps(["/v1/x", body], sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    expected = hashlib.sha256(text.encode()).hexdigest()
    assert expected == Op(endpoint="/v1/x", body=body, decode=identity).key


@given(body=bodies)
def test_key_ignores_key_order_and_the_decoder(body: dict[str, JSON]) -> None:
    """Reordered bodies and different decoders are the same call."""
    reordered = dict(reversed(list(body.items())))
    a = Op(endpoint="/v1/x", body=body, decode=identity)
    b = Op(endpoint="/v1/x", body=reordered, decode=lambda raw: str(raw))
    assert a.key == b.key


def test_key_is_stable_across_processes() -> None:
    """A fresh interpreter with another hash seed computes the same key."""
    body = {"model": "m", "messages": [{"role": "user", "content": "héllo"}], "n": 1.5}
    code = (
        "from inert import Op; import sys, json; "
        "print(Op(endpoint='/v1/chat/completions', body=json.loads(sys.argv[1]), decode=str).key)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, json.dumps(body)],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONHASHSEED": "12345", "PATH": ""},
    )
    assert Op(endpoint="/v1/chat/completions", body=body, decode=str).key == out.stdout.strip()


def test_different_endpoints_are_different_calls() -> None:
    """The endpoint is part of the key."""
    a = Op(endpoint="/v1/a", body={}, decode=identity)
    b = Op(endpoint="/v1/b", body={}, decode=identity)
    assert a.key != b.key


@pytest.mark.parametrize(
    ("body", "error", "where"),
    [
        ({1: "x"}, TypeError, "body has the key 1"),
        ({"a": {"b": [1, {2: 3}]}}, TypeError, "body['a']['b'][1] has the key 2"),
        ({"t": math.nan}, ValueError, "body['t'] is nan"),
        ({"t": [math.inf]}, ValueError, "body['t'][0] is inf"),
        ({"s": {1, 2}}, TypeError, "body['s'] is a set"),
        ({"b": b"raw"}, TypeError, "body['b'] is a bytes"),
        ({"o": object()}, TypeError, "body['o'] is a object"),
    ],
)
def test_non_json_bodies_are_refused_with_the_path(
    body: Any, error: type[Exception], where: str
) -> None:
    """Bodies that json.dumps would silently rewrite, or that are not JSON, are refused."""
    with pytest.raises(error) as caught:
        Op(endpoint="/v1/x", body=body, decode=identity)
    assert where in str(caught.value)


def test_tuples_become_lists() -> None:
    """A tuple in a body is the JSON array it would be sent as."""
    assert Op(endpoint="/v1/x", body={"t": (1, (2,))}, decode=identity).body == {"t": [1, [2]]}


@pytest.mark.parametrize("endpoint", ["v1/x", "", "https://api.openai.com/v1/x"])
def test_endpoint_must_be_a_path(endpoint: str) -> None:
    """An endpoint is an API path such as /v1/chat/completions."""
    with pytest.raises(ValueError, match="API path"):
        Op(endpoint=endpoint, body={}, decode=identity)


def test_body_must_be_an_object() -> None:
    """A body that is not a mapping is refused."""
    with pytest.raises(TypeError, match="JSON object"):
        Op(endpoint="/v1/x", body=[1, 2], decode=identity)  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]  # the mistake under test
