"""``Op[T]``: one API call as a value: endpoint, canonical JSON body and a decoder."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from hashlib import sha256
from operator import attrgetter
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast

from inert._json import (
    ENCODER,
    JSON,
    MAX_DEPTH,
    SCAN_CHECKED,
    SCREENED,
    JSONObject,
    call_prefix,
    canonical_dumps,
    checked_deeply,
    checked_slowly,
    copy_object,
    op_key,
    trusted_key,
    trusted_key_size,
    validate_slowly,
)

T_co = TypeVar("T_co", covariant=True)

_ENDPOINTS: dict[str, tuple[str, int]] = {}
"""Endpoints already seen to be API paths (checked once each), with the canonical
text that starts ``[endpoint, body]`` for each (``["/v1/chat/completions",``) and the
UTF-8 bytes of the text of a call that are not the body's (that start, and ``]``)."""


_SIZES: dict[int, int] = {}
"""One int object per body size: the bodies of a round share a few hundred sizes, and
an int of its own would cost every op 28 bytes (1.4 MB in a round of 50,000)."""


def _shared_size(size: int) -> int:
    kept = _SIZES.get(size)
    if kept is None:
        if len(_SIZES) >= 4096:
            return size
        kept = _SIZES[size] = size
    return kept


def _check_endpoint(endpoint: object) -> tuple[str, int]:
    if not isinstance(endpoint, str) or not endpoint.startswith("/"):
        raise ValueError(
            f"endpoint must be an API path starting with '/', such as "
            f"'/v1/chat/completions'; got {endpoint!r}"
        )
    prefix = call_prefix(endpoint)
    known = (prefix, len(prefix.encode()) + 1)
    if len(_ENDPOINTS) < 1024:
        _ENDPOINTS[endpoint] = known
    return known


class Op(Generic[T_co]):
    """One API call: ``endpoint``, a JSON ``body`` and ``decode`` from the raw response.

    Building an op validates the body as plain JSON (see :func:`validate_json`) and
    performs no I/O. ``key`` is the sha256 of canonical JSON of ``[endpoint, body]``:
    the batch ``custom_id``, the dedup key and the cache key. Two ops with the same
    key are one API call. The decoder is not part of the key: raw responses are
    stored, and decoding happens on read, so a changed decoder never discards a paid
    response.

    The body is refused when it is built, with the path of the bad value, if it
    holds anything but plain JSON: a non-string key, NaN or infinity, a lone
    surrogate (``"\\ud800"``), a cycle, nesting deeper than 100 arrays and objects,
    or an integer outside 64 bits (see ``inert._json``). The op keeps its own copy,
    so changing the mapping afterwards changes nothing.

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

    __slots__ = (
        "_body",
        "_body_size",
        "_body_text",
        "_key",
        "decode",
        "dedup",
        "endpoint",
        "occurrence",
    )

    endpoint: str
    decode: Callable[[JSON], T_co]
    dedup: bool
    occurrence: int | None

    def __init__(
        self,
        *,
        endpoint: str,
        body: Mapping[str, Any],
        decode: Callable[[JSON], T_co],
        dedup: bool = True,
        occurrence: int | None = None,
    ) -> None:
        known = _ENDPOINTS.get(endpoint) if type(endpoint) is str else None
        if known is None:
            known = _check_endpoint(endpoint)
        prefix, around = known
        if type(body) is not dict and not isinstance(body, Mapping):
            raise TypeError(f"body must be a JSON object (a mapping); got {type(body).__name__}")
        if not callable(decode):
            raise TypeError(f"decode must be callable; got {type(decode).__name__}")
        # The body alone is encoded (the endpoint's part of the key's text is the same
        # for every op of the endpoint); the C encoder refuses what is not JSON, NaN,
        # and cycles, UTF-8 refuses lone surrogates. A body of plain dicts, lists and
        # scalars is then copied (containers only: leaves are immutable); anything
        # else takes inert._json.checked_call's steps (parse back, compare, walk).
        plain: JSONObject | None
        size = -1  # not known yet: body_size encodes the body when first asked
        try:
            text = "".join(ENCODER(body, 0))
            data = f"{prefix}{text}]".encode()
        except (TypeError, ValueError, RecursionError):
            slow, key = checked_slowly(endpoint, body)
            plain = cast(JSONObject, slow)  # a mapping checks as an object
        else:
            size = len(data) - around  # the body's bytes: the copy's canonical text
            size = _SIZES.get(size) or _shared_size(size)  # never 0: "{}" is 2 bytes
            plain = None
            if type(body) is dict and (
                len(data) <= SCREENED or data.count(b"[") + data.count(b"{") <= MAX_DEPTH + 1
            ):
                try:
                    plain = copy_object(body)  # inert._json.plain_copy, one call less
                except RecursionError:  # near the interpreter's limit: the full check decides
                    plain = None
            if plain is None:
                slow, key = _checked_plain(endpoint, body, text, data)
                plain = cast(JSONObject, slow)  # a mapping checks as an object
            else:
                key = sha256(data).hexdigest()
        self.endpoint = endpoint
        self._body: JSONObject = plain
        self.decode = decode
        self.dedup = dedup
        self.occurrence = occurrence
        self._key = key if occurrence is None else _occurrence_key(endpoint, key, occurrence)
        self._body_text: str | None = None
        self._body_size = size

    @classmethod
    def _built(
        cls, endpoint: str, body: JSONObject, decode: Callable[[JSON], T_co], dedup: bool
    ) -> Op[T_co]:
        """An op of a body built by inert's builders from checked parts (no second walk).

        The builders check every part they did not build themselves; only the key is
        computed here (which refuses a lone surrogate, naming its place).
        """
        op: Op[T_co] = cls.__new__(cls)
        op.endpoint = endpoint
        op._body = body
        op.decode = decode
        op.dedup = dedup
        op.occurrence = None
        op._key, size = trusted_key_size(endpoint, body)
        op._body_size = _shared_size(size)
        op._body_text = None
        return op

    if TYPE_CHECKING:

        @property
        def body(self) -> JSONObject:
            """The JSON body, as it is sent (a copy-free view; do not mutate it)."""
            return self._body

        @property
        def key(self) -> str:
            """Hex sha256 of canonical ``[endpoint, body]`` (plus the occurrence, if any)."""
            return self._key

    else:
        # The same read-only properties with getters in C: a fake's respond, the
        # engine's callers and the runners read them once or more per op.
        body = property(
            attrgetter("_body"),
            doc="The JSON body, as it is sent (a copy-free view; do not mutate it).",
        )
        key = property(
            attrgetter("_key"),
            doc="Hex sha256 of canonical ``[endpoint, body]`` (plus the occurrence, if any).",
        )

    @property
    def body_size(self) -> int:
        """The length of :meth:`canonical_body` in UTF-8 bytes (known from making the key:
        batch planning measures lines without encoding their bodies again)."""
        size = self._body_size
        if size < 0:
            text = canonical_dumps(self._body)
            size = self._body_size = len(text) if text.isascii() else len(text.encode())
        return size

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
        base = self._key if self.occurrence is None else trusted_key(self.endpoint, self._body)
        op._key = _occurrence_key(self.endpoint, base, occurrence)
        op._body_text = self._body_text
        op._body_size = self._body_size
        return op

    def __repr__(self) -> str:
        suffix = "" if self.dedup else ", dedup=False"
        return f"Op({self.endpoint}, key={self._key[:12]}{suffix})"


def _checked_plain(endpoint: str, body: object, text: str, data: bytes) -> tuple[JSON, str]:
    """``(plain body, key)`` of a body the copy declined, from its canonical ``text``.

    The steps of :func:`inert._json.checked_call`: parse the text back (refusing
    integers outside 64 bits), compare with ``body`` (a non-string key was rewritten
    by the encoder; tuples are fine) and screen the nesting; raises, naming the
    place, for a body no API can take.
    """
    try:
        plain = SCAN_CHECKED(text, 0)[0]
    except (ValueError, RecursionError):
        return checked_slowly(endpoint, body)
    if plain != body:
        plain = validate_slowly(body)  # tuples are fine; other rewrites raise
    if len(data) > SCREENED and data.count(b"[") + data.count(b"{") > MAX_DEPTH + 1:
        checked_deeply(plain, body)
    return plain, sha256(data).hexdigest()


def _occurrence_key(endpoint: str, key: str, occurrence: int) -> str:
    return op_key(endpoint, {"occurrence": occurrence, "of": key})
