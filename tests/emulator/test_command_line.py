"""The command-line emulator: a key from the environment, an access log, quiet disconnects."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import openai
import pytest

from inert.emulator import Emulator

SECRET = "sk-from-the-environment-7f3a"
MESSAGES: list[Any] = [{"role": "user", "content": "hello"}]


@attrs.frozen
class Served:
    """A running ``python -m inert.emulator`` and the file its stderr goes to."""

    process: subprocess.Popen[str]
    base_url: str
    stderr: Path

    def log(self, needle: str) -> str:
        """Stderr so far, once it contains ``needle`` (waits for the server to write it)."""
        deadline = time.monotonic() + 30
        text = self.stderr.read_text()
        while needle not in text and time.monotonic() < deadline:
            time.sleep(0.02)
            text = self.stderr.read_text()
        return text


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """The emulator served from the command line with its key in the environment and an access log."""
    stderr = tmp_path_factory.mktemp("emulator") / "stderr.txt"
    env = os.environ | {"INERT_EMULATOR_API_KEY": SECRET}
    with stderr.open("w") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "inert.emulator", "--port", "0", "--access-log"],
            stdout=subprocess.PIPE,
            stderr=sink,
            text=True,
            env=env,
        )
    try:
        assert process.stdout is not None
        base_url = process.stdout.readline().rsplit(" ", 1)[-1].strip()
        yield Served(process, base_url, stderr)
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_the_key_comes_from_the_environment(served: Served) -> None:
    """With INERT_EMULATOR_API_KEY set, that key is required, and it is not on the command line."""
    with (
        openai.OpenAI(base_url=served.base_url, api_key="wrong", max_retries=0) as sdk,
        pytest.raises(openai.AuthenticationError),
    ):
        sdk.files.list()
    with openai.OpenAI(base_url=served.base_url, api_key=SECRET, max_retries=0) as sdk:
        assert [] == sdk.files.list().data
    command_line = Path(f"/proc/{served.process.pid}/cmdline").read_bytes()
    assert SECRET.encode() not in command_line


def test_the_access_log_has_a_line_per_request_and_no_key(served: Served) -> None:
    """--access-log writes method, path and status of each request to stderr, never the key."""
    with openai.OpenAI(base_url=served.base_url, api_key=SECRET, max_retries=0) as sdk:
        sdk.chat.completions.create(model="m", messages=MESSAGES)
        with pytest.raises(openai.NotFoundError):
            sdk.files.retrieve("file-missing")
    text = served.log('"GET /v1/files/file-missing" 404')
    assert '"POST /v1/chat/completions" 200' in text
    assert '"GET /v1/files/file-missing" 404' in text
    assert SECRET not in text


def test_a_client_dropping_mid_request_leaves_no_traceback(served: Served) -> None:
    """A client that closes its connection halfway through sending a body causes no traceback."""
    host, port = served.base_url.split("//")[1].split("/")[0].split(":")
    with socket.create_connection((host, int(port))) as raw:
        raw.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: emulator\r\n"
            + f"Authorization: Bearer {SECRET}\r\n".encode()
            + b"Content-Type: application/json\r\nContent-Length: 5000\r\n\r\n"
            + b'{"model": "m", "messages": ['
        )
    text = served.log("client disconnected")
    assert '"POST /v1/chat/completions" - ' in text
    assert "Traceback" not in text
    assert "ClientDisconnect" not in text
    with openai.OpenAI(base_url=served.base_url, api_key=SECRET, max_retries=0) as sdk:
        assert [] == sdk.batches.list().data


def test_access_log_in_process_goes_to_its_logger(caplog: pytest.LogCaptureFixture) -> None:
    """Emulator(access_log=True) logs at INFO on inert.emulator.access, with injected drops marked."""
    caplog.set_level("INFO", logger="inert.emulator.access")
    with (
        Emulator(access_log=True) as emu,
        openai.OpenAI(base_url=emu.base_url, api_key="k", max_retries=0) as sdk,
    ):
        emu.inject("batches.list", "disconnect")
        with pytest.raises(openai.APIConnectionError):
            sdk.batches.list()
        sdk.batches.list(limit=3)
    lines = [r.getMessage() for r in caplog.records if r.name == "inert.emulator.access"]
    assert any('"GET /v1/batches" 200' in line and "dropped (injected)" in line for line in lines)
    assert any('"GET /v1/batches?limit=3" 200' in line for line in lines)


def test_no_access_log_by_default(
    emu: Emulator, client: openai.OpenAI, caplog: pytest.LogCaptureFixture
) -> None:
    """Without access_log nothing is logged per request."""
    caplog.set_level("INFO", logger="inert.emulator.access")
    client.files.list()
    assert [] == [r for r in caplog.records if r.name == "inert.emulator.access"]


def test_the_announced_address_already_accepts_connections() -> None:
    """A client that connects the moment it reads the address is queued, not refused.

    ``serve_forever`` announces the address before uvicorn's loop starts; the socket
    must listen by then. The announcement connects and then interrupts the server
    (as Ctrl-C would), so the check runs in the gap between the two.
    """
    connected: list[str] = []

    def announce(url: str) -> None:
        host, port = url.split("//")[1].split("/")[0].split(":")
        with socket.create_connection((host, int(port)), timeout=5):
            connected.append(url)
        raise KeyboardInterrupt

    Emulator(port=0).serve_forever(announce)
    assert 1 == len(connected)
