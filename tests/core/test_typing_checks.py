"""The typing tests in tests/typing pass mypy --strict, rejected lines included."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_typing_tests_pass_mypy_strict() -> None:
    """mypy accepts the user code there and rejects exactly the lines marked as mistakes.

    ``warn_unused_ignores`` is on, so a ``# type: ignore[code]`` line that mypy no
    longer rejects makes this fail too. It shares mypy's cache with ``./scripts/test``'s
    own mypy run (same configuration), so there it only rechecks what changed.
    """
    files = sorted(str(p) for p in (ROOT / "tests" / "typing").glob("*.py"))
    rejected = sum(Path(f).read_text().count("# type: ignore[") for f in files)
    result = subprocess.run(
        [sys.executable, "-m", "mypy", *files],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert rejected >= 5
