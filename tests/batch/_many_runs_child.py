"""A child process for the many-runs tests: one run on a shared store, or one frozen mid-shard.

Usage: ``python _many_runs_child.py BASE_URL STORE [--lease S] [--delay S]
[--requests N] [--max-per-batch M] [--host NAME]
[--freeze POINT MARKER [--nth K] | --pause POINT MARKER RELEASE]``.
It runs the two-round requests of :mod:`tests.batch._many_runs` (``--requests`` of
them) through a ``BatchRunner`` on ``STORE`` (a SQLite path or a PostgreSQL URL),
``--max-per-batch`` lines per shard, over a slow network (``--delay`` seconds per
upload and per create), and prints one JSON line: ``{"answers": [...], "report":
{...}}`` (the run's figures), or ``{"refused": "..."}`` (exit status 3) when the
store refused the run with a :class:`~inert.errors.StoreError`. With ``--freeze``
it runs the one-round crash requests instead (the two-round ones if ``--requests``
is given) and, at the ``--nth`` answer of POINT (upload, create or poll, as in
``_crash_child.py``), writes MARKER and blocks the whole process (heartbeat
included) until it is killed. ``--pause`` blocks it the same way only until the file
RELEASE exists, then goes on: ``{"failed": "..."}`` (exit status 4) is then a run
that ended with a :class:`~inert.RequestError` instead of its answers. ``--host``
journals the run as on another machine (``socket.gethostname`` answers NAME): nobody
can then see its process end, and its shards are taken over only when its lease
runs out, as a dead machine's are.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import sys
import time
from pathlib import Path

import httpx2

from inert import RequestError, RunReport, Store
from inert.errors import StoreError

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tests.batch._many_runs import (
    NETWORK_DELAY,
    REQUESTS,
    SlowNetwork,
    batch_runner,
    many_run_requests,
    slow_client,
)
from tests.batch._support import crash_requests
from tests.batch._transport import Check, LossyTransport

REFUSED = 3
"""The exit status of a run the store refused."""
FAILED = 4
"""The exit status of a run that ended with a RequestError."""


def in_progress(response: httpx2.Response) -> bool:
    """A poll answer that shows the batch running."""
    return bool(response.json().get("status") == "in_progress")


def nth(n: int, check: Check | None = None) -> Check:
    """A check true at the ``n``-th answer that passes ``check`` (every answer if ``None``)."""
    seen = 0

    def counted(response: httpx2.Response) -> bool:
        nonlocal seen
        if check is not None and not check(response):
            return False
        seen += 1
        return seen == n

    return counted


def freeze(transport: LossyTransport, point: str, marker: Path, n: int = 1) -> None:
    """Block the process right after the ``n``-th answer of the remote call at ``point``."""
    if point == "upload":
        transport.freeze_after("POST", "/v1/files", marker, nth(n))
    elif point == "create":
        transport.freeze_after("POST", "/v1/batches", marker, nth(n))
    elif point == "poll":
        transport.freeze_after("GET", "/v1/batches/[^/]+", marker, nth(n, in_progress))
    else:
        raise SystemExit(f"unknown freeze point {point!r}")


def pause(transport: LossyTransport, point: str, marker: Path, release: Path) -> None:
    """Block the process right after the answer at ``point`` arrived, until ``release`` exists."""

    def hold(_: httpx2.Response) -> None:
        marker.write_text(point)
        while not release.exists():
            time.sleep(0.01)  # blocking on purpose: the event loop (and heartbeat) stand still

    if point == "upload":
        transport.on_answer("POST", "/v1/files", hold)
    elif point == "create":
        transport.on_answer("POST", "/v1/batches", hold)
    else:
        raise SystemExit(f"unknown pause point {point!r}")


def figures(report: RunReport) -> dict[str, int]:
    """What the test reads of a run's report: who paid for what."""
    return {
        "batches_created": report.batches_created,
        "ops_paid": report.ops_paid,
        "ops_sent": report.ops_sent,
        "cache_hits": report.cache_hits,
        "prompt_tokens": report.prompt_tokens,
        "completion_tokens": report.completion_tokens,
    }


async def main(args: argparse.Namespace) -> int:
    if args.host is not None:
        socket.gethostname = lambda: str(args.host)  # as if this run were on another machine
    transport = LossyTransport()
    if args.freeze:
        point, marker = args.freeze
        freeze(transport, point, Path(marker), args.nth)
    if args.pause:
        point, marker, release = args.pause
        pause(transport, point, Path(marker), Path(release))
    network = SlowNetwork(args.delay, inner=transport)
    async with slow_client(args.base_url, network) as client:
        try:
            with Store(args.store) as store:
                runner = batch_runner(
                    client, store, lease=args.lease, max_requests_per_batch=args.max_per_batch
                )
                if (args.freeze or args.pause) and args.requests is None:
                    crashed = await runner.run_all(crash_requests())
                    print(json.dumps({"answers": [r.words for r in crashed]}))
                else:
                    answers = await runner.run_all(many_run_requests(args.requests or REQUESTS))
                    print(json.dumps({"answers": answers, "report": figures(runner.report)}))
        except StoreError as refused:
            print(json.dumps({"refused": f"{type(refused).__name__}: {refused}"}))
            return REFUSED
        except RequestError as failed:
            print(json.dumps({"failed": f"{type(failed).__name__}: {failed}"}))
            return FAILED
    return 0


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("base_url")
    parser.add_argument("store")
    parser.add_argument("--lease", type=float, default=None)
    parser.add_argument("--delay", type=float, default=NETWORK_DELAY)
    parser.add_argument("--requests", type=int, default=None)
    parser.add_argument("--max-per-batch", type=int, default=None)
    parser.add_argument("--host", default=None)
    parser.add_argument("--freeze", nargs=2, metavar=("POINT", "MARKER"), default=None)
    parser.add_argument("--nth", type=int, default=1)
    parser.add_argument("--pause", nargs=3, metavar=("POINT", "MARKER", "RELEASE"), default=None)
    return parser.parse_args(argv)


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse(sys.argv[1:]))))
