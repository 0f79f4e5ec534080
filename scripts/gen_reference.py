"""Write docs/reference.md from the docstrings of every public name.

Run ``python scripts/gen_reference.py`` after changing the public surface; a test
(tests/docs/test_reference.py) fails while docs/reference.md is out of date.
"""

from __future__ import annotations

import importlib
import inspect
import sys
from pathlib import Path

MODULES = [
    "inert",
    "inert.openai",
    "inert.anthropic",
    "inert.errors",
    "inert.testing",
    "inert.emulator",
]
OUT = Path(__file__).resolve().parents[1] / "docs" / "reference.md"


def _signature(obj: object) -> str:
    try:
        return str(inspect.signature(obj))  # type: ignore[arg-type]  # any callable; failures handled below
    except (TypeError, ValueError):
        return ""


def _entry(module: str, name: str, obj: object) -> list[str]:
    doc = inspect.getdoc(obj) or "(no docstring)"
    if inspect.isclass(obj):
        head = f"### `{module}.{name}`\n\nclass `{name}{_signature(obj.__init__)}`".replace(
            "(self, ", "("
        ).replace("(self)", "()")
        lines = [head, "", doc, ""]
        for member_name, member in sorted(vars(obj).items()):
            if member_name.startswith("_") or not (
                inspect.isfunction(member) or isinstance(member, property)
            ):
                continue
            member_doc = (inspect.getdoc(member) or "").split("\n\n")[0]
            if isinstance(member, property):
                lines.append(f"- `.{member_name}` (property): {member_doc}")
            else:
                sig = _signature(member).replace("(self, ", "(").replace("(self)", "()")
                lines.append(f"- `.{member_name}{sig}`: {member_doc}")
        return [*lines, ""]
    if callable(obj):
        return [f"### `{module}.{name}{_signature(obj)}`", "", doc, ""]
    return [f"### `{module}.{name}`", "", doc, ""]


def render() -> str:
    """The whole reference page."""
    lines = [
        "# Reference",
        "",
        "Every public name, generated from the docstrings by `scripts/gen_reference.py`",
        "(a test fails when this page is out of date).",
        "",
    ]
    for module_name in MODULES:
        module = importlib.import_module(module_name)
        lines += [f"## `{module_name}`", "", (inspect.getdoc(module) or "").split("\n\n")[0], ""]
        for name in module.__all__:
            lines += _entry(module_name, name, getattr(module, name))
    return "\n".join(lines).rstrip() + "\n"


def main() -> int:
    OUT.write_text(render())
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
