"""Helpers for the batch tests: small pydantic answers, request builders, a 3-level pipeline."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import pydantic

from inert import Request, gather_all, program
from inert.openai import structured

MODEL = "gpt-4o-mini"


class Words(pydantic.BaseModel):
    """A small structured answer, like the workload's synonyms."""

    words: list[str]


def ask(prompt: str, *, model: str = MODEL) -> Request[Words]:
    """One structured request with a single user message."""
    return structured(
        model=model, messages=[{"role": "user", "content": prompt}], response_format=Words
    )


@program
def pipeline(word: str) -> Generator[Request[object], Any, list[list[str]]]:
    """Three dependent levels: clusters, one definition per cluster, synonyms per definition."""
    clusters = yield from ask(f"cluster the senses of {word}")
    definitions = yield from gather_all([ask(f"define {word} as {c}") for c in clusters.words[:2]])
    synonyms = yield from gather_all(
        [ask(f"synonyms of {word}: {' '.join(d.words)}") for d in definitions]
    )
    return [s.words for s in synonyms]


def bad_request() -> Request[Words]:
    """A request the API refuses with a 400 (an empty message list), built by hand."""
    from inert import Op, call
    from inert.openai import CHAT_COMPLETIONS

    def decode(raw: object) -> Words:
        raise AssertionError(f"a refused request was decoded: {raw!r}")

    return call(Op(endpoint=CHAT_COMPLETIONS, body={"model": MODEL, "messages": []}, decode=decode))


def crash_requests() -> list[Request[Words]]:
    """The requests of the crash tests (the child process and the test build the same ones)."""
    return [ask(f"crash {i}") for i in range(6)]
