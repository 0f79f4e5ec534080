"""A local OpenAI-compatible server: model calls, files, batches, faults and a billing ledger.

``with Emulator(faults=Faults(rate_limit=0.1)) as emu:`` serves on loopback in a
background thread; give ``emu.base_url`` to ``openai.OpenAI``/``AsyncOpenAI``.
``inert emulator --port N`` (or ``python -m inert.emulator``) serves it from the
command line. See ``docs/emulator.md``.
"""

from ._faults import Faults
from ._ledger import Charge, Ledger, LedgerEntry
from ._ratelimit import RateLimits
from ._server import Emulator, build_parser, main, serve

__all__ = [
    "Charge",
    "Emulator",
    "Faults",
    "Ledger",
    "LedgerEntry",
    "RateLimits",
    "build_parser",
    "main",
    "serve",
]

for _name in __all__:
    globals()[_name].__module__ = __name__
del _name  # pyright: ignore[reportPossiblyUnboundVariable]  # __all__ is not empty
