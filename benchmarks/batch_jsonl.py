"""The batch runner's hot paths for a 50,000-request round, against the bare minimum.

Run: ``.venv/bin/python benchmarks/batch_jsonl.py [--requests N] [--repeat R]``.

1. Building and writing the JSONL input: ``plan_shards`` (group, canonical JSON
   lines, cut under the limits) and writing each shard's bytes to a file, against a
   loop of ``json.dumps`` of the same bodies written to a file.
2. Decoding the output: ``parse_output_lines`` of an output file and each op's
   decoder on its line (a structured answer validated by pydantic), against a loop
   of ``Model.model_validate_json`` of the answers' contents alone.

Both sides run in the same process, best of ``--repeat`` runs; the goal is a ratio of
at most 1.5. Peak memory (tracemalloc) is measured in separate runs, because
tracing slows everything down. Storing the answers (one SQLite transaction) is
reported too, as it is part of a real round, but is not in the ratio.
"""

from __future__ import annotations

import argparse
import gc
import json
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pydantic

from inert import Op, Store
from inert._gc import paused_gc
from inert._json import JSON
from inert._runners._batch import MAX_BYTES_PER_BATCH, parse_output_lines, plan_shards
from inert.openai import structured


class Synonyms(pydantic.BaseModel):
    """A small answer like the workload's: a list of words and a score."""

    words: list[str]
    confidence: float


def build_ops(n: int) -> list[Op[Synonyms]]:
    """``n`` distinct structured requests, keys already computed (the engine does that)."""
    ops: list[Op[Synonyms]] = []
    for i in range(n):
        request = structured(
            model="gpt-4o-mini",
            messages=[
                {
                    "role": "user",
                    "content": f"Give synonyms for sense {i % 7} of the word number {i}, "
                    "as used in everyday English, with a confidence from 0 to 1.",
                }
            ],
            response_format=Synonyms,
            max_completion_tokens=200,
        )
        op: Op[Synonyms] = request.op  # type: ignore[attr-defined]  # a call node's op
        _ = op.key
        ops.append(op)
    return ops


def output_file(ops: list[Op[Synonyms]]) -> tuple[bytes, list[str]]:
    """An output file as the Batch API writes it, and the answers' contents."""
    lines: list[str] = []
    contents: list[str] = []
    for i, op in enumerate(ops):
        content = json.dumps({"words": ["quick", "rapid", f"swift{i}"], "confidence": 0.8})
        contents.append(content)
        body = {
            "id": f"chatcmpl-{i:024x}",
            "object": "chat.completion",
            "created": 1_700_000_000,
            "model": "gpt-4o-mini-2024-07-18",
            "choices": [
                {
                    "index": 0,
                    "message": {
                        "role": "assistant",
                        "content": content,
                        "refusal": None,
                        "annotations": [],
                    },
                    "finish_reason": "stop",
                    "logprobs": None,
                }
            ],
            "usage": {"prompt_tokens": 120, "completion_tokens": 20, "total_tokens": 140},
            "system_fingerprint": "fp_0000",
        }
        line = {
            "id": f"batch_req_{i:024x}",
            "custom_id": op.key,
            "response": {"status_code": 200, "request_id": f"req_{i:024x}", "body": body},
            "error": None,
        }
        lines.append(json.dumps(line))
    return ("\n".join(lines) + "\n").encode(), contents


