"""Start-up time: ``import inert`` and ``inert --help`` against ``python -c pass`` and ``import openai``.

Run: ``.venv/bin/python benchmarks/import_time.py [--repeats R]``.

Each command runs in a fresh interpreter (this one, ``sys.executable``), the four
commands interleaved, ``repeats`` times each; the median wall time is reported.
``python -c pass`` is the interpreter's own start, ``import openai`` what inert
cost when it loaded the SDK eagerly.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import Any, Final

COMMANDS: Final = {
    "python -c pass": ["-c", "pass"],
    "import inert": ["-c", "import inert"],
    "inert --help": ["-m", "inert", "--help"],
    "import openai": ["-c", "import openai"],
}
GOALS: Final = {"import inert": 0.35, "inert --help": 0.4}
"""Seconds of wall time, at most."""


def _once(args: Sequence[str]) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, *args], check=True, capture_output=True)
    return time.perf_counter() - started


def run(*, repeats: int = 15) -> dict[str, Any]:
    """Median seconds of each command; the result is plain JSON."""
    names = list(COMMANDS)
    for name in names:
        _once(COMMANDS[name])  # warm the file cache
    samples: dict[str, list[float]] = {name: [] for name in names}
    for rep in range(repeats):
        for name in names if rep % 2 == 0 else reversed(names):
            samples[name].append(_once(COMMANDS[name]))
    seconds = {name: statistics.median(values) for name, values in samples.items()}
    return {"name": "import_time", "repeats": repeats, "seconds": seconds, "goals": GOALS}


def render_text(result: dict[str, Any]) -> str:
    """One line per command, with its goal when it has one."""
    lines = []
    for name, value in result["seconds"].items():
        goal = GOALS.get(name)
        verdict = (
            "" if goal is None else f"  (goal ≤ {goal} s: {'met' if value <= goal else 'MISSED'})"
        )
        lines.append(f"{name:16} {value:6.3f} s{verdict}")
    lines.append(f"median of {result['repeats']} fresh interpreters each, interleaved")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: print the table and the result as one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args(argv)
    result = run(repeats=args.repeats)
    print(render_text(result))
    print("RESULT " + json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
