"""Batch runner user code that mypy --strict and basedpyright must accept, and lines they
must reject (each pinned for both checkers, see core_api.py); never executed.
"""

from __future__ import annotations

from typing import assert_type

import openai
import pydantic
from returns.result import Result

from inert import BatchRunner, ImmediateRunner, Request, RequestError, Runner, RunReport, Store
from inert.openai import structured


class Synonyms(pydantic.BaseModel):
    words: list[str]


def synonyms(word: str) -> Request[Synonyms]:
    return structured(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": f"synonyms of {word}"}],
        response_format=Synonyms,
    )


async def batch_mode(c: openai.AsyncOpenAI, s: Store) -> None:
    reqs = [synonyms(w) for w in ("bank", "spring")]
    assert_type(await BatchRunner(c, store=s).run_all(reqs), list[Synonyms])
    runner = BatchRunner(c, store=s, max_requests_per_batch=1000, progress=False)
    assert_type(await runner.run(reqs[0]), Synonyms)
    assert_type(await runner.run_all_settled(reqs), list[Result[Synonyms, RequestError]])
    assert_type(runner.report, RunReport)
    assert_type(await runner.cancel(), list[str])
    as_protocol: Runner = runner
    same: Runner = ImmediateRunner(c, store=s)
    del as_protocol, same


def batch_mistakes(client: openai.AsyncOpenAI, sync_client: openai.OpenAI, store: Store) -> None:
    BatchRunner(client)  # type: ignore[call-arg]  # pyright: ignore[reportCallIssue]
    BatchRunner(sync_client, store=store)  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]
    BatchRunner(client, store=store, completion_window="1h")  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]
    BatchRunner(client, store=store, max_attempts="3")  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]


async def wrong_result_type(client: openai.AsyncOpenAI, store: Store) -> None:
    words: list[str] = await BatchRunner(client, store=store).run_all([synonyms("x")])  # type: ignore[list-item]  # pyright: ignore[reportAssignmentType]
    del words
