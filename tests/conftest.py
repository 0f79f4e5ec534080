"""Suite-wide hooks: the reliability tally, summed over pytest-xdist workers.

They live at the root because the pytest-xdist controller collects nothing, so it
never loads the conftest of a test folder: hooks it must run belong here.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings
from tests._postgres import (
    NO_SERVER,
    REQUIRE_VARIABLE,
    Cluster,
    fresh_schema,
    running_cluster,
    server_binaries,
    server_required,
)

# Hypothesis's per-example deadline is a timing assertion: on a loaded 2-core machine
# (or under mutation testing) a 200 ms example is no bug, so the suite never times
# examples; properties say what holds, benchmarks/ say how fast. Every test's own
# @settings(...) inherits this profile; HYPOTHESIS_PROFILE picks another one.
settings.register_profile("inert", deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "inert"))

TALLY_KEY = pytest.StashKey[Counter[str]]()
"""Where the reliability suite's counts live: requests, faults injected, kills, ..."""

WORKER_OUTPUT_KEY = "inert_reliability_tally"
"""Under pytest-xdist each worker counts for itself and sends its counts under this key."""

TALLY_ORDER = (
    ("requests", "requests"),
    ("faults", "faults injected"),
    ("kills", "kills"),
    ("bad_inputs", "bad inputs"),
    ("files_scanned", "files scanned for the key"),
)


@pytest.fixture(scope="session")
def tally(pytestconfig: pytest.Config) -> Counter[str]:
    """The reliability suite's counters; tests add what they tried."""
    return pytestconfig.stash.setdefault(TALLY_KEY, Counter())


def pytest_sessionfinish(session: pytest.Session) -> None:
    """On a pytest-xdist worker, hand this worker's counts to the controller."""
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:
        counts = session.config.stash.get(TALLY_KEY, None)
        workeroutput[WORKER_OUTPUT_KEY] = dict(counts or {})


@pytest.hookimpl(optionalhook=True)  # a pytest-xdist hook: only called when it runs workers
def pytest_testnodedown(node: Any, error: object) -> None:
    """On the pytest-xdist controller, add a finished worker's counts to the suite's.

    ``node`` is xdist's ``WorkerController``; xdist ships no type information.
    """
    counts = getattr(node, "workeroutput", {}).get(WORKER_OUTPUT_KEY)
    if counts:
        node.config.stash.setdefault(TALLY_KEY, Counter()).update(counts)


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, exitstatus: int, config: pytest.Config
) -> None:
    """Print the counts the reliability suite tried, on one line."""
    counts = config.stash.get(TALLY_KEY, None)
    if not counts:
        return
    parts = [f"{counts[key]} {label}" for key, label in TALLY_ORDER if key in counts]
    parts += [
        f"{value} {key}" for key, value in sorted(counts.items()) if key not in dict(TALLY_ORDER)
    ]
    terminalreporter.write_sep("-", "reliability")
    terminalreporter.write_line("reliability: " + ", ".join(parts))


# --- a throwaway PostgreSQL server (tests/_postgres.py), one per test process ------------


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[Cluster]:
    """A PostgreSQL server for this test process, started once and stopped at the end.

    Skipped, with the reason, only where the machine has no server binaries; where
    the server is required (``INERT_REQUIRE_POSTGRES=1``, as ``.ci/run`` sets, or
    ``CI`` set) a missing server fails instead, so the PostgreSQL tests cannot
    silently not run.
    """
    binaries = server_binaries()
    if binaries is None:
        if server_required(os.environ):
            pytest.fail(f"{NO_SERVER} ({REQUIRE_VARIABLE}=1 or CI is set: they must run here)")
        pytest.skip(NO_SERVER)
    with running_cluster(binaries) as cluster:
        yield cluster


@pytest.fixture
def postgres_url(postgres_cluster: Cluster) -> str:
    """The URL of an empty schema of its own on the test server (a new store per test)."""
    return fresh_schema(postgres_cluster)


@pytest.fixture(params=["sqlite", "postgresql"])
def store_location(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where a store of the parametrised backend lives: a SQLite path or a PostgreSQL URL."""
    if request.param == "sqlite":
        return str(tmp_path / "store.sqlite3")
    return str(request.getfixturevalue("postgres_url"))
