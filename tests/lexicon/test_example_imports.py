"""The example imports only what a user's synthesis code would: inert's public names."""

from __future__ import annotations

import ast
from pathlib import Path

import lexicon

EXAMPLE = Path(lexicon.__file__).parent
ALLOWED_INERT = {"inert", "inert.openai", "inert.anthropic", "inert.errors"}
"""What synthesis code uses: requests, builders, errors (not the emulator, testing, or privates)."""


def imported_modules(path: Path) -> set[str]:
    """Every module a source file imports."""
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module is not None:
            names.add(node.module)
    return names


def test_the_example_imports_no_demo_emulator_or_private_module() -> None:
    """No module of ``src/lexicon`` imports the demo driver, the emulator or a private module."""
    wrong = {
        f"{path.name}: {name}"
        for path in sorted(EXAMPLE.glob("*.py"))
        for name in imported_modules(path)
        if (name.startswith("inert") and name not in ALLOWED_INERT)
        or name.startswith("lexicon_demo")
    }
    assert set() == wrong
