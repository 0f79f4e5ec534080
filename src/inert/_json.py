"""Plain JSON values: validation with a path, canonical text, and stable digests.

Keys of ops are digests of canonical JSON, never Python's ``hash()``, so they are
stable across processes, machines and Python versions. Validation happens when an
op is built, so a body no API can take is refused before anything is sent, with
the path of the offending value. A body is refused when it holds:

* a value that is not JSON (a set, bytes, any other object), or a mapping key
  that is not a string (``json.dumps`` would silently write ``{1: x}`` as
  ``{"1": x}``);
* a float that is NaN or infinite (no API accepts them);
* a string, or a key, with a lone surrogate such as ``"\\ud800"`` (UTF-8, the
  encoding of every request, cannot carry it);
* itself (a cycle), or nesting deeper than :data:`MAX_DEPTH` arrays and objects;
* an integer outside :data:`INT_MIN` .. :data:`INT_MAX` (64-bit signed).

The check costs about one parse of the canonical text (done in C), which the key
needs anyway; only a body that fails it, or might, is walked in Python to say
where the problem is.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from hashlib import sha256
from typing import Any, Final, TypeAlias, Union, cast

JSON: TypeAlias = Union[bool, int, float, str, list["JSON"], dict[str, "JSON"], None]  # noqa: UP007
"""A plain JSON value as the standard library decodes it."""

JSONObject: TypeAlias = dict[str, JSON]
"""A JSON object: what a response body, a request body or a JSON schema is."""

MAX_DEPTH: Final = 100
"""How deep a body may nest arrays and objects (the body itself is level 1).

Real requests nest far less: a structured-output schema at OpenAI's limit of 10
levels of nesting is about 30 deep. The bound keeps every encoder and parser on
the way (Python's ``json``, whose recursion limit is shared with the calling code,
the SDK's transform, the API's own parser) well inside its limits, so a deep body
fails when it is built and never as a ``RecursionError`` in the middle of a run.
"""

INT_MIN: Final = -(2**63)
"""The smallest integer a body may hold: ``-2**63``."""
INT_MAX: Final = 2**63 - 1
"""The largest integer a body may hold: ``2**63 - 1``.

