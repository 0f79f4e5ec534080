"""Typing tests of inert.testing: strategies and helpers keep the user's types.

Checked by mypy --strict and basedpyright, never executed; rejected lines carry both
checkers' expected errors (see core_api.py).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import assert_type

from anthropic.types import Message
from hypothesis import strategies as st
from openai.types.responses import Response
from pydantic import BaseModel

from inert import JSON, JSONObject, Op, Request, Store
from inert.anthropic import message, message_object
from inert.errors import RequestError
from inert.openai import response, response_object, structured
from inert.testing import (
    FakeRunner,
    FakeRunnerFactory,
    ReplayRunner,
    Respond,
    answer_for,
    anthropic_message,
    chat_completion,
    describe_op,
    expect_calls,
    expect_rounds,
    failure_responses_for,
    failures,
    json_for_schema,
    op_of,
    openai_response,
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

# The Responses and Anthropic builders get strategies typed by what they decode to.
sense_gpt = response(model="gpt-4o-mini", input="Synonyms of bright", text_format=Synonyms)
sense_claude = message(
    model="claude-haiku-4-5",
    max_tokens=99,
    messages=[{"role": "user", "content": "Synonyms of bright"}],
    output_format=Synonyms,
)
assert_type(values_for(sense_gpt), st.SearchStrategy[Synonyms])
assert_type(values_for(sense_claude), st.SearchStrategy[Synonyms])
assert_type(values_for(op_of(sense_claude)), st.SearchStrategy[Synonyms])
assert_type(values_for(response(model="m", input="x")), st.SearchStrategy[str])
assert_type(values_for(response_object(model="m", input="x")), st.SearchStrategy[Response])
assert_type(
    values_for(
        message_object(model="m", max_tokens=9, messages=[{"role": "user", "content": "x"}])
    ),
    st.SearchStrategy[Message],
)
assert_type(responses_for(sense_claude), st.SearchStrategy[JSONObject])
assert_type(
    failure_responses_for(sense_gpt, kinds=["content_filter"]), st.SearchStrategy[JSONObject]
)
# Each provider's answer shape, built by hand or for an op.
assert_type(openai_response(Synonyms(words=[]), status="incomplete"), JSONObject)
assert_type(anthropic_message("text", stop_reason="refusal"), JSONObject)
assert_type(answer_for(sense_claude, Synonyms(words=["vivid"])), JSONObject)
assert_type(FakeRunner.from_table({sense_gpt: Synonyms(words=[])}).run_sync(sense_gpt), Synonyms)

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


assert_type(schema_of(Synonyms), JSONObject)

# What users receive of ops is typed ``Op[object]``, never ``Op[Any]``.
assert_type(table.calls, list[Op[object]])
assert_type(table.rounds_log, list[list[Op[object]]])
assert_type(table.history, list[list[list[Op[object]]]])
assert_type(table.calls[0].decode, Callable[[JSON], object])


def respond_to_any(op: Op[object]) -> JSON:
    assert_type(op.decode({}), object)
    return chat_completion(Synonyms(words=[describe_op(op)]))


async def respond_later(op: Op[object]) -> JSON:
    return None


assert_type(FakeRunner(respond_to_any), FakeRunner)
assert_type(FakeRunner(respond_later), FakeRunner)


def takes_respond(respond: Respond) -> None:
    assert_type(respond, Callable[[Op[object]], JSON | Awaitable[JSON]])


takes_respond(respond_to_any)
takes_respond(respond_later)
expect_calls(table, 1, where=lambda o: assert_type(o, Op[object]).endpoint == "/v1/x")
table.fail_ops(where=lambda o: assert_type(o, Op[object]).model is None)


def recorded(replay: ReplayRunner, store: Store) -> None:
    assert_type(replay.unanswered, list[Op[object]])
    # ReplayRunner's inherited constructors build replays: the table answers what the
    # recording lacks.
    assert_type(ReplayRunner.from_table({request: Synonyms(words=[])}, store=store), ReplayRunner)
    assert_type(ReplayRunner.from_table({op.key: None}), ReplayRunner)
    assert_type(ReplayRunner(store, fallback=respond_to_any), ReplayRunner)


@st.composite
def replays(draw: st.DrawFn, store: Store) -> ReplayRunner:
    return ReplayRunner.from_data(draw(st.data()), store=store)


def with_fixture(fake_runner: FakeRunnerFactory, store: Store) -> None:
    # The fixture takes what FakeRunner.from_table takes: a dict keyed by requests,
    # ops or keys (invariant key types included), or a respond function.
    answers: dict[Request[Synonyms], Synonyms] = {request: Synonyms(words=["vivid"])}
    assert_type(fake_runner(answers, store=store), FakeRunner)
    by_op: Mapping[Op[Synonyms], Synonyms] = {op: Synonyms(words=[])}
    assert_type(fake_runner(by_op, default=respond_to_any), FakeRunner)
    assert_type(fake_runner({op.key: None}, pipelined=True, seed=1), FakeRunner)
    assert_type(fake_runner(respond_to_any), FakeRunner)
    fake_runner(respond_to_any, default=respond_to_any)  # type: ignore[call-overload]  # pyright: ignore[reportArgumentType]
    fake_runner({42: None})  # type: ignore[type-var]  # pyright: ignore[reportCallIssue, reportArgumentType]


# --- code both checkers must reject -------------------------------------------

# A strategy of Synonyms is not a strategy of some other model.
wrong: st.SearchStrategy[int] = values_for(Synonyms)  # type: ignore[assignment]  # pyright: ignore[reportAssignmentType]
# Failure kinds are checked: a typo is rejected.
failure_responses_for(op, kinds=["refusl"])  # type: ignore[list-item]  # pyright: ignore[reportArgumentType]
# Each provider's shape takes only the states its API reports.
anthropic_message("x", stop_reason="done")  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]
openai_response("x", status="failed")  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]
openai_response("x", incomplete_reason="length")  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]
# A strategy for a Claude request of Synonyms is not one of text.
claude_text: st.SearchStrategy[str] = values_for(sense_claude)  # type: ignore[arg-type]  # pyright: ignore[reportAssignmentType]
# answer_for takes an op or a request, not a model class.
answer_for(Synonyms, Synonyms(words=[]))  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]
# A table's keys are ops, single-call requests or keys, not arbitrary values.
FakeRunner.from_table({42: Synonyms(words=[])})  # type: ignore[type-var]  # pyright: ignore[reportArgumentType]


# A respond function that accepts only some ops would be handed all of them.
def respond_to_synonyms(op: Op[Synonyms]) -> JSON:
    return None


FakeRunner(respond_to_synonyms)  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]
ReplayRunner(Store(), fallback=respond_to_synonyms)  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]
table.fail_ops(where=lambda o: o.decode({}).words == [])  # type: ignore[attr-defined]  # pyright: ignore[reportAttributeAccessIssue]
schema_of(Synonyms)["type"].upper()  # type: ignore[union-attr]  # pyright: ignore[reportOptionalMemberAccess, reportAttributeAccessIssue]
