"""The typing tests pass both checkers users run, the public API is fully typed, and
the stubs in typestubs/ match the packages they describe.

The files beside this one are user code checked by mypy --strict and by basedpyright
(standard mode, VS Code's checker), never run. A line that must be rejected carries
both checkers' expected errors, ``# type: ignore[code]`` and ``# pyright:
ignore[rule]``; an ignore that no longer suppresses anything is an error in both
(``warn_unused_ignores``, ``reportUnnecessaryTypeIgnoreComment``), so a checker that
stops rejecting a mistake fails these tests.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TYPING = Path(__file__).resolve().parent
USER_CODE = sorted(p for p in TYPING.glob("*.py") if not p.name.startswith("test_"))
STUBBED = ["jiter"]  # every top-level package under typestubs/

# Trailing comments of code lines (two spaces before the hash, as ruff lays them out).
_MYPY_PIN = re.compile(r"  # type: ignore\[[\w\-, ]+\]")
_PYRIGHT_PIN = re.compile(r"  # pyright: ignore\[[\w, ]+\]")


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    # The venv's bin first: basedpyright asks `python` on PATH for the import paths.
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run(
        [sys.executable, "-m", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def test_every_rejected_line_is_pinned_for_both_checkers() -> None:
    """A line one checker must reject carries the other checker's expected error too."""
    unpinned = [
        f"{path.name}:{number}: {line.strip()}"
        for path in USER_CODE
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if bool(_MYPY_PIN.search(line)) != bool(_PYRIGHT_PIN.search(line))
    ]
    rejected = sum(len(_MYPY_PIN.findall(p.read_text())) for p in USER_CODE)
    assert [] == unpinned
    assert rejected >= 25


def test_typing_tests_pass_mypy_strict() -> None:
    """mypy accepts the user code and rejects exactly the lines pinned as mistakes.

    basedpyright checks the same files in ``./scripts/test``'s own basedpyright step
    (over src and tests); it is not run a second time here, to keep the suite fast.
    """
    result = _run("mypy", *(str(p) for p in USER_CODE))
    assert 0 == result.returncode, result.stdout + result.stderr


def test_every_public_symbol_has_a_known_type() -> None:
    """``basedpyright --verifytypes inert`` finds no public symbol of unknown or ambiguous type."""
    result = _run("basedpyright", "--verifytypes", "inert", "--ignoreexternal", "--outputjson")
    report = json.loads(result.stdout)
    completeness = report["typeCompleteness"]
    problems = [
        f"{s['name']}: {[d['message'] for d in s['diagnostics']]}"
        for s in completeness["symbols"]
        if not s["isTypeKnown"] or s["isTypeAmbiguous"]
    ]
    assert [] == problems
    assert 1.0 == completeness["completenessScore"]
    assert completeness["exportedSymbolCounts"]["withKnownType"] > 60


def test_stubs_match_the_installed_packages() -> None:
    """mypy's stubtest finds every stub in typestubs/ consistent with the package at run time."""
    result = _run("mypy.stubtest", *STUBBED, "--mypy-config-file", "pyproject.toml", "--concise")
    assert 0 == result.returncode, result.stdout + result.stderr
    assert sorted(STUBBED) == sorted(
        p.name for p in (ROOT / "typestubs").iterdir() if not p.name.startswith(".")
    )
