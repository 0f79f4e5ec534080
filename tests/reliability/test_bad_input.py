"""Bad input: each is a clear error at the boundary, and nothing is written half."""

from __future__ import annotations

import contextlib
import math
import os
import re
import sqlite3
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import openai
import pydantic
import pytest
from returns.result import Failure
from tests.billing import assert_billed_once
from tests.store._support import read_only

from inert import BatchRunner, ImmediateRunner, Op, Store, call
from inert.emulator import Emulator
from inert.errors import (
    ApiError,
    DamagedStoreError,
    NotAStoreError,
    StoreBusyError,
    StoreError,
    StoreReadOnlyError,
)
from inert.openai import CHAT_COMPLETIONS, structured
from inert.testing import op_of

from ._support import Words, word_request

NON_JSON_BODIES: dict[str, tuple[dict[Any, Any], type[Exception], str]] = {
    "a non-string key": ({"model": "m", "n": {1: "x"}}, TypeError, "['n']"),
    "NaN": ({"model": "m", "temperature": math.nan}, ValueError, "['temperature']"),
    "infinity": ({"model": "m", "x": [0.5, math.inf]}, ValueError, "['x'][1]"),
    "a set": ({"model": "m", "stop": {"a", "b"}}, TypeError, "['stop']"),
    "bytes": ({"model": "m", "input": b"raw"}, TypeError, "['input']"),
    "an object": ({"model": "m", "messages": [object()]}, TypeError, "['messages'][0]"),
}


@pytest.mark.parametrize("case", list(NON_JSON_BODIES))
def test_a_body_that_is_not_json_is_refused_with_its_place(case: str, tally: Counter[str]) -> None:
    """An op whose body is not plain JSON is refused when built, naming where the bad value is."""
    body, error, where = NON_JSON_BODIES[case]
    tally["bad_inputs"] += 1
    with pytest.raises(error) as caught:
        Op(endpoint="/v1/chat/completions", body=body, decode=lambda raw: raw)
    assert where in str(caught.value)


def nested(depth: int) -> dict[str, Any]:
    """A chat body whose metadata nests ``depth`` objects deep."""
    body: dict[str, Any] = {"model": "m", "metadata": {}}
    inner = body["metadata"]
    for _ in range(depth):
        inner["a"] = {}
        inner = inner["a"]
    return body


def contains_itself() -> dict[str, Any]:
    """A body whose message list holds the body itself."""
    body: dict[str, Any] = {"model": "m"}
    body["messages"] = [body]
    return body


def list_contains_itself() -> dict[str, Any]:
    """A body with a list that holds itself."""
    stop: list[Any] = ["end"]
    stop.append(stop)
    return {"model": "m", "stop": stop}


BODIES_REFUSED_AT_BUILD: dict[str, tuple[Any, str]] = {
    "a lone surrogate": (
        lambda: {"model": "m", "messages": [{"role": "user", "content": "caf\udce9"}]},
        "body['messages'][0]['content'] holds a lone surrogate",
    ),
    "a lone surrogate in a key": (
        lambda: {"model": "m", "metadata": {"\ud800": "x"}},
        "body['metadata'] has a key with a lone surrogate",
    ),
    "a body that contains itself": (contains_itself, "body['messages'][0] contains itself"),
    "a list that contains itself": (list_contains_itself, "body['stop'][1] contains itself"),
    "100,000 levels of nesting": (lambda: nested(100_000), "deeper than 100"),
    "an integer of 5,000 digits": (lambda: {"model": "m", "seed": 10**5000}, "body['seed']"),
    "an integer beyond 64 bits": (lambda: {"model": "m", "seed": 2**64}, "body['seed']"),
}


@pytest.mark.parametrize("case", list(BODIES_REFUSED_AT_BUILD))
async def test_a_body_no_api_can_take_fails_at_build_and_nothing_is_sent(
    case: str, emu: Emulator, tmp_path: Path, tally: Counter[str]
) -> None:
    """The op is refused while the requests are built, so no call is sent and nothing stored."""
    make, says = BODIES_REFUSED_AT_BUILD[case]
    tally["bad_inputs"] += 1
    async with openai.AsyncOpenAI(base_url=emu.base_url, api_key="sk-bad-body") as client:
        with Store(tmp_path / "store.sqlite3") as store:
            runner = ImmediateRunner(client, store=store)
            with pytest.raises(ValueError, match=re.escape(says)):
                await runner.run_all(
                    [
                        *(word_request(i, salt=" bad body") for i in range(3)),
                        call(Op(endpoint=CHAT_COMPLETIONS, body=make(), decode=str)),
                    ]
                )
            assert 0 == store.response_count()
    assert_billed_once(emu, [])


