"""Plain JSON values: validation with a path, canonical text, and stable digests.

Keys of ops are digests of canonical JSON, never Python's ``hash()``, so they are
stable across processes, machines and Python versions. Validation happens when an
op is built: ``json.dumps`` would silently turn ``{1: x}`` into ``{"1": x}`` and
write ``NaN``, which no API accepts, so such bodies are refused up front with the
path of the offending value.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any, TypeAlias, Union

JSON: TypeAlias = Union[bool, int, float, str, list["JSON"], dict[str, "JSON"], None]  # noqa: UP007
"""A plain JSON value as the standard library decodes it."""

JSONObject: TypeAlias = dict[str, JSON]
"""A JSON object: what a response body, a request body or a JSON schema is."""


def _where(path: tuple[str | int, ...]) -> str:
    return "body" + "".join(f"[{p!r}]" for p in path)


def validate_json(value: object, *, path: tuple[str | int, ...] = ()) -> JSON:
    """Return ``value`` as plain JSON (lists for tuples, dicts for mappings).

    Raises:
        TypeError: a value that is not JSON (a set, bytes, any other object) or a
            mapping key that is not a string; the message names where it is.
        ValueError: a float that is NaN or infinite.

    Iterative, so deep bodies cannot overflow the interpreter's stack.
    """
    root: list[JSON] = [None]
    # Each work item: (value, path, container to write into, slot in it).
    work: list[tuple[object, tuple[str | int, ...], Any, Any]] = [(value, path, root, 0)]
    while work:
        item, at, into, slot = work.pop()
        if item is None or isinstance(item, bool | str):
            into[slot] = item
        elif isinstance(item, int):
            into[slot] = int(item)
        elif isinstance(item, float):
            if not math.isfinite(item):
                raise ValueError(
                    f"{_where(at)} is {item!r}, which is not valid JSON; "
                    "send a finite number or null instead"
                )
            into[slot] = float(item)
        elif isinstance(item, Mapping):
            obj: dict[str, JSON] = {}
            into[slot] = obj
            for k, v in item.items():
                if not isinstance(k, str):
                    raise TypeError(
                        f"{_where(at)} has the key {k!r} of type {type(k).__name__}; "
                        "JSON object keys must be strings (json.dumps would silently "
                        "rewrite it as a string)"
                    )
                obj[k] = None
                work.append((v, (*at, k), obj, k))
        elif isinstance(item, Sequence) and not isinstance(item, bytes | bytearray):
            arr: list[JSON] = [None] * len(item)
            into[slot] = arr
            for i, v in enumerate(item):
                work.append((v, (*at, i), arr, i))
        else:
            raise TypeError(
                f"{_where(at)} is a {type(item).__name__} ({item!r:.60}), which is not "
                "JSON; use str, int, float, bool, None, list or dict"
            )
    return root[0]


_CANONICAL = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
)
"""Built once: ``json.dumps`` with options builds a new encoder on every call."""


def canonical_dumps(value: JSON) -> str:
    """Canonical JSON text: sorted keys, no spaces, UTF-8 kept, NaN refused."""
    return _CANONICAL.encode(value)


def op_key(endpoint: str, body: JSON) -> str:
    """The stable digest of one API call: sha256 of canonical ``[endpoint, body]``.

    The emulator's ledger uses the same function, so tests can match what was billed
    to the ops that asked for it.
    """
    text = canonical_dumps([endpoint, body])
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
