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

from inert import Request, RunReport
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


def assert_reports_add_up(emulator: Emulator, reports: Sequence[RunReport]) -> None:
    """Runs that shared one store sent, between them, exactly the calls the ledger billed.

    Each billed call is counted as sent and paid (with its tokens) by exactly one run; a
    run that got an answer another run paid for counts it from the store. Read once every
    batch at the server has run to its end.
    """
    charges = settled_ledger(emulator).charges()
    billed = (
        len(charges),
        len(charges),
        sum(c.prompt_tokens for c in charges),
        sum(c.completion_tokens for c in charges),
    )
    counted = (
        sum(r.ops_sent for r in reports),
        sum(r.ops_paid for r in reports),
        sum(r.prompt_tokens for r in reports),
        sum(r.completion_tokens for r in reports),
    )
    assert billed == counted, (
        f"(calls, paid, prompt tokens, completion tokens): billed {billed}, "
        f"the runs' reports {counted}"
    )
