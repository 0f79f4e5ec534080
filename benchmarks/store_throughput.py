"""Store write and lookup throughput, SQLite against PostgreSQL, in one run.

Run: ``.venv/bin/python benchmarks/store_throughput.py [--responses N] [--repeat R]``.

Each backend stores ``N`` (50,000) chat answers the way a batch round does (one
``put_responses`` per shard of ``--shard`` answers), then looks every key up again
the way the next run does (``get_responses`` per shard), and looks up ``N`` keys that
are not stored (a fresh round). The SQLite store is a file in a temporary directory;
the PostgreSQL store is a throwaway local server (tests/_postgres.py: ``initdb`` +
``pg_ctl``, unix socket, ``fsync=off`` as a test cluster runs) on the same machine.
Figures are ops/s, best of ``--repeat`` fresh stores; the ratios (PostgreSQL /
SQLite) come from the same run. ``--markdown`` prints the section of
docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make `tests` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests._postgres import fresh_schema, running_cluster, server_binaries

from inert import Op, Store
from inert._json import JSON


def build(n: int, salt: str) -> list[tuple[Op[JSON], JSON]]:
    """``n`` chat ops with answers of a realistic size (about 700 bytes), keys computed."""
    entries: list[tuple[Op[JSON], JSON]] = []
    for i in range(n):
        op: Op[JSON] = Op(
            endpoint="/v1/chat/completions",
            body={
                "model": "gpt-4o-mini",
                "messages": [{"role": "user", "content": f"{salt} synonyms of word {i}"}],
            },
            decode=lambda raw: raw,
        )
        _ = op.key
        answer: JSON = {
            "id": f"chatcmpl-{i:024x}",
            "object": "chat.completion",
            "created": 1_700_000_000,
            "model": "gpt-4o-mini-2024-07-18",
            "choices": [
                {
                    "index": 0,
                    "message": {
                        "role": "assistant",
                        "content": '{"words": ["quick", "rapid", "swift", "fleet", "brisk"], '
                        f'"confidence": 0.{i % 10}}}',
                        "refusal": None,
                    },
                    "finish_reason": "stop",
                    "logprobs": None,
                }
            ],
            "usage": {"prompt_tokens": 41, "completion_tokens": 23, "total_tokens": 64},
            "system_fingerprint": "fp_0123456789",
        }
        entries.append((op, answer))
    return entries


def _shards(items: Sequence[Any], size: int) -> list[Sequence[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def measure(open_store: Callable[[], Store], n: int, shard: int, repeat: int) -> dict[str, float]:
    """Best ops/s over ``repeat`` fresh stores: writes, lookups of stored and of absent keys."""
    best = {"write": 0.0, "lookup": 0.0, "miss": 0.0}
    for r in range(repeat):
        entries = build(n, f"run{r}")
        absent = [op.key for op, _ in build(n, f"absent{r}")]
        keys = [op.key for op, _ in entries]
        with open_store() as store:
            started = time.perf_counter()
            for part in _shards(entries, shard):
                store.put_responses(part, source="batch")
            wrote = time.perf_counter() - started
            started = time.perf_counter()
            found = 0
            for part in _shards(keys, shard):
                found += len(store.get_responses(part))
            looked = time.perf_counter() - started
            started = time.perf_counter()
            missed = sum(len(store.get_responses(part)) for part in _shards(absent, shard))
            miss = time.perf_counter() - started
            assert found == n, f"{found} of {n} answers found"
            assert missed == 0
        best["write"] = max(best["write"], n / wrote)
        best["lookup"] = max(best["lookup"], n / looked)
        best["miss"] = max(best["miss"], n / miss)
    return best


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--responses", type=int, default=50_000)
    parser.add_argument("--shard", type=int, default=5_000, help="answers per transaction")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--markdown", action="store_true", help="print the docs section")
    args = parser.parse_args(argv)
    binaries = server_binaries()
    if binaries is None:
        print("no PostgreSQL server binaries on this machine: install the postgresql package")
        return 2
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as folder:
        counter = iter(range(1_000_000))

        def sqlite() -> Store:
            return Store(Path(folder) / f"store{next(counter)}.sqlite3")

        results["SQLite"] = measure(sqlite, args.responses, args.shard, args.repeat)
        with running_cluster(binaries) as cluster:
            results["PostgreSQL"] = measure(
                lambda: Store(fresh_schema(cluster)), args.responses, args.shard, args.repeat
            )
    lite, pg = results["SQLite"], results["PostgreSQL"]
    rows = [
        ("write (put_responses)", "write"),
        ("lookup, stored (get_responses)", "lookup"),
        ("lookup, not stored", "miss"),
    ]
    print(
        f"store_throughput: {args.responses:,} responses, {args.shard:,} per transaction, "
        f"best of {args.repeat}, Python {platform.python_version()}, {platform.machine()}"
    )
    for label, key in rows:
        print(
            f"{label:32} SQLite {lite[key]:>10,.0f} ops/s   PostgreSQL {pg[key]:>10,.0f} ops/s"
            f"   ratio {pg[key] / lite[key]:.2f}"
        )
    if args.markdown:
        print()
        print("| operation | SQLite (ops/s) | PostgreSQL (ops/s) | PostgreSQL / SQLite |")
        print("|---|---:|---:|---:|")
        for label, key in rows:
            print(f"| {label} | {lite[key]:,.0f} | {pg[key]:,.0f} | {pg[key] / lite[key]:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
