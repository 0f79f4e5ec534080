"""A child process for the crash tests: runs one batch round and freezes at a chosen point.

Usage: ``python _crash_child.py BASE_URL STORE MARKER POINT``. At ``POINT`` (upload,
create, poll or download) it writes ``MARKER`` right after the answer of the remote
call arrived (at the transport, below the SDK) and before the journal records it,
then sleeps until the test kills it with SIGKILL. With POINT ``none`` it runs to the end and prints the results.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import httpx2

from inert import BatchRunner, Store

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tests.batch._support import crash_requests
from tests.batch._transport import LossyTransport, lossy_client


def in_progress(response: httpx2.Response) -> bool:
    """A poll answer that shows the batch running."""
    return bool(response.json().get("status") == "in_progress")


async def main(base_url: str, store_path: str, marker: Path, point: str) -> None:
    transport = LossyTransport()
    if point == "upload":
        transport.freeze_after("POST", "/v1/files", marker)
    elif point == "create":
        transport.freeze_after("POST", "/v1/batches", marker)
    elif point == "poll":
        transport.freeze_after("GET", "/v1/batches/[^/]+", marker, in_progress)
    elif point == "download":
        transport.freeze_after("GET", "/v1/files/[^/]+/content", marker)
    client = lossy_client(base_url, transport)
    with Store(store_path) as store:
        runner = BatchRunner(client, store=store, poll_interval=0.02, poll_interval_max=0.05)
        results = await runner.run_all(crash_requests())
    print(json.dumps([r.words for r in results]))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], Path(sys.argv[3]), sys.argv[4]))
