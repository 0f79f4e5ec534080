"""Pausing the cyclic garbage collector around bulk work on acyclic data."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def paused_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector while building many acyclic containers.

    Parsing or storing 50,000 answers allocates hundreds of thousands of dicts and
    lists that hold no cycles; the collector's repeated passes over them would
    otherwise cost more than the work itself. Reference counting still frees them.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
