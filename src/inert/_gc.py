"""Pausing the cyclic garbage collector around bulk work on acyclic data.

Parsing, stepping or storing 50,000 answers allocates hundreds of thousands of
dicts, lists and tuples that hold no cycles; the collector's repeated passes over
them would otherwise cost more than the work itself. Reference counting still
frees them; cyclic garbage made meanwhile is collected once the pause ends.

When the last pause ends, what the paused work allocated and still holds is moved
to the oldest generation at once (``gc.freeze()`` then ``gc.unfreeze()``, which
costs nothing per object), as the young collections the pause put off would do
after finding it alive, instead of each of them traversing it in turn. Cyclic
garbage made during a pause is then found by the next full collection. Not done
when the application keeps frozen objects of its own (``gc.freeze()`` before a
fork): those stay frozen.

Pauses nest and overlap (two runs in one event loop, a runner's phase inside the
engine's): the collector is off while any pause is active and back on, if it was
on before the first, when the last one ends. So a pause held across an ``await``
never leaves the collector off for good.
"""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Iterator

_lock = threading.Lock()
_pauses = 0
_was_enabled = False


def pause() -> None:
    """Start a pause of the collector; every call needs one :func:`resume`."""
    global _pauses, _was_enabled
    with _lock:
        if _pauses == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _pauses += 1


def resume() -> None:
    """End a pause; the collector runs again when no other pause is active."""
    global _pauses
    with _lock:
        _pauses -= 1
        if _pauses == 0 and _was_enabled:
            if not gc.get_freeze_count():
                gc.freeze()
                gc.unfreeze()
            gc.enable()


@contextlib.contextmanager
def paused_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector while building many acyclic containers."""
    pause()
    try:
        yield
    finally:
        resume()
