"""Checking builder parameters against an SDK's own ``TypedDict`` of parameters.

Shared by the builders of every provider (``inert.openai``, ``inert.anthropic``):
the allowed names and their types are read from the SDK's parameter types, never
from a hand-written list, and a value is checked by pydantic in strict mode (so
``"0.5"`` is refused for a float instead of being converted). Messages name the
parameter and the place inside it.
"""

from __future__ import annotations

import difflib
import enum
from collections.abc import Iterator, Mapping, Sequence
from functools import cache
from typing import Any, Final

import pydantic

from inert._json import JSON, validate_json

STRICT: Final = pydantic.ConfigDict(strict=True)


class NotPlain(enum.Enum):
    """The marker of a value that is not plain JSON yet (the SDK must dump it first)."""

    NOT_PLAIN = "not plain JSON"


NOT_PLAIN: Final = NotPlain.NOT_PLAIN


@cache
def adapter(annotation: Any) -> pydantic.TypeAdapter[list[Any]]:
    # Wrapped in a list: pydantic refuses a config on a bare TypedDict, and strict mode
    # is what rejects "0.5" for a float instead of silently converting it.
    return pydantic.TypeAdapter(list[annotation], config=STRICT)  # pyright: ignore[reportInvalidTypeForm]  # built at run time


def check_value(what: str, name: str, annotation: Any, value: object) -> None:
    """Check ``value`` against ``annotation`` (strict); a TypeError names where it is wrong."""
    try:
        (checked,) = adapter(annotation).validate_python([value])
        if isinstance(checked, Iterator):
            list(checked)  # pydantic checks an Iterable[...] lazily: force it now
    except pydantic.ValidationError as error:
        first = error.errors()[0]
        raise TypeError(
            f"{what} parameter '{name}{where(value, first['loc'][1:])}' is invalid: "
            f"{first['msg']} (got {value!r:.80})"
        ) from None


def where(value: object, loc: tuple[int | str, ...]) -> str:
    """The path of a pydantic error inside ``value``, without union-member tags."""
    path = ""
    for part in loc:
        if isinstance(value, Mapping) and part in value:  # noqa: SIM114 - each branch narrows
            value = value[part]
        elif isinstance(value, Sequence) and isinstance(part, int) and part < len(value):
            value = value[part]
        else:
            continue  # a tag such as 'ChatCompletionUserMessageParam' or 'str'
        path += f"[{part!r}]"
    return path


def json_part(value: object, name: str) -> JSON | NotPlain:
    """``value``, the body's field ``name``, as plain JSON; or ``NOT_PLAIN`` for the SDK.

    A value no API can take (NaN, a lone surrogate, a cycle, nesting too deep, an
    integer beyond 64 bits) is refused here, naming its place, before pydantic or
    the SDK's transform see it (they would recurse into a cycle). A value that is
    merely not JSON yet (a pydantic model, an iterable) is left to the transform.
    """
    try:
        return validate_json(value, path=(name,))
    except TypeError:
        return NOT_PLAIN


def check_params(
    what: str, params: Mapping[str, object], allowed: Mapping[str, Any], reserved: frozenset[str]
) -> dict[str, JSON] | None:
    """Check every parameter; their plain JSON values, or None if one needs the transform."""
    plain: dict[str, JSON] | None = {}
    for name, value in params.items():
        if name == "stream":
            if value is True:
                raise ValueError(
                    f"{what} parameter 'stream=True' is not supported: a streamed answer "
                    "cannot be batched or stored; leave stream out"
                )
            raise TypeError(f"{what} parameter 'stream' is set by inert; leave it out")
        if name in reserved or name not in allowed:
            if name in reserved:
                raise TypeError(f"{what} parameter {name!r} is given twice")
            close = difflib.get_close_matches(name, list(allowed), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise TypeError(f"unknown {what} parameter {name!r}{hint}")
        part = json_part(value, name)
        check_value(what, name, allowed[name], value)
        if part is NOT_PLAIN:
            plain = None
        elif plain is not None:
            plain[name] = part
    return plain
