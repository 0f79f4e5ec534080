"""Extract the lexicon sample data set from the WordNet 3.0 database files.

Reads ``index.*`` and ``data.*`` as shipped by Debian's ``wordnet-base`` package
(``/usr/share/wordnet``) and writes ``src/lexicon/data/words.json``: a few hundred
common English words, each with its WordNet senses as provider-style definitions
(part of speech, gloss text, the examples quoted in the gloss).

The choice is deterministic: single-word, lowercase, alphabetic lemmas of 3 to 10
letters with 3 to 8 senses across all parts of speech, ranked by how many of their
senses are tagged in the SemCor corpus (WordNet's own frequency signal, the
``tagsense_cnt`` field of the index), ties broken alphabetically. Run it once,
by hand, when the data set should change (CI does not run it)::

    apt-get install wordnet-base
    python scripts/extract_wordnet.py [--wordnet /usr/share/wordnet] [--count 300]

WordNet 3.0 Copyright 2006 by Princeton University; its licence (shipped as
``src/lexicon/data/WORDNET-LICENSE``) permits redistribution with its notice.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Final, NamedTuple, TypedDict

POS_FILES: Final = {"n": "noun", "v": "verb", "a": "adj", "r": "adv"}
POS_NAMES: Final = {"n": "noun", "v": "verb", "a": "adjective", "s": "adjective", "r": "adverb"}
MIN_SENSES: Final = 3
MAX_SENSES: Final = 8
LEMMA: Final = re.compile(r"[a-z]{3,10}")
QUOTED: Final = re.compile(r'"([^"]+)"')
ROOT: Final = Path(__file__).resolve().parent.parent
DEFAULT_OUT: Final = ROOT / "src" / "lexicon" / "data" / "words.json"


class Definition(TypedDict):
    """One provider-style definition: a WordNet sense."""

    part_of_speech: str
    text: str
    examples: list[str]


class Word(TypedDict):
    """A word and its definitions, in WordNet's sense order (noun, verb, adj, adv)."""

    word: str
    definitions: list[Definition]


class IndexEntry(NamedTuple):
    """One line of an ``index.<pos>`` file: a lemma's senses in one part of speech."""

    pos: str
    tagged: int
    offsets: tuple[int, ...]


def read_index(path: Path, pos: str) -> dict[str, IndexEntry]:
    """Lemma → its index entry, from one ``index.<pos>`` file (licence header skipped)."""
    entries: dict[str, IndexEntry] = {}
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            if line.startswith(" "):
                continue
            fields = line.split()
            lemma, synset_count, pointer_count = fields[0], int(fields[2]), int(fields[3])
            rest = fields[4 + pointer_count :]
            tagged = int(rest[1])
            offsets = tuple(int(offset) for offset in rest[2 : 2 + synset_count])
            entries[lemma] = IndexEntry(pos, tagged, offsets)
    return entries


def read_gloss(data: bytes, offset: int) -> tuple[str, str]:
    """``(synset type, gloss)`` of the synset at byte ``offset`` of a ``data.<pos>`` file."""
    end = data.index(b"\n", offset)
    line = data[offset:end].decode("utf-8")
    head, _, gloss = line.partition(" | ")
    return head.split()[2], gloss.strip()


def split_gloss(gloss: str) -> tuple[str, list[str]]:
    """A gloss as its definition text and the example sentences quoted in it."""
    examples = [example.strip() for example in QUOTED.findall(gloss)]
    text = QUOTED.sub("", gloss)
    text = re.sub(r"(\s*;\s*)+$", "", text).strip().strip(";").strip()
    text = re.sub(r"\s*;\s*(;\s*)+", "; ", text)
    return text, examples


def extract(wordnet: Path, count: int) -> list[Word]:
    """The ``count`` chosen words with their definitions, most frequent first."""
    indexes = {pos: read_index(wordnet / f"index.{name}", pos) for pos, name in POS_FILES.items()}
    data = {pos: (wordnet / f"data.{name}").read_bytes() for pos, name in POS_FILES.items()}
    lemmas = sorted({lemma for index in indexes.values() for lemma in index})
    ranked: list[tuple[int, str]] = []
    for lemma in lemmas:
        if not LEMMA.fullmatch(lemma):
            continue
        entries = [index[lemma] for index in indexes.values() if lemma in index]
        senses = sum(len(entry.offsets) for entry in entries)
        if MIN_SENSES <= senses <= MAX_SENSES:
            ranked.append((-sum(entry.tagged for entry in entries), lemma))
    ranked.sort()
    words: list[Word] = []
    for _, lemma in ranked[:count]:
        definitions: list[Definition] = []
        for pos in POS_FILES:
            entry = indexes[pos].get(lemma)
            if entry is None:
                continue
            for offset in entry.offsets:
                kind, gloss = read_gloss(data[pos], offset)
                text, examples = split_gloss(gloss)
                definitions.append(
                    {"part_of_speech": POS_NAMES[kind], "text": text, "examples": examples}
                )
        words.append({"word": lemma, "definitions": definitions})
    return words


def main(argv: list[str] | None = None) -> int:
    """Write the data set; print how many words and definitions it holds."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--wordnet", type=Path, default=Path("/usr/share/wordnet"))
    parser.add_argument("--count", type=int, default=300)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    words = extract(args.wordnet, args.count)
    document = {
        "source": "WordNet 3.0 (Princeton University), Debian package wordnet-base",
        "license": "WordNet 3.0 Copyright 2006 by Princeton University. All rights "
        "reserved. See WORDNET-LICENSE.",
        "words": words,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(document, ensure_ascii=False, indent=None, separators=(",", ":"))
    args.out.write_text(text + "\n", encoding="utf-8")
    total = sum(len(word["definitions"]) for word in words)
    print(f"wrote {len(words)} words, {total} definitions, {len(text)} bytes to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
