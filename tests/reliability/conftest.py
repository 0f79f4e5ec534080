"""Fixtures of the reliability suite, and the summary of what it tried, printed at the end."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import pytest

from inert.emulator import Emulator, Faults

TALLY_KEY = pytest.StashKey[Counter[str]]()
"""Where the suite's counts live: requests, faults injected, kills, bad inputs, ..."""

TALLY_ORDER = (
    ("requests", "requests"),
    ("faults", "faults injected"),
    ("kills", "kills"),
    ("bad_inputs", "bad inputs"),
    ("files_scanned", "files scanned for the key"),
)


@pytest.fixture(scope="session")
def tally(pytestconfig: pytest.Config) -> Counter[str]:
    """The suite's counters; tests add what they tried."""
    return pytestconfig.stash.setdefault(TALLY_KEY, Counter())


@pytest.fixture(scope="session")
def reliability_emulator() -> Iterator[Emulator]:
    """One emulator for the suite; batches run in about a tenth of a second."""
    with Emulator(time_scale=0.1, seed=0) as emulator:
        yield emulator


@pytest.fixture
def emu(reliability_emulator: Emulator) -> Emulator:
    """The shared emulator with no faults, no latency, and nothing stored or billed."""
    reliability_emulator.set_faults(Faults())
    reliability_emulator.set_latency_ms(0)
    reliability_emulator.set_time_scale(0.1)
    reliability_emulator.reset()
    return reliability_emulator


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
