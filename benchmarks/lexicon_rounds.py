"""Rounds and API calls of the lexicon pipeline: inert vs the usual hand-written asyncio code.

Run: ``.venv/bin/python benchmarks/lexicon_rounds.py [--quick] [--words N ...]``.

* inert: ``lexicon.synthesize_entry`` for every word, run together with a
  ``FakeRunner`` in round mode (how the batch runner schedules): rounds, calls
  built, calls deduplicated, calls sent.
* hand-written: the same pipeline written the usual way, async methods on a
  connector calling a (fake) async client, one ``asyncio.gather`` per stage, words
  awaited one after another. It has no dedup, so repeated sub-requests (word forms
  of the same word and part of speech, register and domain of the same text) are
  sent again; its rounds are the ``gather`` stages it awaits in sequence, which is
  how many Batch API jobs in a row it would need.

Both sides get their answers from the same deterministic in-memory API and must
produce equal entries.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final, TypeVar

from pydantic import BaseModel

if __package__ in (None, ""):  # run as a script: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import _fakeapi
from inert._json import canonical_dumps
from inert.testing import FakeRunner
from lexicon import (
    Antonyms,
    Definition,
    Entry,
    Examples,
    Lexicon,
    MeaningCluster,
    MeaningClusters,
    PartOfSpeech,
    Pronunciation,
    ProviderDefinition,
    RegisterDomain,
    SampleWord,
    Synonyms,
    SynthesizedDefinition,
    UsageNotes,
    WordFacts,
    WordForms,
    entry_requests,
)
from lexicon.connector import format_definitions, load_templates, render
from lexicon.pipeline import sources_of

M = TypeVar("M", bound=BaseModel)

FULL_WORDS: Final = (10, 100, 1_000)
QUICK_WORDS: Final = (10, 100)


class FakeAsyncClient:
    """A stand-in for ``client.chat.completions.parse`` that counts what it is sent."""

    def __init__(self) -> None:
        self.calls = 0
        self.bodies: Counter[str] = Counter()

    async def parse(
        self, *, model: str, messages: list[dict[str, str]], response_format: type[M]
    ) -> M:
        """Answer one structured-output call (after yielding to the loop, as I/O would)."""
        body: dict[str, Any] = {
            "model": model,
            "stream": False,
            "messages": messages,
            "response_format": _fakeapi.response_format(response_format),
        }
        self.calls += 1
        self.bodies[canonical_dumps(body)] += 1
        await asyncio.sleep(0)
        parsed: M = _fakeapi.decode_content(_fakeapi.answer(body), response_format)
        return parsed


class HandWrittenConnector:
    """The connector as one writes it without inert: an async method per call."""

    def __init__(self, client: FakeAsyncClient, *, model: str = "gpt-4o-mini") -> None:
        self.client = client
        self.model = model
        self.templates = load_templates()

    async def _ask(self, name: str, response_format: type[M], **values: str) -> M:
        prompt = render(self.templates[name], **values)
        return await self.client.parse(
            model=self.model,
            messages=[{"role": "user", "content": prompt}],
            response_format=response_format,
        )

    async def clusters(self, word: str, provider: Sequence[ProviderDefinition]) -> MeaningClusters:
        """Round 1: the meaning clusters."""
        text = format_definitions(provider, numbered=True)
        return await self._ask("clusters", MeaningClusters, word=word, definitions=text)

    async def pronunciation(self, word: str) -> Pronunciation:
        """Round 1: the pronunciation."""
        return await self._ask("pronunciation", Pronunciation, word=word)

    async def facts(self, word: str) -> WordFacts:
        """Round 1: the word facts."""
        return await self._ask("facts", WordFacts, word=word)

    async def define(
        self, word: str, cluster: MeaningCluster, sources: Sequence[ProviderDefinition]
    ) -> SynthesizedDefinition:
        """Round 2: one definition per cluster."""
        return await self._ask(
            "define",
            SynthesizedDefinition,
            word=word,
            part_of_speech=cluster.part_of_speech,
            gloss=cluster.gloss,
            sources=format_definitions(sources, numbered=False),
        )

    async def sense(
        self, name: str, response_format: type[M], word: str, pos: PartOfSpeech, text: str
    ) -> M:
        """Round 3: one enhancement of a definition."""
        return await self._ask(
            name, response_format, word=word, part_of_speech=pos, definition=text
        )

    async def register_domain(self, text: str) -> RegisterDomain:
        """Round 3: register and domain of a definition text."""
        return await self._ask("register_domain", RegisterDomain, definition=text)

    async def word_forms(self, word: str, pos: PartOfSpeech) -> WordForms:
        """Round 3: the word forms (asked again for every definition, as usual code does)."""
        return await self._ask("word_forms", WordForms, word=word, part_of_speech=pos)


class Stages:
    """Counts the ``gather`` stages awaited one after another."""

    def __init__(self) -> None:
        self.count = 0


async def hand_written_entry(
    conn: HandWrittenConnector, sample: SampleWord, stages: Stages
) -> Entry:
    """One word's entry, one ``asyncio.gather`` per stage."""
    word, provider = sample.word, sample.definitions
    found, pronunciation, facts = await asyncio.gather(
        conn.clusters(word, provider), conn.pronunciation(word), conn.facts(word)
    )
    stages.count += 1
    clusters = found.clusters
    synthesized = await asyncio.gather(
        *(conn.define(word, c, sources_of(c, provider)) for c in clusters)
    )
    stages.count += 1

    async def enhance(cluster: MeaningCluster, text: str) -> Definition:
        pos = cluster.part_of_speech
        synonyms, antonyms, examples, notes, register, forms = await asyncio.gather(
            conn.sense("synonyms", Synonyms, word, pos, text),
            conn.sense("antonyms", Antonyms, word, pos, text),
            conn.sense("examples", Examples, word, pos, text),
            conn.sense("usage_notes", UsageNotes, word, pos, text),
            conn.register_domain(text),
            conn.word_forms(word, pos),
        )
        return Definition(
            cluster=cluster,
            text=text,
            synonyms=tuple(synonyms.synonyms),
            antonyms=tuple(antonyms.antonyms),
            examples=tuple(examples.sentences),
            usage_notes=tuple(notes.notes),
            usage_register=register.usage_register,
            domain=register.domain,
            word_forms=tuple(forms.forms),
        )

    definitions = await asyncio.gather(
        *(enhance(c, d.text) for c, d in zip(clusters, synthesized, strict=True))
    )
    stages.count += 1
    return Entry(
        word=word, pronunciation=pronunciation, facts=facts, definitions=tuple(definitions)
    )


