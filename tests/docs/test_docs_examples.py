"""Every ``python`` code block in README.md and docs/*.md runs, so the docs cannot rot.

The blocks of one file run in order in one namespace (later blocks may use names
from earlier ones), with top-level ``await`` allowed, as in a notebook. A block
fenced as ``text`` or ``console`` is output, not code, and is not run.
"""

from __future__ import annotations

import ast
import asyncio
import os
import re
import types
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FENCE = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)


def python_blocks(path: Path) -> list[tuple[int, str]]:
    """``(line, code)`` of each python block of a markdown file."""
    text = path.read_text()
    return [(text[: m.start()].count("\n") + 2, m.group(1)) for m in FENCE.finditer(text)]


DOCS = [p for p in sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md")]) if python_blocks(p)]


@pytest.mark.parametrize("path", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_python_blocks_run(path: Path, tmp_path: Path) -> None:
    """Each block compiles and runs without raising (its own asserts included)."""
    blocks = python_blocks(path)
    namespace: dict[str, object] = {"__name__": f"docs_{path.stem}"}
    cwd = os.getcwd()
    os.chdir(tmp_path)  # blocks that make a Store write into a scratch directory
    try:

        async def run_all_blocks() -> None:
            for line, code in blocks:
                tree = ast.parse(code, filename=f"{path.name}:{line}")
                ast.increment_lineno(tree, line - 1)
                compiled = compile(tree, str(path), "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
                result = eval(compiled, namespace)  # running our own docs is the point
                if isinstance(result, types.CoroutineType):
                    await result

        asyncio.run(run_all_blocks())
    finally:
        os.chdir(cwd)
