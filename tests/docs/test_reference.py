"""docs/reference.md is generated from the docstrings and kept in sync."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_reference_page_matches_the_docstrings() -> None:
    """Regenerating the page changes nothing; run scripts/gen_reference.py if it does."""
    spec = importlib.util.spec_from_file_location(
        "gen_reference", ROOT / "scripts" / "gen_reference.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    expected = module.render()
    assert expected == (ROOT / "docs" / "reference.md").read_text()
