"""A child process for the Anthropic crash tests: one Message Batches round, frozen at a point.

Usage: ``python _anthropic_child.py ANTHROPIC_BASE_URL STORE MARKER POINT``. At
``POINT`` (create, poll or download) it writes ``MARKER`` right after the answer of
that call arrived (at the transport, below the SDK) and before the journal records
it, then blocks until the test kills it with SIGKILL.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import anthropic
import httpx2

from inert import BatchRunner, Store

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tests.batch._transport import LossyTransport
from tests.providers._anthropic_support import claude_requests


def in_progress(response: httpx2.Response) -> bool:
    """A poll answer that shows the batch running."""
    return bool(response.json().get("processing_status") == "in_progress")


async def main(base_url: str, store_path: str, marker: Path, point: str) -> None:
    transport = LossyTransport()
    batches = "/anthropic/v1/messages/batches"
    if point == "create":
        transport.freeze_after("POST", batches, marker)
    elif point == "poll":
        transport.freeze_after("GET", f"{batches}/[^/]+", marker, in_progress)
    elif point == "download":
        transport.freeze_after("GET", f"{batches}/[^/]+/results", marker)
    client = anthropic.AsyncAnthropic(
        base_url=base_url,
        api_key="sk-ant-test",
        http_client=httpx2.AsyncClient(transport=transport),
    )
    with Store(store_path) as store:
        runner = BatchRunner(anthropic=client, store=store, poll_interval=0.02, progress=False)
        await runner.run_all(claude_requests())


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], Path(sys.argv[3]), sys.argv[4]))
