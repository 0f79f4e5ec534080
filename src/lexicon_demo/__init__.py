"""The lexicon demo: an application that runs the example pipeline (``inert demo``).

It is not part of the example: ``src/lexicon`` holds what a user's synthesis
code looks like (a connector, models, a pipeline), and imports only inert's
public names; this package drives it. It starts the embedded emulator (or, when
asked, a real endpoint), runs the pipeline with the immediate and the batch
runner, then again on the same store, and prints a few entries and the report
of every run: rounds, calls built, merged, answered from the store, sent and
paid, failures and why, tokens, cost at the immediate and the batch price, time.
"""

from typing import TYPE_CHECKING

from lexicon_demo._main import main
from lexicon_demo._options import build_parser

if TYPE_CHECKING:
    from lexicon_demo._runs import choose_words

__all__ = ["build_parser", "choose_words", "main"]


def __getattr__(name: str) -> object:
    # `choose_words` needs the example (and so the SDK): loaded on first use, so that
    # `inert demo --help` answers without it.
    if name == "choose_words":
        from lexicon_demo._runs import choose_words

        return choose_words
    raise AttributeError(f"module 'lexicon_demo' has no attribute {name!r}")
