"""``FakeRunner``: a real interpreter whose API is a function of your choosing."""

from __future__ import annotations

import asyncio
import inspect
import random
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol, Self, TypeAlias, TypeVar, cast, overload

from pydantic import BaseModel

from inert import _gc
from inert._engine import FetchOne, Outcome, Outcomes
from inert._errors import RequestError, UnansweredError
from inert._json import JSON, JSONObject, canonical_dumps, validate_json
from inert._op import Op
from inert._report import ReportBuilder
from inert._request import Request, _Call
from inert._runner import BaseRunner, ResponseStore

if TYPE_CHECKING:
    from hypothesis.strategies import DataObject, SearchStrategy

T = TypeVar("T")
K = TypeVar("K", bound=Op[object] | Request[object] | str)

Respond: TypeAlias = Callable[[Op[object]], JSON | Awaitable[JSON]]
"""``respond(op)`` returns the raw response body, or raises a RequestError.

It takes every op (``Op[object]``): a function that accepts only ``Op[Synonyms]``
would be handed ops of other types too, so checkers refuse it.
"""

OpRef: TypeAlias = Op[object] | Request[object] | str
"""An op, a request that is a single call (as ``structured(...)`` returns), or an op key."""

Answer: TypeAlias = JSON | BaseModel | RequestError
"""A table entry: a raw body, a model instance (sent in the shape of the op's API: a
chat completion, a Responses ``Response`` or an Anthropic ``Message``), or an error."""


def op_of(request: Request[T]) -> Op[T]:
    """The op of a request that is a single call, such as ``structured(...)`` returns.

    Raises:
        TypeError: the request is not a single call (a map, a gather, a program...).
    """
    if isinstance(request, _Call):
        op: Op[T] = request.op
        return op
    raise TypeError(
        f"{request!r} is not a single call; pass the op (or its key) instead, or build "
        "the request with call(op) or an inert.openai builder"
    )


def key_of(ref: OpRef) -> str:
    """The op key of an op, of a single-call request, or a key itself."""
    if isinstance(ref, str):
        return ref
    if isinstance(ref, Op):
        return ref.key
    if isinstance(ref, Request):
        return op_of(ref).key
    raise TypeError(f"expected an Op, a single-call Request or an op key; got {ref!r:.60}")


def _text_of(content: object) -> str | None:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = [p.get("text") for p in content if isinstance(p, dict)]
        return " ".join(t for t in texts if isinstance(t, str)) or None
    return None


def describe_op(op: Op[object], *, width: int = 60) -> str:
    """A one-line description of an op for messages: endpoint, short key and a snippet.

    The snippet is the last user message of a chat, the input of an embedding, else
    the start of the canonical body.
    """
    body = op.body
    snippet: str | None = None
    messages = body.get("messages")
    if isinstance(messages, list):
        for message in reversed(messages):
            if isinstance(message, dict) and message.get("role") == "user":
                snippet = _text_of(message.get("content"))
                break
    if snippet is None and isinstance(body.get("input"), str | list):
        snippet = _text_of(body["input"]) if isinstance(body["input"], str) else str(body["input"])
    if snippet is None:
        snippet = canonical_dumps(op.body)
    snippet = " ".join(snippet.split())
    if len(snippet) > width:
        snippet = snippet[: width - 1] + "…"
    return f"{op.endpoint} {op.key[:12]} {snippet!r}"


def _as_raw(answer: Answer, op: Op[object]) -> JSON:
    """A table answer as a raw body; raises it when it is an error."""
    if isinstance(answer, RequestError):
        raise answer
    if isinstance(answer, BaseModel):
        from inert.testing._strategies import MESSAGES, RESPONSES, answer_for, chat_completion

        if op.endpoint in (RESPONSES, MESSAGES):
            return answer_for(op, answer)  # in the shape of the op's provider
        return chat_completion(answer, model=op.model or "gpt-test")
    return answer


