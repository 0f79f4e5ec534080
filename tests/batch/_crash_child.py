"""A child process for the crash tests: runs one batch round and freezes at a chosen point.

Usage: ``python _crash_child.py BASE_URL STORE MARKER POINT``. At ``POINT`` (upload,
create, poll or download) it writes ``MARKER`` right after the remote call has
succeeded and before the journal records it, then sleeps until the test kills it
with SIGKILL. With POINT ``none`` it runs to the end and prints the results.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import openai

from inert import BatchRunner, Store

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tests.batch._support import crash_requests


def freeze_after(
    resource: Any, name: str, marker: Path, when: Callable[[Any], bool] = lambda _: True
) -> None:
    """Replace ``resource.name`` so that its first successful call whose result satisfies
    ``when`` freezes the whole process (the event loop included) until it is killed."""
    original = getattr(resource, name)

    async def wrapped(*args: Any, **kwargs: Any) -> Any:
        result = await original(*args, **kwargs)
        if when(result):
            marker.write_text(name)  # noqa: ASYNC240 - the process must stop right here
            time.sleep(3600)  # noqa: ASYNC251 - blocking on purpose: nothing else may run
        return result

    setattr(resource, name, wrapped)


async def main(base_url: str, store_path: str, marker: Path, point: str) -> None:
    client = openai.AsyncOpenAI(base_url=base_url, api_key="sk-crash-test")
    if point == "upload":
        freeze_after(client.files, "create", marker)
    elif point == "create":
        freeze_after(client.batches, "create", marker)
    elif point == "poll":
        freeze_after(client.batches, "retrieve", marker, lambda b: b.status == "in_progress")
    elif point == "download":
        freeze_after(client.files, "content", marker)
    with Store(store_path) as store:
        runner = BatchRunner(client, store=store, poll_interval=0.02, poll_interval_max=0.05)
        results = await runner.run_all(crash_requests())
    print(json.dumps([r.words for r in results]))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], Path(sys.argv[3]), sys.argv[4]))
