"""A child process for the randomized crash test: one lexicon batch run, killed at any moment.

Usage: ``python _batch_child.py BASE_URL STORE WORDS``. Runs ``synthesize_entry`` for
the first WORDS sample words through a BatchRunner on STORE and prints ``done``.
"""

from __future__ import annotations

import asyncio
import sys

import openai

from inert import BatchRunner, Store
from lexicon import Lexicon, entry_requests, sample_words

BATCH_LINES = 25
"""Small batches, so a round is several shards and a kill can land between them."""


async def main(base_url: str, store_path: str, words: int) -> None:
    """Run the lexicon pipeline through the Batch API until done (or killed)."""
    async with openai.AsyncOpenAI(base_url=base_url, api_key="sk-crash-child") as client:
        with Store(store_path) as store:
            runner = BatchRunner(
                client,
                store=store,
                poll_interval=0.02,
                poll_interval_max=0.05,
                max_requests_per_batch=BATCH_LINES,
                progress=False,
            )
            await runner.run_all(entry_requests(Lexicon(), sample_words(words)))
    print("done", flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
