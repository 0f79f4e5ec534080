"""Every ``python`` block of README.md and docs/*.md passes ``mypy --strict``.

A page's blocks are checked as one module (later blocks use names from earlier
ones), with the project's mypy configuration. Two allowances, set inline for the
docs modules only: a name may be bound again with another type (each example of
a page starts afresh), and notebook-style pages may await at top level (the
pasteable pages may not; tests/docs/test_docs_examples.py checks that).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from ._blocks import ROOT, as_module, doc_pages

WRITTEN = ROOT / ".mypy_cache" / "doc-blocks"
"""Where the modules are written: one fixed place, as mypy's cache knows a module by its path."""
INLINE_CONFIG = '# mypy: allow-redefinition, disable-error-code="no-redef,top-level-await"'
"""On the module's first line, which is blank in every page (a fence comes first)."""


def test_every_doc_block_passes_mypy_strict() -> None:
    """mypy --strict accepts the blocks of every page; a failure names the page and its line."""
    WRITTEN.mkdir(parents=True, exist_ok=True)
    modules: dict[str, str] = {}
    for page in doc_pages():
        module = WRITTEN / f"docs_{page.stem.lower()}.py"
        shown = str(page.relative_to(ROOT))
        module.write_text(f"{INLINE_CONFIG}{as_module(page)}\n# the blocks of {shown}\n")
        modules[str(module)] = shown
    # The project's configuration and cache: the modules inert and its dependencies
    # were checked with are reused, so only the docs are checked anew.
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml"), *modules],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    report = result.stdout
    for written, shown in modules.items():  # mypy names them relative to its directory
        report = report.replace(str(Path(written).relative_to(ROOT)), shown)
    assert 0 == result.returncode, report
