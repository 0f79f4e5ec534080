"""``Op[T]``: one API call as a value: endpoint, canonical JSON body and a decoder."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from functools import cache
from typing import Any, Generic, TypeVar

from inert._json import JSON, canonical_dumps, op_key, validate_json

T_co = TypeVar("T_co", covariant=True)


@cache
def _key_prefix(endpoint: str) -> str:
    """``[<endpoint as JSON>,``: the start of the canonical ``[endpoint, body]`` text."""
    return f"[{canonical_dumps(endpoint)},"


class Op(Generic[T_co]):
    """One API call: ``endpoint``, a JSON ``body`` and ``decode`` from the raw response.

    Building an op validates the body as plain JSON (see :func:`validate_json`) and
    performs no I/O. ``key`` is the sha256 of canonical JSON of ``[endpoint, body]``:
    the batch ``custom_id``, the dedup key and the cache key. Two ops with the same
    key are one API call. The decoder is not part of the key: raw responses are
    stored, and decoding happens on read, so a changed decoder never discards a paid
    response.

    Args:
        endpoint: the API path, such as ``"/v1/chat/completions"``.
        body: the request body; any JSON value that is a mapping.
        decode: turns the raw response body into ``T``; it raises
            :class:`~inert.RequestError` (or a subclass) for a bad answer.
        dedup: ``False`` for calls where every occurrence must be a separate call
            (sampling with temperature > 0 where distinct samples are wanted); such
            ops are neither deduplicated nor cached.
        occurrence: set by the engine for ``dedup=False`` ops to tell occurrences apart.
    """

    def __init__(
        self,
        *,
        endpoint: str,
        body: Mapping[str, Any],
        decode: Callable[[JSON], T_co],
        dedup: bool = True,
        occurrence: int | None = None,
    ) -> None:
        if not isinstance(endpoint, str) or not endpoint.startswith("/"):  # type: ignore[redundant-expr]  # callers without a type checker pass anything
            raise ValueError(
                f"endpoint must be an API path starting with '/', such as "
                f"'/v1/chat/completions'; got {endpoint!r}"
            )
        if not isinstance(body, Mapping):
            raise TypeError(f"body must be a JSON object (a mapping); got {type(body).__name__}")
        if not callable(decode):
            raise TypeError(f"decode must be callable; got {type(decode).__name__}")
        self.endpoint = endpoint
        self._body: dict[str, JSON] = validate_json(body)  # type: ignore[assignment]  # pyright: ignore[reportAttributeAccessIssue]  # a Mapping validates to a dict
        self.decode = decode
        self.dedup = dedup
        self.occurrence = occurrence
        self._key: str | None = None
        self._body_text: str | None = None

    @property
    def body(self) -> dict[str, JSON]:
        """The JSON body, as it is sent (a copy-free view; do not mutate it)."""
        return self._body

    @property
    def key(self) -> str:
        """Hex sha256 of canonical ``[endpoint, body]`` (plus the occurrence, if any)."""
        key = self._key
        if key is None:
            # Equal to op_key(endpoint, body), reusing the body's canonical text.
            text = f"{_key_prefix(self.endpoint)}{self.canonical_body()}]"
            key = hashlib.sha256(text.encode("utf-8")).hexdigest()
            if self.occurrence is not None:
                key = op_key(self.endpoint, {"occurrence": self.occurrence, "of": key})
            self._key = key
        return key

    def canonical_body(self) -> str:
        """The body as canonical JSON text: exactly the bytes every runner sends."""
        text = self._body_text
        if text is None:
            text = self._body_text = canonical_dumps(self._body)
        return text

    @property
    def model(self) -> str | None:
        """The ``model`` field of the body, when it has one (batches group by it)."""
        model = self._body.get("model")
        return model if isinstance(model, str) else None

    def with_occurrence(self, occurrence: int) -> Op[T_co]:
        """The same call, marked as its ``occurrence``-th separate instance in a run."""
        op: Op[T_co] = Op.__new__(Op)
        op.endpoint = self.endpoint
        op._body = self._body
        op.decode = self.decode
        op.dedup = self.dedup
        op.occurrence = occurrence
        op._key = None
        op._body_text = self._body_text
        return op

    def __repr__(self) -> str:
        suffix = "" if self.dedup else ", dedup=False"
        return f"Op({self.endpoint}, key={self.key[:12]}{suffix})"
