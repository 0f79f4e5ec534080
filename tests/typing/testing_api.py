"""Typing tests of inert.testing: strategies and helpers keep the user's types.

Checked by mypy --strict, never executed.
"""

from __future__ import annotations

from typing import assert_type

from hypothesis import strategies as st
from pydantic import BaseModel

from inert import Op, Request
from inert._json import JSON, JSONObject
from inert.errors import RequestError
from inert.openai import structured
from inert.testing import (
    FakeRunner,
    ReplayRunner,
    chat_completion,
    describe_op,
    expect_calls,
    expect_rounds,
    failure_responses_for,
    failures,
    json_for_schema,
    op_of,
    responses_for,
    schema_of,
    values_for,
)


class Synonyms(BaseModel):
    words: list[str]


def synonyms_of(word: str) -> Request[Synonyms]:
    return structured(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": f"Synonyms of {word}"}],
        response_format=Synonyms,
    )


request = synonyms_of("bright")
op = op_of(request)
assert_type(op, Op[Synonyms])

# Strategies for a model, an op or a request are typed by the answer they decode to.
assert_type(values_for(Synonyms), st.SearchStrategy[Synonyms])
assert_type(values_for(op), st.SearchStrategy[Synonyms])
assert_type(values_for(request), st.SearchStrategy[Synonyms])
assert_type(responses_for(request), st.SearchStrategy[JSONObject])
assert_type(failure_responses_for(op, kinds=["refusal"]), st.SearchStrategy[JSONObject])
assert_type(failures(), st.SearchStrategy[RequestError])
assert_type(json_for_schema(schema_of(Synonyms)), st.SearchStrategy[JSON])
assert_type(chat_completion(Synonyms(words=["vivid"])), JSONObject)

# Fakes built every way are runners whose results keep the request's type.
table = FakeRunner.from_table({request: Synonyms(words=["vivid"])})
assert_type(table, FakeRunner)
assert_type(table.run_sync(request), Synonyms)
assert_type(table.fail_ops({request: RequestError("no")}), FakeRunner)
assert_type(table.fail_ops(where=lambda o: "bright" in describe_op(o)), FakeRunner)


@st.composite
def fakes(draw: st.DrawFn) -> FakeRunner:
    return FakeRunner.from_data(draw(st.data()), failure_rate=0.1)


async def replayed(replay: ReplayRunner) -> None:
    assert_type(await replay.run(request), Synonyms)
    expect_rounds(replay, 1)
    expect_calls(replay, [request, op, op.key], each_once=True, scope="all")


# A strategy of Synonyms is not a strategy of some other model.
wrong: st.SearchStrategy[int] = values_for(Synonyms)  # type: ignore[assignment]
# Failure kinds are checked: a typo is rejected.
failure_responses_for(op, kinds=["refusl"])  # type: ignore[list-item]
# A table's keys are ops, single-call requests or keys, not arbitrary values.
FakeRunner.from_table({42: Synonyms(words=[])})  # type: ignore[type-var]
