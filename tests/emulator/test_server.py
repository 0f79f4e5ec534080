"""Starting and stopping the emulator, its public names, and the command line."""

from __future__ import annotations

import subprocess
import sys
import threading

import openai

import inert.emulator
from inert.emulator import Emulator


def test_public_names_are_exactly_all() -> None:
    """inert.emulator exports exactly the names in __all__."""
    public = sorted(
        name for name in vars(inert.emulator) if name.isidentifier() and not name.startswith("_")
    )
    assert sorted(inert.emulator.__all__) == public


def test_starts_on_a_free_port_and_stops_its_thread() -> None:
    """An emulator serves on a free port and leaves no thread behind.

    Its start time is measured by benchmarks/emulator_throughput.py, not here.
    """
    before = threading.active_count()
    with Emulator() as emulator:
        assert emulator.port > 0
        assert f"http://127.0.0.1:{emulator.port}/v1" == emulator.base_url
    assert before == threading.active_count()


async def test_async_context_manager_serves() -> None:
    """``async with Emulator()`` serves an AsyncOpenAI client."""
    async with (
        Emulator() as emulator,
        openai.AsyncOpenAI(base_url=emulator.base_url, api_key="k") as sdk,
    ):
        completion = await sdk.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "hi"}]
        )
    assert "m" == completion.model


def test_python_m_serves_on_the_given_port() -> None:
    """``python -m inert.emulator --port 0`` prints its URL and answers the SDK."""
    process = subprocess.Popen(
        [sys.executable, "-m", "inert.emulator", "--port", "0", "--fault", "refusal=1"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        base_url = line.rsplit(" ", 1)[-1].strip()
        with openai.OpenAI(base_url=base_url, api_key="k", max_retries=3) as sdk:
            completion = sdk.chat.completions.create(
                model="m", messages=[{"role": "user", "content": "hi"}]
            )
        assert completion.choices[0].message.refusal is not None
    finally:
        process.terminate()
        process.wait(timeout=10)