class FakeRunner(BaseRunner):
    """A runner that answers every op with ``respond(op)`` instead of calling an API.

    It runs the same engine as the real runners, so rounds, dedup and failures
    behave exactly as they will in production. Build one from a function, from a
    table (:meth:`from_table`), from Hypothesis data (:meth:`from_data`); make
    chosen ops fail with :meth:`fail_ops`.

    Args:
        respond: returns the raw response body (a JSON value) for an op, or raises
            a :class:`~inert.RequestError` for that op alone. It may be async. An
            answer that is not a dict, and every answer when there is a ``store``
            (it keeps exactly what an API could send), is checked as plain JSON;
            a dict is handed to the decoder as it is.
        pipelined: ``False`` (default) schedules round by round like the batch
            runner; ``True`` fetches each op as soon as it is needed, like the
            immediate runner.
        seed: when given, answers arrive in a shuffled order (pipelined: random
            interleaving), to show that results do not depend on answer order.
        store: an optional response store, as for the real runners.

    Attributes:
        calls: every op sent in the last run, in the order the runner was asked.
        rounds_log: the ops of each fetch of the last run (one entry per round
            when not pipelined).
        history: the ``rounds_log`` of every run of this runner, oldest first.
    """

    def __init__(
        self,
        respond: Respond,
        *,
        pipelined: bool = False,
        seed: int | None = None,
        store: ResponseStore | None = None,
    ) -> None:
        super().__init__(store=store)
        if not callable(respond):
            raise TypeError(
                f"FakeRunner(respond) takes a function of an Op; got {type(respond).__name__}"
            )
        self._respond = respond
        self.pipelined = pipelined
        self._seed = seed
        self._random = None if seed is None else random.Random(seed)
        self.calls: list[Op[object]] = []
        self.rounds_log: list[list[Op[object]]] = []
        self.history: list[list[list[Op[object]]]] = []
        self._failed = 0
        # Answers go to the engine at once (no coroutine) unless they arrive shuffled
        # or a subclass sends otherwise.
        self._direct = self._random is None and type(self)._send is FakeRunner._send

    # --- other ways to build one ----------------------------------------------------

    @classmethod
    def _build(
        cls, respond: Respond, *, pipelined: bool, seed: int | None, store: ResponseStore | None
    ) -> Self:
        """The fake of this class answering with ``respond``: what ``from_*`` return.

        A subclass whose constructor takes other arguments overrides this.
        """
        return cls(respond, pipelined=pipelined, seed=seed, store=store)

    @classmethod
    def from_table(
        cls,
        table: Mapping[K, Answer],
        *,
        default: Respond | None = None,
        pipelined: bool = False,
        seed: int | None = None,
        store: ResponseStore | None = None,
    ) -> Self:
        """A fake that answers from a table keyed by op, single-call request or op key.

        A value is a raw response body, a pydantic model instance (answered in the
        shape of the op's API with its JSON as the text: a chat completion, a
        Responses ``Response`` or an Anthropic ``Message``, see
        :func:`~inert.testing.answer_for`) or a ``RequestError`` (that op fails with
        it). An op missing from the table goes to ``default``; without one it
        fails with an :class:`~inert.errors.UnansweredError` naming the op.
        """
        answers = {key_of(ref): answer for ref, answer in table.items()}

        def respond(op: Op[object]) -> JSON | Awaitable[JSON]:
            if op.key in answers:
                return _as_raw(answers[op.key], op)
            if default is not None:
                return default(op)
            raise UnansweredError(
                f"the answer table has no entry for {describe_op(op)}; "
                f"it has {len(answers)} {'entry' if len(answers) == 1 else 'entries'}"
            )

        return cls._build(respond, pipelined=pipelined, seed=seed, store=store)

    @classmethod
    def from_data(
        cls,
        data: DataObject,
        *,
        failure_rate: float = 0.0,
        failures: SearchStrategy[RequestError | JSONObject] | None = None,
        default: Respond | None = None,
        pipelined: bool = False,
        seed: int | None = None,
        store: ResponseStore | None = None,
    ) -> Self:
        """A fake whose answers Hypothesis draws inside a ``@given(st.data())`` test.

        Each distinct op is answered once with ``data.draw(responses_for(op))`` (the
        draw is labelled with the op, so a failing example shows which op got which
        answer), and keeps that answer for the fake's lifetime. With
        ``failure_rate > 0`` an op may instead get a failure: an error from
        ``failures`` (default: :func:`~inert.testing.failures` and, for
        structured outputs, :func:`~inert.testing.failure_responses_for` the op).
        Ops of other endpoints go to ``default``.
        """
        if not 0.0 <= failure_rate <= 1.0:
            raise ValueError(f"failure_rate must be between 0 and 1; got {failure_rate!r}")
        from hypothesis import strategies as st

        from inert.testing import _strategies as strategies

        drawn: dict[str, Answer] = {}

        def draw(op: Op[object]) -> Answer:
            label = describe_op(op)
            if (
                failure_rate > 0.0
                and data.draw(st.floats(0.0, 1.0), label=f"p {label}") < failure_rate
            ):
                choices = failures
                if choices is None:
                    kinds = strategies.failure_kinds_for(op)
                    choices = strategies.failures()
                    if kinds:
                        choices = choices | strategies.failure_responses_for(op, kinds=kinds)
                return data.draw(choices, label=f"failure of {label}")
            return data.draw(strategies.responses_for(op), label=label)

        def respond(op: Op[object]) -> JSON | Awaitable[JSON]:
            if op.key not in drawn:
                if op.endpoint not in strategies.SUPPORTED_ENDPOINTS and default is not None:
                    return default(op)
                drawn[op.key] = draw(op)
            return _as_raw(drawn[op.key], op)

        return cls._build(respond, pipelined=pipelined, seed=seed, store=store)

    def fail_ops(
        self,
        errors: Mapping[K, RequestError | JSONObject] | None = None,
        *,
        where: Callable[[Op[object]], bool] | None = None,
        error: RequestError | JSONObject | None = None,
    ) -> FakeRunner:
        """A new fake like this one, except that the chosen ops fail.

        Args:
            errors: op (or single-call request, or key) → what it gets instead: a
                ``RequestError`` the runner reports for it, or a raw body (such as a
                refusal from :func:`~inert.testing.failure_responses_for`) that the
                op's decoder turns into a typed error.
            where: also fail every op for which this predicate is true...
            error: ...with this (default: a ``RequestError`` naming the op).

        Every other op is answered as before; the two fakes share their answers.
        """
        targeted = {key_of(ref): value for ref, value in (errors or {}).items()}
        inner = self._respond

        def respond(op: Op[object]) -> JSON | Awaitable[JSON]:
            failure: RequestError | JSONObject | None = targeted.get(op.key)
            if failure is None and where is not None and where(op):
                failure = (
                    error
                    if error is not None
                    else RequestError(f"injected failure of {describe_op(op)}")
                )
            if failure is None:
                return inner(op)
            if isinstance(failure, RequestError):
                raise failure
            return failure

        return FakeRunner(respond, pipelined=self.pipelined, seed=self._seed, store=self._store)

    # --- the runner ----------------------------------------------------------------

    def _begin_run(self) -> None:
        self.calls = []
        self.rounds_log = []
        self.history.append(self.rounds_log)

    sends_bare_outcomes = True

    def _send_now(
        self, ops: Sequence[Op[Any]], report: ReportBuilder
    ) -> Mapping[str, Outcome] | list[Outcome] | Awaitable[Mapping[str, Outcome] | list[Outcome]]:
        """The answers of ``ops`` at once, when ``respond`` gives them without waiting.

        Not when answers arrive shuffled, nor for a subclass that overrides ``_send``:
        those go through ``_send`` (a coroutine).
        """
        if not self._direct:
            return self._send(ops, report)
        return self._answers(ops, ops)

    def _fetch_bare(
        self, report: ReportBuilder, ops: Sequence[Op[Any]]
    ) -> Outcomes | Awaitable[Outcomes]:
        """A round of one op (a chain of thens has one per round), answered in one step.

        The same as the general path (``_send_now``, ``_answers``, then counting what
        was answered), with nothing to loop over; rounds of more ops, shuffled
        answers and subclasses that send otherwise take the general path.
        """
        if not self._direct:
            return super()._fetch_bare(report, ops)
        if len(ops) != 1:
            return self._fetch_round(report, ops)
        op = ops[0]
        report.ops_sent += 1
        self.calls.append(op)
        self.rounds_log.append([op])
        try:
            answer = self._respond(op)
        except RequestError as error:
            return [error]
        if answer.__class__ is dict and "usage" not in answer and "error" not in answer:  # pyright: ignore[reportOperatorIssue]  # a dict, checked first
            report.ops_paid += 1
            return [answer]  # pyright: ignore[reportReturnType]  # a dict, checked above
        return self._settled_one(ops, answer, report)

    def _fetch_one(self, report: ReportBuilder) -> FetchOne | None:
        """The engine's seam for a round of one op (a chain of thens has one per round).

        What :meth:`_fetch_bare` does for one op, as a function of the op alone that
        returns a plain answer itself (no list around it, counted by the engine: see
        :data:`inert._engine.FetchOne`); the rest as :meth:`_fetch_bare` returns it.
        Not for shuffled answers nor for subclasses that send otherwise.
        """
        if not self._direct:
            return None
        respond = self._respond
        called = self.calls.append
        logged = self.rounds_log.append

        def one(op: Op[Any]) -> Any:
            # The engine counts this op as sent, and as paid if an object comes back.
            called(op)
            ops = [op]
            logged(ops)
            try:
                answer = respond(op)
            except RequestError as error:
                return [error]
            if answer.__class__ is dict and "usage" not in answer and "error" not in answer:  # pyright: ignore[reportOperatorIssue]  # a dict, checked first
                return answer
            return self._settled_one(ops, answer, report)

        return one

    def _settled_one(
        self, ops: Sequence[Op[Any]], answer: JSON | Awaitable[JSON], report: ReportBuilder
    ) -> Outcomes | Awaitable[Outcomes]:
        """The outcomes of a round of one op whose answer is not a plain object: one to
        await, one to check as plain JSON, or one that carries usage or an error."""
        try:
            if answer.__class__ is not dict:
                if inspect.isawaitable(answer):
                    return self._settled_later(ops, self._answers_later(ops, 0, answer, []), report)
                answer = validate_json(answer)
        except RequestError as error:
            return [error]
        return self._settled_in_order(ops, [cast(Outcome, answer)], report)

    def _fetch_round(
        self, report: ReportBuilder, ops: Sequence[Op[Any]]
    ) -> Outcomes | Awaitable[Outcomes]:
        """A round of several ops, answered in one pass that also counts what was paid.

        The general path counts the answers in a second pass
        (``BaseRunner._settled_in_order``); it still does when an answer carries
        usage or an error object, or is not an object at all.
        """
        report.ops_sent += len(ops)
        answers = self._answers(ops, ops, tally=True)
        if not isinstance(answers, list):  # an async respond: counted once all are in
            return self._settled_later(ops, answers, report)
        failed = self._failed
        if failed < 0:
            return self._settled_in_order(ops, answers, report)
        report.ops_paid += len(answers) - failed
        return answers

    async def _send(
        self, ops: Sequence[Op[Any]], report: ReportBuilder
    ) -> Mapping[str, Outcome] | list[Outcome]:
        """The answers of ``ops``: a list in their order, or by key when shuffled."""
        order: Sequence[Op[Any]] = ops
        if self._random is not None:
            order = list(ops)
            self._random.shuffle(order)
            if self.pipelined:
                for _ in range(self._random.randrange(4)):
                    await asyncio.sleep(0)
        answering = self._answers(ops, order)
        answers = answering if isinstance(answering, list) else await answering
        if order is ops:
            return answers
        return {op.key: answer for op, answer in zip(order, answers, strict=True)}

    def _answers(
        self, ops: Sequence[Op[Any]], order: Sequence[Op[Any]], *, tally: bool = False
    ) -> list[Outcome] | Coroutine[Any, Any, list[Outcome]]:
        """``respond`` of each op of ``order``, in that order; the rest as a coroutine
        from the first answer that must be awaited (an async ``respond``).

        With ``tally``, ``self._failed`` is left as the number of answers that are
        RequestErrors, or -1 when some answer is not an object, or carries usage or
        an error object (then ``_settled_in_order`` counts them); without, -1.
        """
        self.calls.extend(ops)
        self.rounds_log.append(list(ops))
        respond = self._respond
        # An answer kept in a store must be exactly what an API could send; one
        # that is not a dict is checked too (a model instance or a string returned
        # by mistake). Other dicts go to the decoder as they are: the fake made them.
        check = self._store is not None
        answers: list[Outcome] = []
        append = answers.append
        failed = 0
        bulk = len(order) >= _BULK
        if bulk:
            _gc.pause()
        try:
            for op in order:
                try:
                    raw = respond(op)
                    if raw.__class__ is not dict or check:
                        if inspect.isawaitable(raw):
                            return self._answers_later(order, len(answers), raw, answers)
                        if raw.__class__ is not dict or check:
                            raw = validate_json(raw)
                except RequestError as error:
                    append(error)
                    failed += 1
                    continue
                if tally and (raw.__class__ is not dict or "usage" in raw or "error" in raw):  # pyright: ignore[reportOperatorIssue]  # a dict, checked first
                    tally = False  # to be counted by _settled_in_order
                append(raw)  # pyright: ignore[reportArgumentType]  # narrowed by the class check (pyright does not narrow on __class__)
        finally:
            if bulk:
                _gc.resume()
        self._failed = failed if tally else -1
        return answers

    async def _answers_later(
        self, order: Sequence[Op[Any]], start: int, first: Awaitable[JSON], answers: list[Outcome]
    ) -> list[Outcome]:
        """The answers from ``order[start]`` on, whose ``respond`` gave ``first`` to await."""
        respond = self._respond
        check = self._store is not None
        append = answers.append
        pending: Awaitable[JSON] | None = first
        bulk = len(order) - start >= _BULK
        if bulk:
            _gc.pause()
        try:
            for op in order[start:]:
                try:
                    if pending is not None:
                        raw: object = await pending
                        pending = None
                    else:
                        raw = respond(op)
                        if inspect.isawaitable(raw):
                            raw = await raw
                    if raw.__class__ is not dict or check:
                        raw = validate_json(raw)
                except RequestError as error:
                    append(error)
                    continue
                append(cast(Outcome, raw))
        finally:
            if bulk:
                _gc.resume()
        return answers


