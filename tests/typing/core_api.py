"""User code that mypy --strict and basedpyright must accept, and lines they must reject.

Checked by both, never executed. A rejected line carries each checker's expected
error: ``# type: ignore[code]`` for mypy (``warn_unused_ignores`` is on) and
``# pyright: ignore[rule]`` for basedpyright (``# type: ignore`` is not honoured by it
here, and ``reportUnnecessaryTypeIgnoreComment`` is an error), so the check fails the
day either checker stops rejecting that line.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any, assert_type

from returns.result import Result

from inert import (
    JSON,
    BatchRunner,
    ImmediateRunner,
    JSONObject,
    Op,
    Program,
    Request,
    RequestError,
    Runner,
    Steps,
    call,
    fail,
    gather,
    gather_all,
    program,
    pure,
    traverse,
)
from inert.testing import FakeRunner, ReplayRunner


class Animal:
    name = "animal"


class Dog(Animal):
    def bark(self) -> str:
        return "woof"


def decode_int(raw: JSON) -> int:
    assert isinstance(raw, int)
    return raw


def decode_dog(raw: JSON) -> Dog:
    return Dog()


int_op = Op(endpoint="/v1/x", body={"n": 1}, decode=decode_int)
assert_type(int_op, Op[int])
assert_type(int_op.key, str)
assert_type(int_op.endpoint, str)
assert_type(int_op.body, dict[str, JSON])

number = call(int_op)
assert_type(number, Request[int])
dog = call(Op(endpoint="/v1/x", body={}, decode=decode_dog))
assert_type(dog, Request[Dog])
text = number.map(str)
assert_type(text, Request[str])
assert_type(number.then(lambda n: pure(n * 1.5)), Request[float])
assert_type(pure("x"), Request[str])
assert_type(gather(number, text), Request[tuple[int, str]])
assert_type(gather(number, text, dog), Request[tuple[int, str, Dog]])
assert_type(
    gather(number, number, number, number, number, number, number, text),
    Request[tuple[int, int, int, int, int, int, int, str]],
)
assert_type(gather_all([number, number]), Request[list[int]])
assert_type(gather_all((number, number)), Request[list[int]])
assert_type(gather_all(n for n in [number]), Request[list[int]])
assert_type(traverse(["a", "b"], lambda s: pure(len(s))), Request[list[int]])
assert_type(traverse(range(3), lambda i: pure(str(i))), Request[list[str]])
assert_type(traverse({"a": 1}.items(), lambda kv: pure(kv[1])), Request[list[int]])
assert_type(traverse(zip("ab", [1, 2], strict=True), lambda kv: pure(kv[0])), Request[list[str]])
assert_type(number.attempt(), Request[Result[int, RequestError]])
assert_type(number.recover(lambda e: pure(e.message)), Request[int | str])
assert_type(number.recover(lambda e: fail(e)), Request[int])

# Covariance: a request of dogs is a request of animals.
animal: Request[Animal] = dog
animals: list[Request[Animal]] = [dog, call(Op(endpoint="/v1/y", body={}, decode=decode_dog))]


@program
def pet_name(prefix: str) -> Generator[Request[object], Any, str]:
    d = yield from dog
    assert_type(d, Dog)
    n, s = yield from gather(number, text)
    assert_type(n, int)
    return prefix + d.bark() + s


as_function: Callable[[str], Request[str]] = pet_name
as_program: Program[..., str] = pet_name
assert_type(pet_name("Rex "), Request[str])


# ``Steps[R]`` is the documented annotation: ``yield from`` keeps exact types, and what a
# bare ``yield`` gives back is an ``object``, not ``Any``.
@program
def greeting(prefix: str) -> Steps[str]:
    d = yield from dog
    assert_type(d, Dog)
    forgot_from = yield dog
    assert_type(forgot_from, object)
    return prefix + d.bark()


assert_type(greeting("Rex "), Request[str])


async def user_code(runner: Runner, fake: FakeRunner) -> None:
    assert_type(await runner.run(number), int)
    assert_type(await runner.run_all([number, number]), list[int])
    assert_type(await fake.run_all([dog, dog]), list[Dog])
    assert_type(await runner.run_all_settled([text]), list[Result[str, RequestError]])
    mixed: list[int | str] = await runner.run_all([number, text])


def blocking_code(runner: Runner) -> None:
    # The protocol has the blocking twins every runner offers.
    assert_type(runner.run_sync(number), int)
    assert_type(runner.run_all_sync([number, number]), list[int])
    assert_type(runner.run_all_settled_sync([text]), list[Result[str, RequestError]])


def every_runner_is_a_runner(
    immediate: ImmediateRunner, batch: BatchRunner, fake: FakeRunner, replay: ReplayRunner
) -> list[Runner]:
    return [immediate, batch, fake, replay]


def runtime_checked(x: object) -> Runner | None:
    # ``Runner`` is runtime-checkable: isinstance narrows.
    return x if isinstance(x, Runner) else None


# JSON values are importable from ``inert``.
body: JSONObject = {"n": [1, 2.5, "x", None, True, {"k": []}]}
value: JSON = body


# --- code both checkers must reject -------------------------------------------


def wants_int_request(r: Request[int]) -> None: ...


wants_int_request(text)  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]


def not_contravariant(animal: Request[Animal]) -> None:
    dog_back: Request[Dog] = animal  # type: ignore[assignment]  # pyright: ignore[reportAssignmentType]


not_json: JSON = {1: "x"}  # type: ignore[dict-item]  # pyright: ignore[reportAssignmentType]
pet_name(3)  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]
number.map(lambda n: n.upper())  # type: ignore[attr-defined]  # pyright: ignore[reportAttributeAccessIssue]

# A single request where a list of them belongs (a Request is iterable only for
# ``yield from``): refused by both checkers, and with a TypeError at run time.
gather_all(number)  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]
traverse(text, lambda s: pure(s))  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]


@program
def forgot_yield_from() -> Steps[str]:
    d = yield dog
    d.bark()  # type: ignore[attr-defined]  # pyright: ignore[reportAttributeAccessIssue]
    return "Rex"


async def wrong_results(runner: Runner) -> None:
    ints: list[int] = await runner.run_all([number, text])  # type: ignore[list-item]  # pyright: ignore[reportAssignmentType]
    one: str = await runner.run(number)  # type: ignore[arg-type]  # pyright: ignore[reportAssignmentType]
    not_a_runner: Runner = object()  # type: ignore[assignment]  # pyright: ignore[reportAssignmentType]