The widest integer parameter of the OpenAI API is 64-bit (``seed`` in the
published OpenAPI spec: minimum -9223372036854775808, maximum 9223372036854775807),
and parsers in most languages cannot carry a wider integer faithfully; Python's
own ``int`` to text conversion stops at 4,300 digits. A larger number is almost
always a bug; send it as a string if it is meant.
"""

_PATH_SHOWN: Final = 12
"""Path parts shown in messages; a longer path is shortened in the middle."""


def _where(path: Sequence[str | int]) -> str:
    parts = [f"[{p!r}]" for p in path]
    if len(parts) > _PATH_SHOWN:
        half = _PATH_SHOWN // 2
        hidden = len(parts) - 2 * half
        parts = [*parts[:half], f"…({hidden} more)…", *parts[-half:]]
    return "body" + "".join(parts)


def _surrogate_at(text: str) -> int | None:
    """The index of the first lone surrogate in ``text``, or ``None`` if it has none."""
    if text.isascii():
        return None
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        return error.start
    return None


def _bad_text(what: str, text: str, index: int) -> ValueError:
    return ValueError(
        f"{what} a lone surrogate ({text[index]!r} at index {index}), which UTF-8 cannot "
        "encode, so no API can receive it; repair the text first, for example with "
        "text.encode('utf-8', 'replace').decode('utf-8')"
    )


def validate_slowly(value: object, *, path: tuple[str | int, ...] = ()) -> JSON:
    """Return ``value`` as plain JSON (lists for tuples, dicts for mappings), or raise.

    The complete check, in Python, one value at a time: :func:`validate_json`
    calls it only for a body its fast check cannot vouch for, to name the place of
    the problem. Iterative, so no body can overflow the interpreter's stack.

    Raises:
        TypeError: a value that is not JSON (a set, bytes, any other object) or a
            mapping key that is not a string; the message names where it is.
        ValueError: a float that is NaN or infinite, a lone surrogate, a cycle,
            nesting deeper than :data:`MAX_DEPTH`, or an integer outside
            :data:`INT_MIN` .. :data:`INT_MAX`.
    """
    root: list[JSON] = [None]
    levels_above = len(path)  # where ``value`` sits inside the body
    # Each work item: (value, path, containers from the root down, container to
    # write into, slot in it). The containers on the way down detect cycles.
    work: list[tuple[object, tuple[str | int, ...], tuple[int, ...], Any, Any]] = [
        (value, path, (), root, 0)
    ]
    while work:
        item, at, above, into, slot = work.pop()
        if item is None or isinstance(item, bool):
            into[slot] = item
        elif isinstance(item, str):
            index = _surrogate_at(item)
            if index is not None:
                raise _bad_text(f"{_where(at)} holds", item, index)
            into[slot] = str(item)
        elif isinstance(item, int):
            if not INT_MIN <= item <= INT_MAX:
                digits = int(item.bit_length() * math.log10(2)) + 1
                raise ValueError(
                    f"{_where(at)} is an integer of about {digits} digits, outside the "
                    "64-bit range an API can take (-2**63 .. 2**63-1); send it as a "
                    "string if it is meant"
                )
            into[slot] = int(item)
        elif isinstance(item, float):
            if not math.isfinite(item):
                raise ValueError(
                    f"{_where(at)} is {item!r}, which is not valid JSON; "
                    "send a finite number or null instead"
                )
            into[slot] = float(item)
        elif isinstance(item, Mapping | list | tuple) or (
            isinstance(item, Sequence) and not isinstance(item, bytes | bytearray)
        ):
            if id(item) in above:
                raise ValueError(
                    f"{_where(at)} contains itself (the body has a cycle); a request body "
                    "must be a tree: copy the part instead of referring back to it"
                )
            if levels_above + len(above) >= MAX_DEPTH:
                raise ValueError(
                    f"{_where(at)} nests deeper than {MAX_DEPTH} arrays and objects, the "
                    "most a request body may; flatten it, or send the deep part as a JSON "
                    "string"
                )
            inside = (*above, id(item))
            if isinstance(item, Mapping):
                obj: dict[str, JSON] = {}
                into[slot] = obj
                for k, v in item.items():
                    if not isinstance(k, str):
                        raise TypeError(
                            f"{_where(at)} has the key {k!r} of type {type(k).__name__}; "
                            "JSON object keys must be strings (json.dumps would silently "
                            "rewrite it as a string)"
                        )
                    index = _surrogate_at(k)
                    if index is not None:
                        raise _bad_text(f"{_where(at)} has a key with", k, index)
                    obj[k] = None
                    work.append((v, (*at, k), inside, obj, k))
            else:
                arr: list[JSON] = [None] * len(item)
                into[slot] = arr
                for i, v in enumerate(item):
                    work.append((v, (*at, i), inside, arr, i))
        else:
            raise TypeError(
                f"{_where(at)} is a {type(item).__name__} ({item!r:.60}), which is not "
                "JSON; use str, int, float, bool, None, list or dict"
            )
    return root[0]


# --- canonical text, fast -----------------------------------------------------------


def _not_json(value: object) -> object:
    raise TypeError(f"{type(value).__name__} is not JSON")


def _make_encoder() -> Callable[[object, int], Sequence[str]]:
    """The C encoder itself, built once, with the canonical options.

    ``json.dumps`` and ``JSONEncoder.encode`` build it again on every call, which
    costs as much as encoding a small body. It has no cycle markers: a cycle runs
    into the recursion limit, and the slow walk then explains it. The output is
    byte for byte that of ``json.dumps(value, sort_keys=True, separators=(",", ":"),
    ensure_ascii=False, allow_nan=False)``.
    """
    make: Any = getattr(json.encoder, "c_make_encoder", None)
    text: Any = getattr(json.encoder, "c_encode_basestring", None)
    if make is None or text is None:  # pragma: no cover - CPython has the accelerator
        slow = json.JSONEncoder(
            sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        )
        return lambda value, _level: [slow.encode(value)]
    encoder: Callable[[object, int], Sequence[str]] = make(
        None, _not_json, text, None, ":", ",", True, False, False
    )
    return encoder


ENCODER: Final = _make_encoder()
"""The canonical encoder: ``"".join(ENCODER(value, 0))`` is the canonical text."""


def _encode(value: object) -> str:
    return "".join(ENCODER(value, 0))


SCAN: Any = cast(Any, json.JSONDecoder()).scan_once
"""The C scanner of ``json.loads`` without its Python wrapper."""


def canonical_dumps(value: JSON) -> str:
    """Canonical JSON text: sorted keys, no spaces, UTF-8 kept, NaN refused."""
    return _encode(value)


def op_key(endpoint: str, body: JSON) -> str:
    """The stable digest of one API call: sha256 of canonical ``[endpoint, body]``.

    The emulator's ledger uses the same function, so tests can match what was billed
    to the ops that asked for it.
    """
    return sha256(_encode([endpoint, body]).encode("utf-8")).hexdigest()


_DIGITS: Final = bytes(0x30 if 0x30 <= b <= 0x39 else 0x20 for b in range(256))
"""``bytes.translate`` table: every digit becomes ``0``, every other byte a space."""
_LONG_NUMBER: Final = b"0" * 19
"""Nineteen digits in a row: the shortest integer that may be outside 64 bits."""


def _may_break_limits(data: bytes, depth: int) -> bool:
    """False when ``data``, canonical text, surely keeps the two limits the encoder does not.

    C-speed screens of the text: without a run of 19 digits (inside a string or
    not) no integer is beyond 64 bits, and text with at most ``depth`` brackets
    cannot nest deeper than ``depth``. Most bodies pass both.
    """
    if _LONG_NUMBER in data.translate(_DIGITS):
        return True
    return len(data) > 2 * depth and data.count(b"[") + data.count(b"{") > depth


def breaks_limits(value: JSON, level: int) -> bool:
    """True if plain ``value``, at ``level`` of a body, nests too deep or has a wide int."""
    work: list[tuple[JSON, int]] = [(value, level)]
    while work:
        item, at = work.pop()
        if isinstance(item, dict):
            if at > MAX_DEPTH:
                return True
            work.extend((v, at + 1) for v in item.values())
        elif isinstance(item, list):
            if at > MAX_DEPTH:
                return True
            work.extend((v, at + 1) for v in item)
        elif type(item) is int and not INT_MIN <= item <= INT_MAX:
            return True
    return False


SCREENED: Final = 2 * (MAX_DEPTH + 1)
"""Canonical text of an API call at most this long cannot nest past the limit."""


class WideIntegerError(ValueError):
    """An integer outside 64 bits, met by :data:`SCAN_CHECKED` (the slow walk names it)."""


def _int64(digits: str) -> int:
    value = int(digits)
    if len(digits) > 18 and not INT_MIN <= value <= INT_MAX:
        raise WideIntegerError(digits)
    return value


SCAN_CHECKED: Any = cast(Any, json.JSONDecoder(parse_int=_int64)).scan_once
"""The C scanner, refusing integers outside 64 bits as it parses them."""


def checked_call(endpoint: str, body: object) -> tuple[JSON, str]:
    """``(plain body, key)`` of an API call, or the error of a body no API can take.

    The fast check: the canonical text (which the key needs anyway) is written by
    the C encoder, which refuses what is not JSON, NaN, and cycles or nesting past
    its recursion limit; UTF-8 encoding refuses lone surrogates; a parse of the text
    back (in C, refusing integers outside 64 bits) gives the plain copy, and
    comparing it with ``body`` finds what the encoder silently rewrites (non-string
    keys; tuples, which are fine). Only a body that fails, or that is long enough
    to nest past the limit, is walked in Python. ``Op`` runs the same steps inline.
    """
    try:
        text = "".join(ENCODER([endpoint, body], 0))
        data = text.encode("utf-8")
        plain = SCAN_CHECKED(text, 0)[0][1]
    except (TypeError, ValueError, RecursionError):
        return checked_slowly(endpoint, body)
    if plain != body:
        plain = validate_slowly(body)  # tuples are fine; other rewrites raise
    if len(data) > SCREENED and data.count(b"[") + data.count(b"{") > MAX_DEPTH + 1:
        checked_deeply(plain, body)
    return plain, sha256(data).hexdigest()


def checked_slowly(endpoint: str, body: object) -> tuple[JSON, str]:
    """``(plain body, key)`` of a body the fast check refused: raises, naming the place.

    Or the body is fine but not made of dicts and lists (another Mapping or
    Sequence), and its plain copy is returned with its key.
    """
    plain = validate_slowly(body)
    return plain, sha256(_encode([endpoint, plain]).encode("utf-8")).hexdigest()


def checked_deeply(plain: JSON, body: object) -> None:
    """Raise, naming the place, if ``plain`` (the copy of ``body``) nests too deep."""
    if breaks_limits(plain, 1):
        validate_slowly(body)


_SCALARS: Final = frozenset({str, float, bool, type(None)})
"""The exact types of leaves a copy shares as they are (``int`` is range-checked)."""


def plain_copy(body: object) -> JSONObject | None:
    """A copy of ``body`` whose containers are new and whose leaves are shared, or ``None``.

    For a body of exact dicts with ``str`` keys, lists, ``str``, ``float``, ``bool``,
    ``None`` and integers within 64 bits, whose canonical text the C encoder has
    written (so it holds no NaN, no cycle, no lone surrogate) and which nests no
    deeper than :data:`MAX_DEPTH`: the plain copy an op keeps. Cheaper than parsing
    the text back (leaves are immutable, so they are shared, not rebuilt), and
    it keeps the body's key order. ``None`` for anything else (a non-string key,
    a tuple, a subclass such as an enum member, a wide integer), which the full
    check then handles.
    """
    if type(body) is not dict:
        return None
    try:
        return copy_object(body)
    except RecursionError:  # called near the interpreter's limit: the full check decides
        return None


def copy_object(source: dict[Any, Any]) -> JSONObject | None:
    """:func:`plain_copy` of an exact dict, without its guard against ``RecursionError``."""
    copy = source.copy()
    for key, value in copy.items():
        if type(key) is not str:
            return None
        kind = type(value)
        if kind is str:  # the common leaf first: each test is a step of the interpreter
            continue
        if kind is list:
            value = _copy_array(value)
        elif kind is dict:
            value = copy_object(value)
        elif kind is int:
            if INT_MIN <= value <= INT_MAX:
                continue
            return None
        elif kind in _SCALARS:
            continue
        else:
            return None
        if value is None:
            return None
        copy[key] = value  # an existing key: the size does not change while iterating
    return copy


def _copy_array(source: list[Any]) -> list[JSON] | None:
    copy = source.copy()
    index = -1
    for value in source:
        index += 1
        kind = type(value)
        if kind is dict:  # arrays of a body are mostly of objects (messages) or strings
            # An object of string-keyed strings and scalars (a message) is copied
            # here, without a call; any other object takes copy_object.
            item = value.copy()
            for key, leaf in item.items():
                if type(key) is str:
                    kind = type(leaf)
                    if kind is str or kind in _SCALARS:
                        continue
                item = copy_object(value)
                if item is None:
                    return None
                break
            copy[index] = item
            continue
        if kind is str:
            continue
        if kind is list:
            value = _copy_array(value)
        elif kind is int:
            if INT_MIN <= value <= INT_MAX:
                continue
            return None
        elif kind in _SCALARS:
            continue
        else:
            return None
        if value is None:
            return None
        copy[index] = value
    return copy


_PREFIXES: dict[str, str] = {}


def call_prefix(endpoint: str) -> str:
    """``["<endpoint>",``: how the canonical text of ``[endpoint, body]`` starts.

    The text of an API call is this, the body's canonical text, and ``]``; encoding
    the body alone is cheaper than encoding the pair. Kept for up to 1,024 endpoints.
    """
    prefix = _PREFIXES.get(endpoint)
    if prefix is None:
        prefix = _encode([endpoint])[:-1] + ","
        if len(_PREFIXES) < 1024:
            _PREFIXES[endpoint] = prefix
    return prefix


def trusted_key(endpoint: str, body: JSONObject) -> str:
    """The key of a body built from checked parts (inert's builders), checking text only.

    Every part of such a body is plain JSON within the limits, except that its
    strings may hold lone surrogates; those are found when the text is encoded.
    """
    try:
        data = (call_prefix(endpoint) + _encode(body) + "]").encode("utf-8")
    except ValueError:
        validate_slowly(body)  # names the place of the surrogate
        raise
    return sha256(data).hexdigest()


def trusted_key_size(endpoint: str, body: JSONObject) -> tuple[str, int]:
    """:func:`trusted_key`, and the UTF-8 byte length of the body's canonical text
    (read off the text the key is made of: batch planning needs no second encoding)."""
    prefix = call_prefix(endpoint)
    try:
        data = (prefix + _encode(body) + "]").encode("utf-8")
    except ValueError:
        validate_slowly(body)  # names the place of the surrogate
        raise
    return sha256(data).hexdigest(), body_size_of(data, prefix)


def body_size_of(data: bytes, prefix: str) -> int:
    """The body's bytes in ``data``, the UTF-8 text ``prefix`` + body + ``]`` of a call."""
    return len(data) - (len(prefix) if prefix.isascii() else len(prefix.encode())) - 1


def validate_json(value: object, *, path: tuple[str | int, ...] = ()) -> JSON:
    """Return ``value`` as plain JSON (lists for tuples, dicts for mappings), or raise.

    The same checks as building an op (see the module docstring), through the
    same fast path; ``path`` is where ``value`` sits in a body (for the messages,
    and for the nesting limit).

    Raises:
        TypeError: a value that is not JSON or a mapping key that is not a string.
        ValueError: NaN or infinity, a lone surrogate, a cycle, nesting deeper than
            :data:`MAX_DEPTH`, or an integer outside 64 bits.
    """
    try:
        text = _encode(value)
        data = text.encode("utf-8")
    except (TypeError, ValueError, RecursionError):
        return validate_slowly(value, path=path)
    plain: JSON = SCAN(text, 0)[0]
    if plain != value:
        plain = validate_slowly(value, path=path)  # tuples are fine; other rewrites raise
    depth = MAX_DEPTH - len(path)
    if _may_break_limits(data, depth) and breaks_limits(plain, len(path) + 1):
        validate_slowly(value, path=path)  # raises, naming the place
    return plain
