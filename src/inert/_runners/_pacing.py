"""Pacing calls under rate limits learned from the server's ``x-ratelimit-*`` headers.

OpenAI answers every call with its organisation's limits for the model and what
is left of them (openai rate-limit guide, "Rate limits in headers")::

    x-ratelimit-limit-requests: 60        x-ratelimit-limit-tokens: 150000
    x-ratelimit-remaining-requests: 59    x-ratelimit-remaining-tokens: 149984
    x-ratelimit-reset-requests: 1s        x-ratelimit-reset-tokens: 6m0s

Limits are per minute and refill continuously; ``reset`` is the time until the
bucket is full again, as a Go duration ("1s", "6m0s", "20ms", "1m30.5s"; plain
seconds are accepted too, as some compatible servers send them).

For every model the runner keeps a *mirror* of each server bucket: the level the
latest answer reported (anchored at the moment its request was sent), refilled at
the limit's rate since, minus what was sent after that request (whose cost the
server has counted but no answer has reported yet). A request waits until every
mirror holds its cost plus a small reserve, so the runner sends as fast as the
limits allow and no faster. Every answer corrects the mirror, so an estimate that
is too high costs only a standing reserve in the server's bucket, not throughput.

Until a model's first answer nothing is known, and calls go out as concurrency
allows (a server's bucket starts full; a first call that waited alone would hold
back every other call for as long as it takes). A 429 holds the whole model for
the wait the server asks for and doubles the reserve (it decays back as answers
succeed): the mirror was wrong, perhaps because another client shares the limit.

Token costs are estimated without a tokenizer (see :func:`estimate_tokens`).
"""

from __future__ import annotations

import asyncio
import math
import re
import time
from collections import deque
from collections.abc import Mapping
from typing import Any, Final

import attrs

from inert._op import Op

RESERVE: Final = 0.02
"""Fraction of a bucket kept unspent, times the caution after 429s."""

MAX_CAUTION: Final = 8.0
"""The most the reserve grows after repeated 429s."""

PACE_WINDOW: Final = 10.0
"""Seconds over which the shown pace (requests and tokens per minute) is measured."""

GUARD: Final = 0.1
"""Seconds before the anchor whose requests still count as unreported (arrival order varies)."""

DEFAULT_HOLD: Final = 1.0
"""Seconds a 429 without ``Retry-After`` holds its model."""

_NAP: Final = 0.25
"""Longest single sleep while waiting for room, so new answers are taken into account."""

_DURATION: Final = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(h|ms|m|s|us|µs|μs|ns)")
_UNIT: Final = {
    "h": 3600.0,
    "m": 60.0,
    "s": 1.0,
    "ms": 1e-3,
    "us": 1e-6,
    "µs": 1e-6,
    "μs": 1e-6,
    "ns": 1e-9,
}


def parse_duration(text: str) -> float | None:
    """Seconds in a reset header: a Go duration ("6m0s", "1s", "20ms", "1h2m3.5s") or seconds.

    Returns None for anything else (an unknown format is ignored, never guessed).
    """
    text = text.strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        return seconds if math.isfinite(seconds) and seconds >= 0 else None
    position, total = 0, 0.0
    for match in _DURATION.finditer(text):
        if match.start() != position:
            return None
        total += float(match.group(1)) * _UNIT[match.group(2)]
        position = match.end()
    return total if position == len(text) and position > 0 else None


def _number(headers: Mapping[str, str], name: str) -> float | None:
    text = headers.get(name)
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) and value >= 0 else None


@attrs.frozen
class Reading:
    """One limit as an answer reports it: per minute, remaining now, seconds to full."""

    per_minute: float
    remaining: float
    reset: float | None