@pytest.mark.parametrize(
    "make",
    [
        lambda: structured(
            model="m", messages=[{"role": "user", "content": "\ud800"}], response_format=Words
        ),
        lambda: structured(
            model="m",
            messages=[{"role": "user", "content": "hi"}],
            response_format=Words,
            seed=10**5000,
        ),
        lambda: structured(
            model="m",
            messages=[{"role": "user", "content": "hi"}],
            response_format=Words,
            metadata=nested(100_000)["metadata"],
        ),
    ],
    ids=["a lone surrogate", "an integer of 5,000 digits", "100,000 levels of nesting"],
)
def test_structured_refuses_the_same_bodies_when_built(make: Any, tally: Counter[str]) -> None:
    """The builder's own checks catch what the op's guard catches, naming the place."""
    tally["bad_inputs"] += 1
    with pytest.raises((TypeError, ValueError)) as caught:
        make()
    assert "body[" in str(caught.value) or "metadata" in str(caught.value)


class OpenMapping(pydantic.BaseModel):
    """A model with a field strict mode cannot express: an object open to any key."""

    name: str
    attributes: dict[str, Any]


class AllowsExtra(pydantic.BaseModel):
    """A model that accepts unknown fields."""

    model_config = pydantic.ConfigDict(extra="allow")
    name: str


@pytest.mark.parametrize("model", [OpenMapping, AllowsExtra])
def test_a_schema_strict_mode_cannot_express_is_refused_when_built(
    model: type[pydantic.BaseModel], tally: Counter[str]
) -> None:
    """``structured`` refuses a model strict structured outputs reject, before anything is sent."""
    tally["bad_inputs"] += 1
    with pytest.raises(TypeError, match="strict") as caught:
        structured(model="m", messages=[{"role": "user", "content": "hi"}], response_format=model)
    assert model.__name__ in str(caught.value)


def test_a_missing_api_key_is_refused_by_the_client(
    monkeypatch: pytest.MonkeyPatch, tally: Counter[str]
) -> None:
    """Without a key the SDK refuses to build a client, before any runner exists."""
    tally["bad_inputs"] += 1
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(openai.OpenAIError, match="api_key"):
        openai.AsyncOpenAI()


async def test_a_wrong_api_key_is_a_typed_error_per_request(
    tmp_path: Path, tally: Counter[str]
) -> None:
    """A wrong key gives each request an ApiError 401, in both modes, and stores nothing."""
    tally["bad_inputs"] += 2
    requests = [word_request(i, salt=" wrong key") for i in range(5)]
    async with (
        Emulator(time_scale=0.1, api_key="the-right-key", seed=2) as guarded,
        openai.AsyncOpenAI(base_url=guarded.base_url, api_key="a-wrong-key") as client,
    ):
        with Store(tmp_path / "store.sqlite3") as store:
            immediate = await ImmediateRunner(client, store=store).run_all_settled(requests)
            batch = await BatchRunner(
                client, store=store, poll_interval=0.01, progress=False
            ).run_all_settled(requests)
            assert 0 == store.response_count()
        assert_billed_once(guarded, [])
    for settled in (immediate, batch):
        assert len(requests) == len(settled)
        for result in settled:
            assert isinstance(result, Failure)
            error = result.failure()
            assert isinstance(error, ApiError)
            assert 401 == error.status


def newer_store(path: Path) -> None:
    """A store whose schema version is from a future inert."""
    with Store(path):
        pass
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE meta SET value = '999' WHERE key = 'schema_version'")
    conn.close()


def foreign_database(path: Path) -> None:
    """Another application's SQLite database."""
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT)")
        conn.execute("INSERT INTO notes (text) VALUES ('mine')")
    conn.close()


