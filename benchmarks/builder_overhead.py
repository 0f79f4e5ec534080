"""Builder overhead: ``structured(...)`` build + key vs building the same body dict and its key.

Run: ``.venv/bin/python benchmarks/builder_overhead.py [--requests N] [--repeats R]``.

The floor is the least work of any code that sends what
``client.chat.completions.parse`` sends and keys it for dedup: build the body
dict (model, ``stream: false``, one user message, the strict ``response_format``
made once per model class) and the sha256 of its canonical JSON (the standard
library's C encoder called directly). inert's side is ``structured(...)`` and the
op's key: the body is checked against the SDK's types, every part of it as plain
JSON, and keyed. Both sides build byte-identical bodies (checked). CPU time of
this process, interleaved samples, median reported.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final

import pydantic

if __package__ in (None, ""):  # run as a script: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._generic import ENDPOINT, _floor_encoder

from inert._json import JSON
from inert.openai import _response_format, structured
from inert.testing import op_of

GOAL: Final = 1.5
"""``structured`` build + key, at most this many times the floor."""
MODEL: Final = "gpt-4o-mini"

_ENCODE: Final = _floor_encoder()


class Item(pydantic.BaseModel):
    """One item of the answer."""

    name: str
    tags: list[str]
    score: float


class Answer(pydantic.BaseModel):
    """A structured answer of a realistic shape: a title and a list of items."""

    title: str
    items: list[Item]


def prompt(i: int) -> str:
    """The ``i``-th prompt."""
    return f"List the items of topic number {i}, with a title."


def floor(n: int) -> list[str]:
    """Build each body dict and its key by hand."""
    schema = _response_format(Answer)  # made once per class, as any careful code does
    keys: list[str] = []
    for i in range(n):
        body: dict[str, JSON] = {
            "model": MODEL,
            "stream": False,
            "messages": [{"role": "user", "content": prompt(i)}],
            "response_format": schema,
        }
        text = "".join(_ENCODE([ENDPOINT, body], 0))
        keys.append(hashlib.sha256(text.encode("utf-8")).hexdigest())
    return keys


def inert(n: int) -> list[str]:
    """Build each request with ``structured`` and read its op's key."""
    keys: list[str] = []
    for i in range(n):
        request = structured(
            model=MODEL, messages=[{"role": "user", "content": prompt(i)}], response_format=Answer
        )
        keys.append(op_of(request).key)
    return keys


def _timed(side: Callable[[int], list[str]], n: int) -> tuple[float, list[str]]:
    gc.collect()
    started = time.process_time()
    keys = side(n)
    return time.process_time() - started, keys


def run(*, requests: int = 20_000, repeats: int = 5) -> dict[str, Any]:
    """Median times of both sides, interleaved; the result is plain JSON."""
    inert(10)  # warm the caches both sides rely on (the schema, pydantic's adapters)
    times: dict[str, list[float]] = {"floor": [], "inert": []}
    sides: list[tuple[str, Callable[[int], list[str]]]] = [("floor", floor), ("inert", inert)]
    keys: dict[str, list[str]] = {}
    for rep in range(repeats):
        for name, side in sides if rep % 2 == 0 else reversed(sides):
            seconds, keys[name] = _timed(side, requests)
            times[name].append(seconds)
    if keys["floor"] != keys["inert"]:
        raise AssertionError("structured() and the floor built different bodies")
    floor_s = statistics.median(times["floor"])
    inert_s = statistics.median(times["inert"])
    return {
        "name": "builder_overhead",
        "requests": requests,
        "repeats": repeats,
        "floor_us_per_request": 1e6 * floor_s / requests,
        "inert_us_per_request": 1e6 * inert_s / requests,
        "ratio": inert_s / floor_s,
        "goal": GOAL,
    }


def render_text(result: dict[str, Any]) -> str:
    """The result as one line."""
    met = "meets" if result["ratio"] <= GOAL else "misses"
    return (
        f"structured() build + key: {result['inert_us_per_request']:.2f} µs/request, floor "
        f"(body dict + key) {result['floor_us_per_request']:.2f} µs/request, ratio "
        f"{result['ratio']:.2f}x ({met} the {GOAL}x goal; {result['requests']:,} requests, "
        f"median of {result['repeats']})"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: print the line and the result as one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    result = run(requests=args.requests, repeats=args.repeats)
    print(render_text(result))
    print("RESULT " + json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
