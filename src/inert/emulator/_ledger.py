"""The billing ledger: every request the emulator charged for, keyed like ops."""

from __future__ import annotations

import threading
from collections.abc import Callable

import attrs


@attrs.frozen
class LedgerEntry:
    """What was billed for one key (``op_key(endpoint, body)``) so far."""

    key: str
    endpoint: str
    times_billed: int
    immediate: int
    batch: int
    prompt_tokens: int
    completion_tokens: int

    @property
    def total_tokens(self) -> int:
        """Prompt plus completion tokens over every billing of this key."""
        return self.prompt_tokens + self.completion_tokens


@attrs.frozen
class Charge:
    """One billing event, in the order the emulator billed them."""

    key: str
    endpoint: str
    batch: bool
    prompt_tokens: int
    completion_tokens: int


class Ledger:
    """A thread-safe account of every billed request.

    Requests that failed with an injected fault (429, 5xx, dropped connection) are
    not billed; refusals, truncated and invalid answers are (the model produced
    them). Batch lines are billed when they complete successfully; expired,
    failed and cancelled lines are not.

    Args:
        before_read: called before every read; the emulator passes the function
            that brings its batches up to now, so the ledger always shows what
            the clock has billed so far, polled or not.
    """

    def __init__(self, *, before_read: Callable[[], None] | None = None) -> None:
        self._before_read = before_read
        self._lock = threading.Lock()
        self._charges: list[Charge] = []
        self._entries: dict[str, LedgerEntry] = {}

    def record(
        self,
        key: str,
        endpoint: str,
        *,
        batch: bool,
        prompt_tokens: int,
        completion_tokens: int,
    ) -> None:
        """Bill one request (used by the emulator; tests only read)."""
        charge = Charge(key, endpoint, batch, prompt_tokens, completion_tokens)
        with self._lock:
            self._charges.append(charge)
            old = self._entries.get(key)
            if old is None:
                old = LedgerEntry(key, endpoint, 0, 0, 0, 0, 0)
            self._entries[key] = LedgerEntry(
                key,
                endpoint,
                old.times_billed + 1,
                old.immediate + (not batch),
                old.batch + batch,
                old.prompt_tokens + prompt_tokens,
                old.completion_tokens + completion_tokens,
            )

    def _sync(self) -> None:
        if self._before_read is not None:
            self._before_read()

    def times_billed(self, key: str) -> int:
        """How many times the request with this key was billed (0 if never)."""
        self._sync()
        with self._lock:
            entry = self._entries.get(key)
            return 0 if entry is None else entry.times_billed

    def total_billed(self) -> int:
        """How many requests were billed in all (immediate and batch lines)."""
        self._sync()
        with self._lock:
            return len(self._charges)

    def counts(self) -> dict[str, int]:
        """Times billed per key."""
        self._sync()
        with self._lock:
            return {key: entry.times_billed for key, entry in self._entries.items()}

    def entries(self) -> list[LedgerEntry]:
        """One entry per billed key, in the order keys were first billed."""
        self._sync()
        with self._lock:
            return list(self._entries.values())

    def charges(self) -> list[Charge]:
        """Every billing event in order."""
        self._sync()
        with self._lock:
            return list(self._charges)

    def billed_more_than_once(self) -> list[str]:
        """Keys billed twice or more: what a resumable client must never cause."""
        self._sync()
        with self._lock:
            return [key for key, entry in self._entries.items() if entry.times_billed > 1]

    def clear(self) -> None:
        """Forget every charge."""
        with self._lock:
            self._charges.clear()
            self._entries.clear()