def corrupted_store(path: Path) -> None:
    """A store whose pages after the header were overwritten."""
    with Store(path) as store:
        store.begin_run("run_x", {})
    data = bytearray(path.read_bytes())
    data[100:] = b"\xde\xad\xbe\xef" * ((len(data) - 100) // 4 + 1)
    path.write_bytes(bytes(data[: len(data)]))


def not_a_database(path: Path) -> None:
    """A text file where the store should be."""
    path.write_text("these are my notes, not a database\n")


def truncated_store(path: Path) -> None:
    """A store whose file was cut in half (a copy interrupted, a full disk)."""
    with Store(path) as store:
        store.put_responses([(op, {"i": i}) for i, op in enumerate(small_ops(200))])
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def small_ops(n: int) -> list[Op[Any]]:
    """``n`` distinct small ops whose answers tests store directly."""
    return [Op(endpoint="/v1/x", body={"i": i}, decode=lambda raw: raw) for i in range(n)]


STORE_CASES = {
    "a store from a newer inert": (newer_store, "newer"),
    "another application's database": (foreign_database, "not an inert store"),
    "a corrupted store": (corrupted_store, "inert store recover"),
    "a text file": (not_a_database, "not an inert store"),
    "a store cut short": (truncated_store, "inert store recover"),
}


@pytest.mark.parametrize("case", list(STORE_CASES))
def test_a_store_file_inert_cannot_use_is_refused_untouched(
    case: str, tmp_path: Path, tally: Counter[str]
) -> None:
    """Opening it raises StoreError saying what it is, and the file is left byte for byte."""
    make, says = STORE_CASES[case]
    path = tmp_path / "store.sqlite3"
    make(path)
    before = path.read_bytes()
    tally["bad_inputs"] += 1
    with pytest.raises(StoreError) as caught:
        Store(path)
    assert says in str(caught.value)
    assert str(path) in str(caught.value)
    assert before == path.read_bytes()
    assert not Path(f"{path}-wal").exists() or Path(f"{path}-wal").stat().st_size == 0


@pytest.mark.parametrize("where", ["file", "directory"])
def test_a_store_that_cannot_be_written_is_refused_at_open(
    where: str, tmp_path: Path, tally: Counter[str]
) -> None:
    """A read-only store file or directory raises StoreReadOnlyError at open, untouched."""
    folder = tmp_path / "kept"
    folder.mkdir()
    path = folder / "store.sqlite3"
    Store(path).close()
    before = path.read_bytes()
    tally["bad_inputs"] += 1
    with (
        read_only(path if where == "file" else folder),
        pytest.raises(StoreReadOnlyError) as caught,
    ):
        Store(path)
    assert "nothing was sent" in str(caught.value)
    assert before == path.read_bytes()


@pytest.mark.parametrize("kind", ["a directory", "a FIFO"])
def test_a_special_file_as_the_store_is_refused_at_open(
    kind: str, tmp_path: Path, tally: Counter[str]
) -> None:
    """A directory or a FIFO is refused at once, without reading from it."""
    path = tmp_path / "store.sqlite3"
    if kind == "a FIFO":
        os.mkfifo(path)
    else:
        path.mkdir()
    tally["bad_inputs"] += 1
    with pytest.raises(NotAStoreError, match=kind.split()[1]):
        Store(path)
    assert [path] == list(tmp_path.iterdir())


def test_a_store_held_by_another_process_is_busy_with_its_pid(
    tmp_path: Path, tally: Counter[str]
) -> None:
    """A lock another process holds past busy_timeout is StoreBusyError naming that process."""
    path = tmp_path / "store.sqlite3"
    Store(path).close()
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_THE_LOCK, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None
    tally["bad_inputs"] += 1
    try:
        assert "holding\n" == holder.stdout.readline()
        with pytest.raises(StoreBusyError, match=f"process {holder.pid}"):
            Store(path, busy_timeout=0.2)
    finally:
        holder.communicate("")


HOLD_THE_LOCK = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN IMMEDIATE")
print("holding", flush=True)
sys.stdin.read()
"""


async def test_garbage_mid_store_stops_the_run_before_anything_is_sent(
    tmp_path: Path, emu: Emulator, tally: Counter[str]
) -> None:
    """Damage met by the first lookup is a DamagedStoreError, not a raw sqlite3 error; none billed."""
    path = tmp_path / "store.sqlite3"
    requests = [word_request(i, salt=" damaged") for i in range(300)]
    with Store(path) as store:
        store.put_responses([(op_of(r), {"n": i}) for i, r in enumerate(requests)])
    # A page in the middle of the answers' table (the first lookup reads it), wherever
    # the schema puts its other tables.
    with contextlib.closing(sqlite3.connect(path)) as conn:
        pages = [n for (n,) in conn.execute("SELECT pageno FROM dbstat WHERE name = 'responses'")]
    with path.open("r+b") as f:
        f.seek((sorted(pages)[len(pages) // 2] - 1) * 4096)
        f.write(b"\xde\xad\xbe\xef" * 1024)
    tally["bad_inputs"] += 1
    async with openai.AsyncOpenAI(base_url=emu.base_url, api_key="test") as client:
        with pytest.raises(DamagedStoreError, match="inert store recover"), Store(path) as store:
            await ImmediateRunner(client, store=store, progress=False).run_all(requests)
    assert_billed_once(emu, [])
