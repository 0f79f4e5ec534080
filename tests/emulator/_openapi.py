"""The vendored OpenAPI components, as JSON Schema validators (``jsonschema`` + ``referencing``).

OpenAPI 3.1 schemas are JSON Schema 2020-12, so they validate as they are, with
``$ref`` resolved inside the vendored document, apart from three documented
relaxations where the spec is known to be narrower than the service it describes:

1. A property that is not ``required`` may be ``null``. The spec omits nullability
   that the real API sends and the SDK's types allow: its own ``Batch`` example has
   ``"failed_at": null``, ``"errors": null``.
2. ``first_id`` and ``last_id`` of a list may be ``null`` (an empty page has no
   first or last object).
3. The legacy ``BatchRequestOutput`` (OpenAPI 3.0) marks nullability with
   ``nullable: true``, which becomes ``anyOf [..., null]``.
4. ``Embedding.embedding`` may be a string: ``CreateEmbeddingRequest`` offers
   ``encoding_format: "base64"`` (which the SDK sends by default and decodes
   itself), but the ``Embedding`` component lists only the array of floats.

Nothing else is relaxed: wrong types, missing required fields and enum values
outside the spec fail.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any, Final

from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

COMPONENTS: Final = Path(__file__).resolve().parent / "openapi" / "components.json"
URI: Final = "urn:openai-openapi"
NULL: Final = {"type": "null"}
CURSORS: Final = ("first_id", "last_id")


def _nullable(schema: Any) -> Any:
    return {"anyOf": [schema, NULL]}


def relax(node: Any) -> Any:
    """The three relaxations above, applied throughout a schema."""
    if isinstance(node, list):
        return [relax(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: relax(value) for key, value in node.items()}
    if out.pop("nullable", False) is True:
        out = _nullable(out)
        inner = out["anyOf"][0]
    else:
        inner = out
    properties = inner.get("properties")
    if isinstance(properties, dict):
        required = set(inner.get("required", []))
        inner["properties"] = {
            name: _nullable(schema) if name not in required or name in CURSORS else schema
            for name, schema in properties.items()
        }
    return out


@cache
def _registry() -> Registry[Any]:
    document = json.loads(COMPONENTS.read_text())
    schemas = relax(document["components"]["schemas"])
    embedding = schemas["Embedding"]["properties"]["embedding"]
    schemas["Embedding"]["properties"]["embedding"] = {"anyOf": [embedding, {"type": "string"}]}
    relaxed = {"components": {"schemas": schemas}}
    resource: Resource[Any] = Resource.from_contents(relaxed, default_specification=DRAFT202012)
    registry: Registry[Any] = Registry().with_resource(URI, resource)
    return registry


@cache
def validator(component: str) -> Draft202012Validator:
    """A validator for one vendored component (e.g. ``"Batch"``)."""
    schemas = json.loads(COMPONENTS.read_text())["components"]["schemas"]
    if component not in schemas:
        raise KeyError(f"{component} is not vendored; add it to tests/emulator/openapi/vendor.py")
    return Draft202012Validator(
        {"$ref": f"{URI}#/components/schemas/{component}"}, registry=_registry()
    )


def problems(component: str, body: object) -> list[str]:
    """Every way ``body`` fails the component, as ``path: message`` lines (none when valid)."""
    errors = sorted(validator(component).iter_errors(body), key=lambda e: list(e.absolute_path))  # pyright: ignore[reportArgumentType]  # any decoded JSON; pyright's bundled jsonschema stub is narrower
    return [f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message[:300]}" for e in errors]
