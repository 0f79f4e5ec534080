"""Precise types for jiter, the JSON parser behind pydantic and the openai SDK.

jiter's own stub returns ``Any`` from ``from_json``; this one returns the JSON
value the parser builds, so the type checker follows a parsed value into the code
that reads it. The result depends on ``float_mode``: numbers with a fraction or
an exponent are ``float`` (by default), ``Decimal`` or ``LosslessFloat``;
integers are ``int`` in every mode. mypy's stubtest checks this stub against the installed
jiter (tests/typing/test_stubs.py).
"""

import decimal
from typing import Final, Literal, Self, TypeAlias, final, overload

__all__ = ["LosslessFloat", "__version__", "cache_clear", "cache_usage", "from_json"]

__version__: Final[str]

_JSON: TypeAlias = bool | int | float | str | list[_JSON] | dict[str, _JSON] | None
"""What ``from_json`` builds with ``float_mode="float"`` (the default)."""
_DecimalJSON: TypeAlias = (
    bool | int | decimal.Decimal | str | list[_DecimalJSON] | dict[str, _DecimalJSON] | None
)
"""What ``from_json`` builds with ``float_mode="decimal"``."""
_LosslessJSON: TypeAlias = (
    bool | int | LosslessFloat | str | list[_LosslessJSON] | dict[str, _LosslessJSON] | None
)
"""What ``from_json`` builds with ``float_mode="lossless-float"``."""

_CacheMode: TypeAlias = Literal[True, False, "all", "keys", "none"]
_PartialMode: TypeAlias = Literal[True, False, "off", "on", "trailing-strings"]

@overload
def from_json(
    json_data: bytes,
    /,
    *,
    allow_inf_nan: bool = True,
    cache_mode: _CacheMode = ...,
    partial_mode: _PartialMode = ...,
    catch_duplicate_keys: bool = False,
    float_mode: Literal["float"] = ...,
) -> _JSON:
    """Parse JSON bytes; numbers with a fraction or exponent become ``float``.

    Raises:
        ValueError: the bytes are not valid JSON (or, with ``allow_inf_nan=False``,
            hold ``NaN`` or ``Infinity``).
    """

@overload
def from_json(
    json_data: bytes,
    /,
    *,
    allow_inf_nan: bool = True,
    cache_mode: _CacheMode = ...,
    partial_mode: _PartialMode = ...,
    catch_duplicate_keys: bool = False,
    float_mode: Literal["decimal"],
) -> _DecimalJSON:
    """Parse JSON bytes; numbers with a fraction or exponent become ``Decimal``."""

@overload
def from_json(
    json_data: bytes,
    /,
    *,
    allow_inf_nan: bool = True,
    cache_mode: _CacheMode = ...,
    partial_mode: _PartialMode = ...,
    catch_duplicate_keys: bool = False,
    float_mode: Literal["lossless-float"],
) -> _LosslessJSON:
    """Parse JSON bytes; numbers with a fraction or exponent keep their text."""

def cache_clear() -> None:
    """Reset the string cache."""

def cache_usage() -> int:
    """The size of the string cache in bytes."""

@final
class LosslessFloat:
    """A JSON number kept as its bytes, converted on demand."""

    def __new__(cls, raw: bytes) -> Self: ...
    def as_decimal(self) -> decimal.Decimal:
        """The number as a ``Decimal``, exactly as written."""

    def __float__(self) -> float: ...
    def __bytes__(self) -> bytes: ...
