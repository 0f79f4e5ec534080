"""Every ``python`` code block in README.md and docs/*.md runs, so the docs cannot rot.

A pasteable page (no top-level ``await``) runs as the script its blocks make,
outside any event loop; a notebook-style page runs its blocks in order inside
one event loop. A block fenced as ``text`` or ``console`` is output, not code.
"""

from __future__ import annotations

import ast
import asyncio
import gc
import os
import types
import warnings
from pathlib import Path

import pytest

from ._blocks import PASTEABLE, ROOT, doc_pages, parse, python_blocks, uses_top_level_await

DOCS = doc_pages()


def _run_blocks(path: Path, namespace: dict[str, object]) -> None:
    if not uses_top_level_await(path):
        for block in python_blocks(path):
            code = compile(parse(block, path, allow_await=False), str(path), "exec")
            exec(code, namespace)  # running our own docs is the point
        return

    async def in_one_loop() -> None:
        for block in python_blocks(path):
            tree = parse(block, path, allow_await=True)
            code = compile(tree, str(path), "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
            result = eval(code, namespace)  # running our own docs is the point
            if isinstance(result, types.CoroutineType):
                await result

    asyncio.run(in_one_loop())


@pytest.mark.parametrize("path", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_python_blocks_run(path: Path, tmp_path: Path) -> None:
    """Each block runs without raising (its own asserts included); a newcomer's page leaks no
    connection (an unclosed client warns when collected)."""
    namespace: dict[str, object] = {"__name__": f"docs_{path.stem}"}
    cwd = os.getcwd()
    os.chdir(tmp_path)  # blocks that make a Store write into a scratch directory
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ResourceWarning)
            _run_blocks(path, namespace)
            namespace.clear()
            gc.collect()
    finally:
        os.chdir(cwd)
    leaks = [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]
    if str(path.relative_to(ROOT)) in PASTEABLE:
        assert [] == leaks


@pytest.mark.parametrize("page", PASTEABLE)
def test_a_newcomers_page_runs_as_pasted_into_a_file(page: str) -> None:
    """No block of these pages awaits at top level, so pasted into a file they are a script."""
    assert not uses_top_level_await(ROOT / page)
