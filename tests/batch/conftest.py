"""Fixtures: a fast in-process emulator, an SDK client on it, and a fresh store per test.

The client keeps the SDK's default retries (as a user's does) and talks through a
:class:`~tests.batch._transport.LossyTransport` (``wire``) that tests may tell to lose
answers on the wire.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import openai
import pytest

from inert import BatchRunner, Store
from inert.emulator import Emulator, Faults

from ._transport import LossyTransport, lossy_client

TIME_SCALE = 0.05
"""A whole emulated batch takes about 1.1 * TIME_SCALE seconds."""


@pytest.fixture(scope="session")
def batch_emulator() -> Iterator[Emulator]:
    """One emulator for the batch tests, with batches twenty times faster than default."""
    with Emulator(time_scale=TIME_SCALE, seed=0) as emulator:
        yield emulator


@pytest.fixture
def emu(batch_emulator: Emulator) -> Emulator:
    """The shared emulator with no faults and nothing stored or billed."""
    batch_emulator.set_faults(Faults())
    batch_emulator.set_latency_ms(0)
    batch_emulator.set_time_scale(TIME_SCALE)
    batch_emulator.reset()
    return batch_emulator


@pytest.fixture
def wire() -> LossyTransport:
    """The client's transport: forwards everything until a test tells it to lose answers."""
    return LossyTransport()


@pytest.fixture
async def client(emu: Emulator, wire: LossyTransport) -> AsyncIterator[openai.AsyncOpenAI]:
    """An async SDK client on the emulator, with the SDK's default retries."""
    async with lossy_client(emu.base_url, wire) as sdk:
        yield sdk


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    """Where this test's store lives."""
    return tmp_path / "store.sqlite3"


BOTH_BACKENDS = frozenset(
    {
        "test_journal",
        "test_batch_resume",
        "test_store",
        "test_cancel",
        "test_expired_files",
    }
)
"""Modules whose ``store`` runs on both backends: SQLite, and PostgreSQL (tests/_postgres.py)."""


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run the tests of :data:`BOTH_BACKENDS` that use ``store`` once per backend."""
    module = metafunc.definition.path.stem
    if module in BOTH_BACKENDS and "store" in metafunc.fixturenames:
        metafunc.parametrize("backend", ["sqlite", "postgresql"])


@pytest.fixture
def backend() -> str:
    """The store's backend (``sqlite``; both for the modules of :data:`BOTH_BACKENDS`)."""
    return "sqlite"


@pytest.fixture
def store(backend: str, store_path: Path, request: pytest.FixtureRequest) -> Iterator[Store]:
    """A fresh store for this test: a SQLite file, or a schema on the test PostgreSQL server."""
    location = str(store_path) if backend == "sqlite" else request.getfixturevalue("postgres_url")
    with Store(location) as opened:
        yield opened


@pytest.fixture
def runner(client: openai.AsyncOpenAI, store: Store) -> BatchRunner:
    """A batch runner that polls fast and shows no progress display."""
    return BatchRunner(
        client, store=store, poll_interval=0.01, poll_interval_max=0.05, progress=False
    )
