"""A child process for the concurrency tests: wait for a go file, then open stores and write.

Usage: ``python _open_child.py GO_FILE NAME ANSWERS STORE...``. Imports happen before
the wait, so the children open each store within a millisecond or so of each other.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from inert import Op, Store


def main(go: str, name: str, answers: int, stores: list[str]) -> None:
    """Once ``go`` exists, open each store in turn and write ``answers`` answers, one per write."""
    ops = [
        Op(endpoint="/v1/x", body={"by": name, "i": i}, decode=lambda raw: raw)
        for i in range(answers)
    ]
    flag = Path(go)
    while not flag.exists():
        time.sleep(0.001)
    for path in stores:
        with Store(path) as store:
            for op in ops:
                store.put_responses([(op, {"by": name})])
    print("ok", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4:])