def best(fn: Callable[[], object], repeat: int) -> float:
    """The fastest of ``repeat`` runs, in seconds."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def peak(fn: Callable[[], object]) -> int:
    """Peak traced memory of one run, in bytes."""
    tracemalloc.start()
    tracemalloc.reset_peak()
    fn()
    _, top = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return top


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument(
        "--no-gc",
        action="store_true",
        help="disable the cyclic garbage collector throughout (a diagnostic: how much of "
        "the difference is the collector walking the parsed answers)",
    )
    args = parser.parse_args()
    if args.no_gc:
        gc.disable()
    n: int = args.requests
    ops = build_ops(n)
    data, contents = output_file(ops)
    by_key = {op.key: op for op in ops}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)

        def inert_write() -> None:
            plans, _ = plan_shards(ops, max_requests=50_000, max_bytes=MAX_BYTES_PER_BATCH)
            for i, plan in enumerate(plans):
                (folder / f"shard-{i}.jsonl").write_bytes(plan.payload())

        def bare_write() -> None:
            text = "\n".join([json.dumps(op.body) for op in ops])
            (folder / "bare.jsonl").write_bytes(text.encode())

        def inert_decode() -> list[Any]:
            lines, _ = parse_output_lines(data)
            with paused_gc():  # as the engine does while it decodes a round
                return [by_key[line.custom_id].decode(line.body) for line in lines]

        def bare_decode() -> list[Synonyms]:
            return [Synonyms.model_validate_json(c) for c in contents]

        raw_lines = data.splitlines()

        def envelope_decode() -> list[Synonyms]:
            # The least any client must do: parse each line once, validate its content.
            return [
                Synonyms.model_validate_json(
                    json.loads(raw)["response"]["body"]["choices"][0]["message"]["content"]
                )
                for raw in raw_lines
            ]

        answers: list[tuple[str, JSON]] = [
            (line.custom_id, line.body) for line in parse_output_lines(data)[0]
        ]

        def store_answers() -> None:
            with Store(folder / f"store-{time.perf_counter_ns()}.sqlite3") as store:
                store.begin_run("run_bench", {})
                record = store.intend_shard(
                    run_id="run_bench",
                    shard=0,
                    attempt=1,
                    endpoint="/v1/chat/completions",
                    model="gpt-4o-mini",
                    custom_ids=[op.key for op in ops],
                )
                store.finish_shard(
                    record,
                    state="downloaded",
                    remote_status="completed",
                    answers=answers,
                    completed=n,
                    failed=0,
                    output_file_id="file-out",
                    error_file_id=None,
                )

        assert len(inert_decode()) == n
        write_inert, write_bare = best(inert_write, args.repeat), best(bare_write, args.repeat)
        decode_inert, decode_bare = best(inert_decode, args.repeat), best(bare_decode, args.repeat)
        decode_envelope = best(envelope_decode, args.repeat)
        storing = best(store_answers, max(1, args.repeat // 2))
        mem_write, mem_write_bare = peak(inert_write), peak(bare_write)
        mem_decode, mem_decode_bare = peak(inert_decode), peak(bare_decode)
        input_bytes = sum(p.stat().st_size for p in folder.glob("shard-*.jsonl"))

    mb = 1024 * 1024
    print(f"{n:,} requests; input JSONL {input_bytes / mb:.1f} MB; output {len(data) / mb:.1f} MB")
    print(
        f"build+write JSONL : inert {write_inert * 1000:7.1f} ms   json.dumps loop "
        f"{write_bare * 1000:7.1f} ms   ratio {write_inert / write_bare:.2f}x   "
        f"peak {mem_write / mb:.1f} MB (bare {mem_write_bare / mb:.1f} MB)"
    )
    print(
        f"parse+decode      : inert {decode_inert * 1000:7.1f} ms   model_validate_json "
        f"{decode_bare * 1000:7.1f} ms   ratio {decode_inert / decode_bare:.2f}x   "
        f"peak {mem_decode / mb:.1f} MB (bare {mem_decode_bare / mb:.1f} MB)"
    )
    print(
        f"  (against json.loads of each line + model_validate_json: "
        f"{decode_envelope * 1000:.1f} ms, ratio {decode_inert / decode_envelope:.2f}x)"
    )
    print(f"store answers     : {storing * 1000:7.1f} ms (one SQLite transaction, not in a ratio)")


if __name__ == "__main__":
    main()
