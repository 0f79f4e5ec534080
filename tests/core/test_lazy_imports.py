"""``import inert`` and ``inert --help`` load neither the SDKs, nor rich, nor the emulator, nor the
store (sqlite3), nor attrs or returns: each is imported by the first use that needs it."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = (
    "openai",
    "anthropic",
    "rich",
    "inert.emulator",
    "inert.openai",
    "inert.anthropic",
    "httpx",
    "sqlite3",
    "inert._store",
    "inert._runner",
    "inert._engine",
    "attr",
    "attrs",
    "returns",
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


LAZY_NAMES = ("Store", "Runner", "BaseRunner", "RunReport", "FailureGroup", "Price")

USE_PROBE = f"""
import json, sys
import inert
loaded = {{}}
for name in {LAZY_NAMES!r}:
    value = getattr(inert, name)
    loaded[name] = [value.__module__, value is getattr(inert, name), name in vars(inert)]
from inert import Store
print(json.dumps([loaded, "sqlite3" in sys.modules, Store is inert.Store]))
"""


def test_a_name_imported_on_first_use_is_the_same_public_object_every_time() -> None:
    """``inert.Store`` (and the other lazy names) load their module once, say ``inert``, and stay."""
    done = subprocess.run(
        [sys.executable, "-c", USE_PROBE], capture_output=True, text=True, check=True
    )
    loaded, sqlite_loaded, same_store = json.loads(done.stdout)
    assert {name: ["inert", True, True] for name in LAZY_NAMES} == loaded
    assert sqlite_loaded
    assert same_store


def test_an_unknown_name_is_an_attribute_error() -> None:
    """A name ``inert`` does not export fails as a plain attribute lookup does."""
    import inert

    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        getattr(inert, "Nope")  # noqa: B009 - a name the checkers rightly do not know