def read_limits(headers: Mapping[str, str]) -> dict[str, Reading]:
    """The ``requests`` and ``tokens`` limits an answer's headers report (either may be absent)."""
    found: dict[str, Reading] = {}
    for kind in ("requests", "tokens"):
        limit = _number(headers, f"x-ratelimit-limit-{kind}")
        remaining = _number(headers, f"x-ratelimit-remaining-{kind}")
        if limit is None or limit <= 0 or remaining is None:
            continue
        reset_text = headers.get(f"x-ratelimit-reset-{kind}")
        reset = None if reset_text is None else parse_duration(reset_text)
        found[kind] = Reading(limit, remaining, reset)
    return found


def estimate_tokens(op: Op[Any]) -> int:
    """Tokens a request counts against a TPM limit, estimated high on purpose.

    A quarter of the length of the body as sent (messages, schema, JSON syntax and
    all: at least any character-based estimate of the prompt) plus the most the
    request may generate (``max_completion_tokens`` or ``max_tokens``, times ``n``),
    as the API reserves it. No tokenizer is used or downloaded.
    """
    body = op.body
    most = body.get("max_completion_tokens")
    if not isinstance(most, int) or isinstance(most, bool):
        most = body.get("max_tokens")
    output = most if isinstance(most, int) and not isinstance(most, bool) and most > 0 else 0
    n = body.get("n")
    choices = n if isinstance(n, int) and not isinstance(n, bool) and n > 0 else 1
    return math.ceil(len(op.canonical_body()) / 4) + output * choices


class _Limit:
    """One limit of one model: its rate, its bucket's size, and its level at the anchor."""

    __slots__ = ("capacity", "level", "per_minute", "rate")

    def __init__(self, reading: Reading) -> None:
        self.per_minute = self.rate = self.capacity = self.level = 0.0
        self.retune(reading)
        self.level = reading.remaining

    def retune(self, reading: Reading) -> None:
        """Take the limit an answer reports (its level is taken only from the anchor)."""
        self.per_minute = reading.per_minute
        self.rate = reading.per_minute / 60.0
        capacity = reading.per_minute
        if reading.reset is not None:
            # A bucket holds at most a minute's worth; a quantized limit holds less.
            capacity = min(capacity, reading.remaining + self.rate * reading.reset)
        self.capacity = max(1.0, capacity, reading.remaining)


