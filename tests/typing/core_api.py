"""User code that mypy --strict must accept, and lines it must reject.

Checked by mypy (``warn_unused_ignores`` is on, so every ``# type: ignore[code]``
below fails the check the day mypy stops rejecting that line); never executed.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any, assert_type

from returns.result import Result

from inert import (
    Op,
    Program,
    Request,
    RequestError,
    Runner,
    call,
    fail,
    gather,
    gather_all,
    program,
    pure,
    traverse,
)
from inert._json import JSON
from inert.testing import FakeRunner


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
assert_type(traverse(["a", "b"], lambda s: pure(len(s))), Request[list[int]])
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


async def user_code(runner: Runner, fake: FakeRunner) -> None:
    assert_type(await runner.run(number), int)
    assert_type(await runner.run_all([number, number]), list[int])
    assert_type(await fake.run_all([dog, dog]), list[Dog])
    assert_type(await runner.run_all_settled([text]), list[Result[str, RequestError]])
    mixed = await runner.run_all([number, text])
    assert_type(mixed, list[object])


# --- code mypy must reject ---------------------------------------------------


def wants_int_request(r: Request[int]) -> None: ...


wants_int_request(text)  # type: ignore[arg-type]
dog_back: Request[Dog] = animal  # type: ignore[assignment]
pet_name(3)  # type: ignore[arg-type]
number.map(lambda n: n.upper())  # type: ignore[attr-defined]


async def wrong_results(runner: Runner) -> None:
    ints: list[int] = await runner.run_all([number, text])  # type: ignore[list-item]
    one: str = await runner.run(number)  # type: ignore[arg-type]
