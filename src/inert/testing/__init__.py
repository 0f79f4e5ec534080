"""Test interpreters, Hypothesis strategies and assertions for pipelines built on inert.

* :class:`FakeRunner` answers ops from a function, a table
  (:meth:`FakeRunner.from_table`) or Hypothesis data (:meth:`FakeRunner.from_data`);
  :meth:`FakeRunner.fail_ops` makes chosen ops fail. :class:`ReplayRunner` answers
  from a store recorded by a real run.
* Strategies: :func:`values_for`, :func:`responses_for`, :func:`failures`,
  :func:`failure_responses_for`, :func:`json_for_schema`, for chat completions,
  Responses and Anthropic Messages ops alike.
* Answers in each provider's shape: :func:`chat_completion`,
  :func:`openai_response`, :func:`anthropic_message`, and :func:`answer_for` (the
  one an op's provider sends).
* Assertions: :func:`expect_rounds`, :func:`expect_calls`.

The strategies use Hypothesis, which installs with inert.
"""

from types import FunctionType as _FunctionType

from inert.testing._assertions import expect_calls, expect_rounds
from inert.testing._fake import (
    Answer,
    FakeRunner,
    FakeRunnerFactory,
    OpRef,
    Respond,
    describe_op,
    key_of,
    op_of,
)
from inert.testing._replay import ReplayRunner
from inert.testing._strategies import (
    FailureKind,
    answer_for,
    anthropic_message,
    chat_completion,
    failure_kinds_for,
    failure_responses_for,
    failures,
    json_for_schema,
    openai_response,
    responses_for,
    schema_of,
    values_for,
)

__all__ = [
    "Answer",
    "FailureKind",
    "FakeRunner",
    "FakeRunnerFactory",
    "OpRef",
    "ReplayRunner",
    "Respond",
    "answer_for",
    "anthropic_message",
    "chat_completion",
    "describe_op",
    "expect_calls",
    "expect_rounds",
    "failure_kinds_for",
    "failure_responses_for",
    "failures",
    "json_for_schema",
    "key_of",
    "op_of",
    "openai_response",
    "responses_for",
    "schema_of",
    "values_for",
]

for _name in __all__:
    _obj = globals()[_name]
    if isinstance(_obj, type | _FunctionType) and _obj.__module__.startswith("inert.testing._"):
        _obj.__module__ = "inert.testing"
