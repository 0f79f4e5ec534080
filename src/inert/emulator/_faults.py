"""Injected faults: which requests, answers and batch lines misbehave, and how often."""

from __future__ import annotations

import hashlib
from typing import Final

import attrs

ATTEMPT_KINDS: Final = ("rate_limit", "server_error", "disconnect")
"""Drawn afresh for every HTTP attempt, so a retry can succeed."""

ANSWER_KINDS: Final = ("refusal", "truncation", "invalid_output")
"""Fixed per request body: the same prompt always misbehaves the same way."""

LINE_KINDS: Final = ("line_expired", "line_failed")
"""Drawn per batch line when the batch is created."""

BATCH_KINDS: Final = ("batch_expire", "unknown_custom_id", "drop_output")
"""Drawn per batch when it is created (test hooks for batch runners)."""

KINDS: Final = ATTEMPT_KINDS + ANSWER_KINDS + LINE_KINDS + BATCH_KINDS


def _rate(instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"fault {attribute.name} must be a fraction from 0 to 1, not {value!r}")


@attrs.frozen(kw_only=True)
class Faults:
    """Fractions (0 to 1) of requests, answers, lines or batches that misbehave.

    Attempt faults (``rate_limit``, ``server_error``, ``disconnect``) partition one
    draw per HTTP attempt; answer faults (``refusal``, ``truncation``,
    ``invalid_output``) are decided by a digest of the request body; line faults
    (``line_expired``, ``line_failed``) and batch faults (``batch_expire``,
    ``unknown_custom_id``, ``drop_output``) are drawn when a batch is created.
    """

    rate_limit: float = attrs.field(default=0.0, validator=_rate, converter=float)
    server_error: float = attrs.field(default=0.0, validator=_rate, converter=float)
    disconnect: float = attrs.field(default=0.0, validator=_rate, converter=float)
    refusal: float = attrs.field(default=0.0, validator=_rate, converter=float)
    truncation: float = attrs.field(default=0.0, validator=_rate, converter=float)
    invalid_output: float = attrs.field(default=0.0, validator=_rate, converter=float)
    line_expired: float = attrs.field(default=0.0, validator=_rate, converter=float)
    line_failed: float = attrs.field(default=0.0, validator=_rate, converter=float)
    batch_expire: float = attrs.field(default=0.0, validator=_rate, converter=float)
    unknown_custom_id: float = attrs.field(default=0.0, validator=_rate, converter=float)
    drop_output: float = attrs.field(default=0.0, validator=_rate, converter=float)

    @classmethod
    def parse(cls, specs: list[str]) -> Faults:
        """Build ``Faults`` from ``KIND=RATE`` strings, as given to ``--fault``.

        Raises:
            ValueError: an unknown kind, a missing ``=``, or a rate that is not a
                number from 0 to 1; the message names the offending spec.
        """
        rates: dict[str, float] = {}
        for spec in specs:
            kind, sep, text = spec.partition("=")
            kind = kind.strip()
            if not sep:
                raise ValueError(f"fault {spec!r} must look like KIND=RATE, e.g. rate_limit=0.1")
            if kind not in KINDS:
                raise ValueError(
                    f"unknown fault kind {kind!r} in {spec!r}; choose from {', '.join(KINDS)}"
                )
            try:
                rate = float(text)
            except ValueError:
                raise ValueError(f"fault rate {text!r} in {spec!r} is not a number") from None
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"fault rate in {spec!r} must be a fraction from 0 to 1")
            rates[kind] = rate
        return cls(**rates)


def body_fraction(kind: str, key: str) -> float:
    """A uniform number in [0, 1) fixed by the fault kind and a request's key."""
    digest = hashlib.sha256(f"{kind}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def answer_fault(faults: Faults, key: str) -> str | None:
    """The answer fault (if any) that the request with this key always suffers."""
    for kind in ANSWER_KINDS:
        rate: float = getattr(faults, kind)
        if rate > 0 and body_fraction(kind, key) < rate:
            return kind
    return None
