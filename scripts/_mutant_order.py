"""A pytest plugin for mutmut's runs of a piece: the tests of a mutant run fastest first.

mutmut passes the tests that reach a mutant's function in no particular order (a set)
and stops at the first failure (``-x``), so a mutant only the fast unit tests kill may
first sit through every emulator test that also reaches its function. With this plugin
(``-p _mutant_order``, loaded from ``scripts/`` by scripts/mutant_pieces.py) pytest runs
them by the call time mutmut measured (``mutants/mutmut-stats.json``), fastest first:
the same tests, the same verdicts, a killed mutant found sooner.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

STATS = Path("mutmut-stats.json")
"""mutmut runs the tests from its ``mutants/`` directory, where it keeps its stats."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Sort the collected tests by their measured call time (unmeasured ones last)."""
    try:
        durations: dict[str, float] = json.loads(STATS.read_text())["duration_by_test"]
    except (OSError, ValueError, KeyError):
        return  # the stats run itself, before any stats exist: mutmut's order
    items.sort(key=lambda item: durations.get(item.nodeid, math.inf))