class ModelPace:
    """What one model's answers say about its limits, and who may send next (FIFO).

    The *anchor* is the latest-sent request whose answer reported the limits: the
    server's buckets held ``level`` when it arrived (taken as up to ``GUARD`` after
    it was sent: a busy server counts it late). Since then they refilled at their
    rate, and took every request sent after it (and the ones about to be
    sent). Requests sent up to ``GUARD`` seconds before the anchor are counted too
    until their own answer is in, since they may have reached the server after it
    (counting one twice only keeps a little more in reserve; missing one risks a
    429). A request sent longer ago than a full bucket takes to refill no longer
    matters and is forgotten, answered or not.
    """

    def __init__(self, model: str, blind: int) -> None:
        self.model = model
        self.known: dict[str, _Limit] = {}
        self.unlimited = False
        self.answered = False
        self.blind = blind
        self.outstanding = 0
        self.anchor_at = -math.inf
        self.counted_at = -math.inf
        self.sent: deque[Ticket] = deque()
        self.sent_requests = 0
        self.sent_tokens = 0
        self.pending_requests = 0
        self.pending_tokens = 0
        self.hold_until = 0.0
        self.caution = 1.0
        self.lock = asyncio.Lock()
        self.changed = asyncio.Event()
        self.recent: deque[tuple[float, int]] = deque()
        self.recent_tokens = 0

    def limits(self) -> tuple[float | None, float | None]:
        """The learned (requests per minute, tokens per minute); None where unknown."""
        requests, tokens = self.known.get("requests"), self.known.get("tokens")
        return (
            None if requests is None else requests.per_minute,
            None if tokens is None else tokens.per_minute,
        )

    def room(self, kind: str, now: float) -> float:
        """What the server's ``kind`` bucket holds now, less what is sent or about to be."""
        limit = self.known[kind]
        refilled = limit.level + limit.rate * max(0.0, now - self.counted_at)
        refilled = min(limit.capacity, refilled)
        if kind == "requests":
            return refilled - self.sent_requests - self.pending_requests
        return refilled - self.sent_tokens - self.pending_tokens

    def _prune(self, now: float) -> None:
        """Forget sent requests the server's reported level already includes (or outlived)."""
        sent = self.sent
        if not self.known:
            horizon = now - 60.0  # the first answer with limits may anchor in the last minute
            while sent and sent[0].sent_at <= horizon:
                self._forget_oldest()
            return
        refill = max(limit.capacity / limit.rate for limit in self.known.values())
        horizon = max(self.anchor_at - GUARD, now - refill)
        anchor = self.anchor_at
        while sent:
            oldest = sent[0]
            if oldest.sent_at > horizon and not (oldest.done and oldest.sent_at <= anchor):
                break
            self._forget_oldest()

    def _wait(self, tokens: int, now: float) -> float:
        self._prune(now)
        if now < self.hold_until:
            return self.hold_until - now
        wait = 0.0
        for kind, limit in self.known.items():
            amount = 1.0 if kind == "requests" else float(tokens)
            reserve = max(1.0, RESERVE * self.caution * limit.capacity)
            # A request larger than the bucket waits for a full one (the server decides).
            need = min(amount + reserve, limit.capacity)
            short = need - self.room(kind, now)
            if short > 0:
                wait = max(wait, short / limit.rate)
        return wait

    async def admit(self, tokens: int) -> Ticket:
        """Wait for this model's turn and room under its limits; the ticket reserves it."""
        while not self.answered and self.outstanding >= self.blind:
            # Nothing known yet: no more out than one wave of calls until an answer.
            self.changed.clear()
            await self.changed.wait()
        if not self.lock.locked() and self._wait(tokens, time.monotonic()) <= 0:
            return self._admitted(tokens)  # room now and nobody waiting: no hand-off
        async with self.lock:
            while True:
                wait = self._wait(tokens, time.monotonic())
                if wait <= 0:
                    return self._admitted(tokens)
                await asyncio.sleep(min(wait, _NAP))

    def _admitted(self, tokens: int) -> Ticket:
        self.pending_requests += 1
        self.pending_tokens += tokens
        self.outstanding += 1
        if not self.unlimited:
            self._count(tokens)
        return Ticket(self, tokens)

    def _count(self, tokens: int) -> None:
        now = time.monotonic()
        self.recent.append((now, tokens))
        self.recent_tokens += tokens
        while self.recent and self.recent[0][0] < now - PACE_WINDOW:
            self.recent_tokens -= self.recent.popleft()[1]

    def record(self, ticket: Ticket) -> None:
        """A request of this model went on the wire."""
        if self.unlimited:
            return
        self.sent.append(ticket)
        self.sent_requests += 1
        self.sent_tokens += ticket.tokens

    def _forget_oldest(self) -> None:
        ticket = self.sent.popleft()
        self.sent_requests -= 1
        self.sent_tokens -= ticket.tokens

    def pace(self) -> str | None:
        """This model's pace against its limits, e.g. ``gpt-4o-mini 2.9k/3k rpm 1.1M/1.2M tpm``."""
        if not self.known or not self.recent:
            return None
        now = time.monotonic()
        span = max(1.0, min(PACE_WINDOW, now - self.recent[0][0]))
        parts = [self.model]
        requests, tokens = self.known.get("requests"), self.known.get("tokens")
        if requests is not None:
            parts.append(
                f"{_short(len(self.recent) * 60 / span)}/{_short(requests.per_minute)} rpm"
            )
        if tokens is not None:
            parts.append(
                f"{_short(self.recent_tokens * 60 / span)}/{_short(tokens.per_minute)} tpm"
            )
        return " ".join(parts)

    def observe(
        self,
        sent_at: float,
        headers: Mapping[str, str] | None,
        status: int | None,
        retry_after: float | None,
    ) -> None:
        """Learn from the answer to a request sent at ``sent_at`` (``headers`` None: no answer)."""
        if headers is None:
            return
        if not self.answered:
            self.answered = True
            self.changed.set()
        readings = read_limits(headers)
        ok = status is not None and 200 <= status < 300
        if not readings:
            if ok:  # answered without limits: this model is not limited
                self.known.clear()
                self.unlimited = True
                self.sent.clear()
                self.sent_requests = self.sent_tokens = 0
        elif sent_at >= self.anchor_at:  # the newest report: it becomes the anchor
            self.unlimited = False
            self.anchor_at = sent_at
            # The server counted it between its sending and its answer: refill from the
            # later of the two, but at most GUARD after sending (a long answer is not a
            # late count).
            self.counted_at = min(time.monotonic(), sent_at + GUARD)
            self.known = {kind: _Limit(reading) for kind, reading in readings.items()}
        else:  # an older report: only a changed limit is news
            for kind, reading in readings.items():
                limit = self.known.get(kind)
                if limit is not None and limit.per_minute != reading.per_minute:
                    limit.retune(reading)
        if status == 429:
            # The estimate was wrong (another client may share the limit): hold the
            # whole model for the wait the server asks for, and keep more in reserve.
            wait = retry_after if retry_after is not None else DEFAULT_HOLD
            self.hold_until = max(self.hold_until, time.monotonic() + wait)
            self.caution = min(MAX_CAUTION, self.caution * 2)
        elif ok and self.caution > 1.0:
            self.caution = max(1.0, self.caution * 0.95)
        self._prune(time.monotonic())


