"""Regenerate ``components.json``: the OpenAPI components the emulator serves, verbatim.

Run from the project root with a clone of openai/openai-openapi (PyYAML is needed
only for the legacy component):

    .venv/bin/python tests/emulator/openapi/vendor.py PATH/TO/openai-openapi

It copies, unchanged, every component reachable by ``$ref`` from ``ROOTS`` in
``openapi.json`` at ``COMMIT``, and ``BatchRequestOutput`` (the per-line object of
batch output and error files, no longer in the spec) from ``openapi.yaml`` at
``LEGACY_COMMIT``. Update the commits (and README.md) when refreshing.
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any, Final

COMMIT: Final = "f85dbe223d40e1a31cba812ab2d755c7e98a92a3"
LEGACY_COMMIT: Final = "498c71ddf6f1c45b983f972ccabca795da211a3e"
ROOTS: Final = (
    "Batch",
    "OpenAIFile",
    "ListFilesResponse",
    "ListBatchesResponse",
    "DeleteFileResponse",
    "ErrorResponse",
    "CreateChatCompletionResponse",
    "CreateEmbeddingResponse",
    "Response",
    "CreateCompletionResponse",
    "CreateModerationResponse",
)
LEGACY_ROOTS: Final = ("BatchRequestOutput",)
HERE: Final = Path(__file__).resolve().parent


def _show(repo: Path, commit: str, path: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), "show", f"{commit}:{path}"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout


def _refs(node: Any, found: set[str]) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                found.add(value.rsplit("/", 1)[-1])
            else:
                _refs(value, found)
    elif isinstance(node, list):
        for value in node:
            _refs(value, found)


def closure(schemas: dict[str, Any], roots: tuple[str, ...]) -> dict[str, Any]:
    """Every component reachable from ``roots``, in name order."""
    seen: set[str] = set()
    todo = list(roots)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        found: set[str] = set()
        _refs(schemas[name], found)
        todo.extend(found - seen)
    return {name: schemas[name] for name in sorted(seen)}


def main(argv: list[str]) -> int:
    """Write components.json from the clone named in ``argv``."""
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    repo = Path(argv[0])
    spec = json.loads(_show(repo, COMMIT, "openapi.json"))
    yaml = importlib.import_module("yaml")
    legacy = yaml.safe_load(_show(repo, LEGACY_COMMIT, "openapi.yaml"))
    legacy_schemas = closure(legacy["components"]["schemas"], LEGACY_ROOTS)
    document = {
        "x-source": {
            "repository": "https://github.com/openai/openai-openapi",
            "commit": COMMIT,
            "legacy_commit": LEGACY_COMMIT,
            "legacy_components": sorted(legacy_schemas),
            "licence": "MIT (LICENSE in this folder)",
        },
        "components": {"schemas": closure(spec["components"]["schemas"], ROOTS) | legacy_schemas},
    }
    (HERE / "components.json").write_text(json.dumps(document, indent=1, ensure_ascii=False) + "\n")
    (HERE / "LICENSE").write_text(_show(repo, COMMIT, "LICENSE"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
