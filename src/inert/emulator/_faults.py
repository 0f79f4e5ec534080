"""Injected faults: which requests, answers, batches and lines misbehave, and how often.

Two ways in: ``Faults`` holds rates (drawn from the emulator's seeded generator),
and ``Injections`` holds one-shot faults queued for a route, taken by the next
requests to it (deterministic, for tests that need a fault at one exact step).
"""

from __future__ import annotations

import hashlib
import random
import threading
from collections import deque
from typing import Final

import attrs

ATTEMPT_KINDS: Final = ("rate_limit", "server_error", "disconnect")
"""Drawn afresh for every HTTP attempt on every route, so a retry can succeed."""

ANSWER_KINDS: Final = ("refusal", "truncation", "invalid_output")
"""Fixed per request body: the same prompt always misbehaves the same way."""

LINE_KINDS: Final = ("line_expired", "line_failed")
"""Drawn per batch line when the batch is created."""

BATCH_KINDS: Final = (
    "batch_expire", "unknown_custom_id", "drop_output", "external_cancel", "batch_failed",
)  # fmt: skip
"""Drawn per batch when it is created."""

CREATE_KINDS: Final = ("create_lost",)
"""Drawn per ``POST /v1/batches``: the batch is made but the answer is lost."""

DOWNLOAD_KINDS: Final = ("output_truncated",)
"""Drawn per download of a batch's output or error file: the body is cut short."""

KINDS: Final = (
    ATTEMPT_KINDS + ANSWER_KINDS + LINE_KINDS + BATCH_KINDS + CREATE_KINDS + DOWNLOAD_KINDS
)

MODEL_ROUTES: Final = ("chat.completions", "embeddings", "responses", "completions", "moderations")
ROUTES: Final = (
    *MODEL_ROUTES,
    "files.create", "files.list", "files.retrieve", "files.content", "files.delete",
    "batches.create", "batches.list", "batches.retrieve", "batches.cancel",
    # Anthropic's API, served under /anthropic (see _anthropic_app):
    "anthropic.messages", "anthropic.batches.create", "anthropic.batches.list",
    "anthropic.batches.retrieve", "anthropic.batches.cancel", "anthropic.batches.results",
    "anthropic.batches.delete",
)  # fmt: skip
"""The names ``Emulator.inject`` takes, one per OpenAI operation the emulator serves."""

INJECT_KINDS: Final = (
    "rate_limit",
    "server_error",
    "disconnect",
    "not_json",
    "create_lost",
    "truncated",
)
"""What ``Emulator.inject`` can queue: ``create_lost`` only on ``batches.create``,
``truncated`` only on ``files.content``; the others on every route."""


def _rate(instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"fault {attribute.name} must be a fraction from 0 to 1, not {value!r}")


def _field() -> float:
    return attrs.field(default=0.0, validator=_rate, converter=float)


@attrs.frozen(kw_only=True)
class Faults:
    """Fractions (0 to 1) of attempts, answers, lines or batches that misbehave.

    Attempt faults (``rate_limit``, ``server_error``, ``disconnect``) partition one
    draw per HTTP attempt on every route (model calls, files, batches, content
    downloads); answer faults (``refusal``, ``truncation``, ``invalid_output``) are
    decided by a digest of the request body; line faults (``line_expired``,
    ``line_failed``) and batch faults (``batch_expire``, ``unknown_custom_id``,
    ``drop_output``, ``external_cancel``, ``batch_failed``) are drawn when a batch
    is created; ``create_lost`` per batch creation and ``output_truncated`` per
    download of a batch's output or error file.
    """

    rate_limit: float = _field()
    server_error: float = _field()
    disconnect: float = _field()
    refusal: float = _field()
    truncation: float = _field()
    invalid_output: float = _field()
    line_expired: float = _field()
    line_failed: float = _field()
    batch_expire: float = _field()
    unknown_custom_id: float = _field()
    drop_output: float = _field()
    external_cancel: float = _field()
    batch_failed: float = _field()
    create_lost: float = _field()
    output_truncated: float = _field()

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