async def hand_written(words: Sequence[SampleWord]) -> tuple[list[Entry], dict[str, Any]]:
    """The usual pipeline over ``words``: entries and its counts."""
    client = FakeAsyncClient()
    conn = HandWrittenConnector(client)
    stages = Stages()
    started = time.process_time()
    entries = [await hand_written_entry(conn, sample, stages) for sample in words]
    seconds = time.process_time() - started
    distinct = len(client.bodies)
    return entries, {
        "calls_sent": client.calls,
        "distinct_calls": distinct,
        "duplicate_calls": client.calls - distinct,
        "rounds": stages.count,
        "cpu_seconds": seconds,
    }


async def with_inert(words: Sequence[SampleWord]) -> tuple[list[Entry], dict[str, Any]]:
    """The inert pipeline over ``words`` in round mode: entries and its counts."""
    fake = FakeRunner(_fakeapi.respond)
    started = time.process_time()
    entries = await fake.run_all(entry_requests(Lexicon(), words))
    seconds = time.process_time() - started
    report = fake.report
    return entries, {
        "calls_built": report.ops_requested,
        "calls_deduplicated": report.ops_deduplicated,
        "calls_sent": report.ops_sent,
        "rounds": report.rounds,
        "round_sizes": list(report.round_sizes),
        "cpu_seconds": seconds,
    }


def compare(count: int) -> dict[str, Any]:
    """Both pipelines on ``count`` words; raises if their entries differ."""
    words = _fakeapi.words(count)
    inert_entries, inert = asyncio.run(with_inert(words))
    hand_entries, hand = asyncio.run(hand_written(words))
    if inert_entries != hand_entries:
        raise AssertionError(f"{count} words: inert and the hand-written pipeline disagree")
    return {
        "words": count,
        "inert": inert,
        "hand_written": hand,
        "calls_saved": hand["calls_sent"] - inert["calls_sent"],
        "calls_ratio": inert["calls_sent"] / hand["calls_sent"],
    }


def run(*, quick: bool = False, words: Sequence[int] | None = None) -> dict[str, Any]:
    """Compare at every word count; the result is plain JSON."""
    counts = words if words is not None else (QUICK_WORDS if quick else FULL_WORDS)
    return {"name": "lexicon_rounds", "quick": quick, "rows": [compare(n) for n in counts]}


def render_text(result: Mapping[str, Any]) -> str:
    """The result as a plain-text table."""
    lines = [
        f"{'words':>6} | {'inert rounds':>12} {'built':>7} {'dedup':>6} {'sent':>7} | "
        f"{'hand rounds':>11} {'sent':>7} {'dups':>6}"
    ]
    for r in result["rows"]:
        i, h = r["inert"], r["hand_written"]
        lines.append(
            f"{r['words']:6d} | {i['rounds']:12d} {i['calls_built']:7d} "
            f"{i['calls_deduplicated']:6d} {i['calls_sent']:7d} | "
            f"{h['rounds']:11d} {h['calls_sent']:7d} {h['duplicate_calls']:6d}"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: print the table and the result as one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer words")
    parser.add_argument("--words", type=int, nargs="+", help="word counts to compare")
    args = parser.parse_args(argv)
    result = run(quick=args.quick, words=args.words)
    print(render_text(result))
    print("RESULT " + json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
