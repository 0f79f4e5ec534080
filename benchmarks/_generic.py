"""The generic shapes of ``engine_overhead``: calls, their floor and their loop, light to import.

Kept apart from the lexicon shape (which loads the SDK and pydantic models), so that
one side of one shape can run alone in a fresh interpreter under an instruction
counter: ``python benchmarks/_generic.py SIDE SHAPE N`` runs ``SIDE`` (``inert``
or ``floor``) of ``SHAPE`` (``wide`` or ``deep``) once for ``N`` ops, after a run
of 10 ops that warms the same code. ``engine_overhead --instructions`` runs it
under callgrind at two sizes and divides the difference by the difference of ops,
which leaves out the interpreter's start and every one-off cost.
"""

from __future__ import annotations

import asyncio
import gc
import hashlib
import json
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

from inert import Op, Request, RequestError, call, gather_all, traverse
from inert._json import JSON, JSONObject
from inert.testing import FakeRunner

ENDPOINT: Final = "/v1/chat/completions"


def generic_body(i: int) -> JSONObject:
    """The body of the ``i``-th generic call."""
    return {"model": "bench", "messages": [{"role": "user", "content": "next"}], "i": i}


def generic_answer(body: Mapping[str, Any]) -> JSONObject:
    """The generic API: it answers call ``i`` with ``i + 1``."""
    return {"value": body["i"] + 1}


def decode_int(raw: JSON) -> int:
    """Decode a generic answer."""
    if not isinstance(raw, dict):
        raise RequestError(f"expected an object, got {raw!r:.40}")
    value = raw["value"]
    if not isinstance(value, int):
        raise RequestError(f"expected an integer value, got {value!r:.40}")
    return value


def generic_respond(op: Op[Any]) -> JSON:
    """``generic_answer`` for an op."""
    return generic_answer(op.body)


def generic_call(i: int) -> Request[int]:
    """The request of the ``i``-th generic call."""
    return call(Op(endpoint=ENDPOINT, body=generic_body(i), decode=decode_int))


def wide_requests(n: int) -> list[Request[list[int]]]:
    """One request: a traverse of ``n`` distinct calls."""
    return [traverse(range(n), generic_call)]


def wide_list_requests(n: int) -> list[Request[list[int]]]:
    """One request: ``n`` distinct calls built into a list first, then gathered."""
    calls = [generic_call(i) for i in range(n)]
    return [gather_all(calls)]


def wide_baseline(n: int) -> list[list[int]]:
    """The same calls made in a loop."""
    return [[decode_int(generic_answer(generic_body(i))) for i in range(n)]]


def _floor_encoder() -> Callable[[object, int], Sequence[str]]:
    """The standard library's C JSON encoder with the canonical options, built once."""
    make: Any = getattr(json.encoder, "c_make_encoder", None)
    text: Any = getattr(json.encoder, "c_encode_basestring", None)
    if make is None or text is None:  # pragma: no cover - CPython has the accelerator
        slow = json.JSONEncoder(
            sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        )
        return lambda value, _level: [slow.encode(value)]
    encoder: Callable[[object, int], Sequence[str]] = make(
        None, None, text, None, ":", ",", True, False, False
    )
    return encoder


_FLOOR_ENCODE: Final = _floor_encoder()


def floor_key(body: JSONObject) -> str:
    """sha256 of the canonical JSON of ``[endpoint, body]``: the key every op needs."""
    text = "".join(_FLOOR_ENCODE([ENDPOINT, body], 0))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def wide_floor(n: int) -> list[list[int]]:
    """The least work of the wide shape: body, key, one dict lookup, answer, decode."""
    answers: dict[str, JSONObject] = {}
    values: list[int] = []
    for i in range(n):
        body = generic_body(i)
        key = floor_key(body)
        raw = answers.get(key)
        if raw is None:
            raw = answers[key] = generic_answer(body)
        values.append(decode_int(raw))
    return [values]


def deep_floor(n: int) -> list[int]:
    """The least work of the deep shape: each call's body from the previous answer."""
    answers: dict[str, JSONObject] = {}
    value = 0
    for _ in range(n):
        body = generic_body(value)
        key = floor_key(body)
        raw = answers.get(key)
        if raw is None:
            raw = answers[key] = generic_answer(body)
        value = decode_int(raw)
    return [value]


def deep_requests(n: int) -> list[Request[int]]:
    """One request: ``n`` calls in a chain, each built from the previous answer."""
    chain = generic_call(0)
    for _ in range(n - 1):
        chain = chain.then(generic_call)
    return [chain]


def deep_baseline(n: int) -> list[int]:
    """The same chain as a loop."""
    value = 0
    for _ in range(n):
        value = decode_int(generic_answer(generic_body(value)))
    return [value]


def run_side(side: str, shape: str, n: int, loop: asyncio.Runner) -> list[Any]:
    """One run of ``side`` (``inert`` or ``floor``) of ``shape`` (``wide`` or ``deep``)."""
    if side == "floor":
        return wide_floor(n) if shape == "wide" else deep_floor(n)
    requests = wide_requests(n) if shape == "wide" else deep_requests(n)
    return loop.run(FakeRunner(generic_respond).run_all(requests))


def main(argv: Sequence[str]) -> int:
    """``SIDE SHAPE N``: warm up with 10 ops, then run once for ``N`` ops."""
    side, shape, n = argv[0], argv[1], int(argv[2])
    if side not in ("inert", "floor") or shape not in ("wide", "deep"):
        raise SystemExit("usage: _generic.py inert|floor wide|deep N")
    with asyncio.Runner() as loop:
        run_side(side, shape, 10, loop)
        gc.collect()
        run_side(side, shape, n, loop)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