@attrs.frozen
class Injection:
    """One queued fault: its kind, the HTTP status to answer, and a Retry-After."""

    kind: str
    status: int | None = None
    retry_after: float | None = None


def _check_injection(
    route: str, kind: str, count: int, status: int | None, retry_after: float | None
) -> Injection:
    if route not in ROUTES:
        raise ValueError(f"unknown route {route!r}; choose from {', '.join(ROUTES)}")
    if kind not in INJECT_KINDS:
        raise ValueError(f"unknown fault kind {kind!r}; choose from {', '.join(INJECT_KINDS)}")
    if kind == "create_lost" and route not in ("batches.create", "anthropic.batches.create"):
        raise ValueError(
            "create_lost applies to the batches.create route only (or anthropic.batches.create)"
        )
    if kind == "truncated" and route not in ("files.content", "anthropic.batches.results"):
        raise ValueError(
            "truncated applies to the files.content route only (or anthropic.batches.results)"
        )
    if isinstance(count, bool) or count < 1:
        raise ValueError(f"count must be a positive integer, not {count!r}")
    if retry_after is not None and (kind not in ("rate_limit", "server_error") or retry_after < 0):
        raise ValueError(
            "retry_after is a non-negative number of seconds, for rate_limit or server_error"
        )
    defaults = {"rate_limit": 429, "server_error": 500, "not_json": 200}
    allowed = {
        "rate_limit": range(429, 430),
        "server_error": range(500, 600),
        "not_json": range(200, 600),
        "create_lost": range(500, 600),
    }
    if status is not None and (kind not in allowed or status not in allowed[kind]):
        raise ValueError(f"status {status!r} does not fit a {kind} fault")
    return Injection(kind, status if status is not None else defaults.get(kind), retry_after)


class Injections:
    """One-shot faults queued per route, taken first-in first-out (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queues: dict[str, deque[Injection]] = {}

    def add(
        self,
        route: str,
        kind: str,
        *,
        count: int = 1,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        """Queue ``count`` copies of a fault for the next requests to ``route``.

        Raises:
            ValueError: an unknown route or kind, a kind that does not apply to
                the route, a count below 1, or a status that does not fit.
        """
        injection = _check_injection(route, kind, count, status, retry_after)
        with self._lock:
            self._queues.setdefault(route, deque()).extend([injection] * count)

    def take(self, route: str) -> Injection | None:
        """The next fault queued for ``route`` (removed from the queue), if any."""
        if not self._queues:
            return None
        with self._lock:
            queue = self._queues.get(route)
            if not queue:
                return None
            injection = queue.popleft()
            if not queue:
                del self._queues[route]
            return injection

    def pending(self) -> dict[str, int]:
        """How many faults are still queued, per route."""
        with self._lock:
            return {route: len(queue) for route, queue in self._queues.items()}

    def clear(self) -> None:
        """Drop every queued fault."""
        with self._lock:
            self._queues.clear()


@attrs.frozen
class Fate:
    """What ``Faults`` hold in store for one accepted batch, drawn at its creation."""

    failed: bool
    expire_at: float | None
    """When it expires, as a fraction of its time in progress (None: never)."""
    cancel_at: float | None
    """When someone else cancels it, as a fraction of its time in progress (None: never)."""
    unknown_custom_id: bool
    drop_output: bool


def draw_fate(rng: random.Random, faults: Faults) -> Fate:
    """One batch's fate: always seven draws, so the next batch's fate does not depend on this one."""
    failed, expire, when, cancel, where, unknown, drop = (rng.random() for _ in range(7))
    return Fate(
        failed=failed < faults.batch_failed,
        expire_at=0.2 + 0.6 * when if expire < faults.batch_expire else None,
        cancel_at=0.2 + 0.6 * where if cancel < faults.external_cancel else None,
        unknown_custom_id=unknown < faults.unknown_custom_id,
        drop_output=drop < faults.drop_output,
    )