_BULK = 256
"""Rounds of at least this many ops answer with the collector paused."""


class FakeRunnerFactory(Protocol):
    """The ``fake_runner`` fixture: builds a ``FakeRunner`` from a function or a table.

    ``fake_runner(respond, ...)`` is ``FakeRunner(respond, ...)``, and
    ``fake_runner(table, ...)`` is ``FakeRunner.from_table(table, ...)``: the table
    takes the same keys (ops, single-call requests, op keys) and answers.
    """

    @overload
    def __call__(
        self,
        answers: Respond,
        /,
        *,
        pipelined: bool = False,
        seed: int | None = None,
        store: ResponseStore | None = None,
    ) -> FakeRunner: ...
    @overload
    def __call__(
        self,
        answers: Mapping[K, Answer],
        /,
        *,
        default: Respond | None = None,
        pipelined: bool = False,
        seed: int | None = None,
        store: ResponseStore | None = None,
    ) -> FakeRunner: ...
    def __call__(
        self,
        answers: Respond | Mapping[K, Answer],
        /,
        *,
        default: Respond | None = None,
        pipelined: bool = False,
        seed: int | None = None,
        store: ResponseStore | None = None,
    ) -> FakeRunner:
        """A fake answering with ``answers(op)``, or from the table ``answers``."""
        ...
