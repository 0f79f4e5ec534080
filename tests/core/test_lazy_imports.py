"""``import inert`` and ``inert --help`` load neither the SDKs, nor rich, nor the emulator."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = (
    "openai",
    "anthropic",
    "rich",
    "inert.emulator",
    "inert.openai",
    "inert.anthropic",
    "httpx",
)

PROBE = f"""
import contextlib, io, json, sys
heavy = {HEAVY!r}
import inert
after_import = [m for m in heavy if m in sys.modules]
from inert._cli import main
with contextlib.redirect_stdout(io.StringIO()) as out:
    try:
        main(["--help"])
    except SystemExit:
        pass
after_help = [m for m in heavy if m in sys.modules]
runner = inert.BatchRunner.__module__
print(json.dumps([after_import, after_help, "usage: inert" in out.getvalue(), runner]))
"""


def test_import_and_help_load_nothing_heavy_until_a_runner_is_used() -> None:
    """A fresh interpreter imports inert and prints the help without the SDK; a runner loads it."""
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True)
    after_import, after_help, printed_help, runner_module = json.loads(done.stdout)
    assert [] == after_import
    assert [] == after_help
    assert printed_help
    assert "inert" == runner_module
