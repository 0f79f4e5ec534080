"""The one way the tests read money: run every batch at the server to its end, then the ledger.

The real Batch API bills a batch whether or not anyone polls it, and the emulator
does the same on its clock. A ledger read while batches still run misses what they
are about to bill: an orphaned duplicate batch looks free. ``Emulator.settle``
fast-forwards every batch to its terminal state first, so the figures read after it
are final.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from inert import Request
from inert.emulator import Emulator, Ledger
from inert.testing import op_of


def settled_ledger(emulator: Emulator) -> Ledger:
    """The emulator's ledger after every batch at the server has run to its end."""
    emulator.settle()
    return emulator.ledger


def keys_of(requests: Sequence[Request[Any]]) -> set[str]:
    """The op keys (the ledger's keys) of single-call requests."""
    return {op_of(request).key for request in requests}


def assert_billed_once(
    emulator: Emulator, keys: Iterable[str], *, unanswered: Iterable[str] = ()
) -> None:
    """Each of ``keys`` was billed exactly once and nothing else was billed, once settled.

    ``unanswered`` are ops that ended in an error: each may have been billed once
    (a line the server completed but whose answer never arrived) and never twice.
    """
    counts = settled_ledger(emulator).counts()
    paid = set(keys)
    maybe = set(unanswered) - paid
    wrong = {key: counts.get(key, 0) for key in paid if counts.get(key, 0) != 1}
    wrong |= {key: n for key, n in counts.items() if key not in paid and key not in maybe}
    wrong |= {key: counts[key] for key in maybe if counts.get(key, 0) > 1}
    # (This module is not a test module, so pytest does not rewrite its asserts: say it here.)
    assert not wrong, f"times billed, where each should be once (or never if unasked): {wrong}"
