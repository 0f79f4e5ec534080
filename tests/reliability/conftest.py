"""Fixtures of the reliability suite (its tally and summary are in tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from inert.emulator import Emulator, Faults


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
