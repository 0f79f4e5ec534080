"""The Python blocks of the markdown docs, and how a page's blocks are run.

A page is *pasteable* when no block uses top-level ``await``: its blocks, pasted in
order into one file, are a script that ``python`` runs as is (``asyncio.run`` for
async code, or the runners' blocking twins). Such a page runs here as that script,
outside any event loop. A page with top-level ``await`` reads like a notebook:
its blocks run in order inside one event loop, as in a notebook cell.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import attrs

ROOT = Path(__file__).resolve().parents[2]
FENCE = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)
PASTEABLE = ("README.md", "docs/index.md", "docs/testing.md", "docs/tutorial.md")
"""Pages a newcomer copies from: every block must run as pasted into a file."""


@attrs.frozen
class Block:
    """One python block: where it starts in its page (1-based line) and its code."""

    line: int
    code: str


def python_blocks(path: Path) -> list[Block]:
    """The python blocks of a markdown file, in order."""
    text = path.read_text()
    return [Block(text[: m.start()].count("\n") + 2, m.group(1)) for m in FENCE.finditer(text)]


def doc_pages() -> list[Path]:
    """README.md and every docs/*.md page that has a python block."""
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    return [page for page in pages if python_blocks(page)]


def parse(block: Block, path: Path, *, allow_await: bool) -> ast.Module:
    """A block's syntax tree, its line numbers those of the page."""
    flags = ast.PyCF_ONLY_AST | (ast.PyCF_ALLOW_TOP_LEVEL_AWAIT if allow_await else 0)
    tree = compile(block.code, f"{path.name}:{block.line}", "exec", flags=flags, dont_inherit=True)
    assert isinstance(tree, ast.Module)
    ast.increment_lineno(tree, block.line - 1)
    return tree


def uses_top_level_await(path: Path) -> bool:
    """Whether some block of the page awaits outside a function (notebook style)."""
    for block in python_blocks(path):
        try:  # the AST alone accepts top-level await: compiling it to code refuses it
            compile(parse(block, path, allow_await=False), str(path), "exec", dont_inherit=True)
        except SyntaxError:
            return True
    return False


def as_module(path: Path) -> str:
    """The page's blocks as one module whose line numbers are the page's lines."""
    parts: list[str] = []
    lines = 0
    for block in python_blocks(path):
        padding = block.line - 1 - lines
        parts.append("\n" * padding + block.code)
        lines += padding + block.code.count("\n")
    return "".join(parts)
