"""The shipped sample data set: 300 common English words with their WordNet senses.

``data/words.json`` was extracted once from the WordNet 3.0 database files of
Debian's ``wordnet-base`` package by ``scripts/extract_wordnet.py`` (words with 3
to 8 senses, ranked by SemCor frequency). WordNet 3.0 Copyright 2006 by Princeton
University; its licence, which permits redistribution with this notice, is shipped
beside the data as ``data/WORDNET-LICENSE``.
"""

from __future__ import annotations

import json
from functools import cache
from importlib.resources import files

from lexicon.models import SampleWord


@cache
def load_sample() -> tuple[SampleWord, ...]:
    """Every word of the data set, most frequent first (read from package data once)."""
    text = files("lexicon").joinpath("data/words.json").read_text(encoding="utf-8")
    document = json.loads(text)
    return tuple(SampleWord.model_validate(word) for word in document["words"])


def sample_words(count: int, *, offset: int = 0) -> tuple[SampleWord, ...]:
    """``count`` words of the data set starting at ``offset`` (wrapping around).

    Raises:
        ValueError: ``count`` is negative or larger than the data set.
    """
    words = load_sample()
    if not 0 <= count <= len(words):
        raise ValueError(f"count must be between 0 and {len(words)}; got {count}")
    start = offset % len(words)
    return (words + words)[start : start + count]