def _short(value: float) -> str:
    for limit, suffix in ((1e6, "M"), (1e3, "k")):
        if value >= limit:
            return f"{value / limit:.3g}{suffix}"
    return f"{value:.0f}"


class Ticket:
    """One admitted attempt: its reservation until it is sent, then when it was sent."""

    __slots__ = ("done", "pace", "reserved", "sent_at", "tokens")

    def __init__(self, pace: ModelPace, tokens: int) -> None:
        self.pace = pace
        self.tokens = tokens
        self.reserved = True
        self.done = False
        self.sent_at = 0.0

    def send(self) -> None:
        """The attempt goes on the wire now: its cost moves from reserved to sent."""
        pace = self.pace
        self.sent_at = time.monotonic()
        if self.reserved:
            self.reserved = False
            pace.pending_requests -= 1
            pace.pending_tokens -= self.tokens
        pace.record(self)

    def release(self) -> None:
        """The attempt is over, sent or not: give back what it still reserves."""
        pace = self.pace
        if self.reserved:
            self.reserved = False
            pace.pending_requests -= 1
            pace.pending_tokens -= self.tokens
        if not self.done:  # ended without an answer (cancelled, or never sent)
            self.done = True
            pace.outstanding -= 1
            if not pace.answered:
                pace.changed.set()

    def answered(
        self, headers: Mapping[str, str] | None, status: int | None, retry_after: float | None
    ) -> None:
        """Report the attempt's answer (or, with ``headers`` None, that none came)."""
        self.done = True
        pace = self.pace
        pace.outstanding -= 1
        if headers is None and not pace.answered:
            pace.changed.set()  # no answer, but one more may go out
        pace.observe(self.sent_at, headers, status, retry_after)


class Pacer:
    """Every model's pace on one event loop (the locks belong to it).

    Args:
        blind: how many calls of a model may be out before its first answer says
            what its limits are (the runner's concurrency: one wave).
    """

    def __init__(self, blind: int) -> None:
        self.blind = blind
        self.models: dict[str, ModelPace] = {}

    def pace(self, model: str) -> ModelPace:
        pace = self.models.get(model)
        if pace is None:
            pace = self.models[model] = ModelPace(model, self.blind)
        return pace

    def summary(self) -> str:
        """Every limited model's pace against its limits, for the progress display."""
        return ", ".join(p for p in (m.pace() for m in self.models.values()) if p is not None)
