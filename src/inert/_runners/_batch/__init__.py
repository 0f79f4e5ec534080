"""The batch runner, in parts.

- :mod:`._lines` — the API's limits, JSONL input lines, shard planning;
- :mod:`._http` — the runner's own calls: no SDK retries, its own retries, typed failures;
- :mod:`._output` — parsing output and error files, the outcome of each line;
- :mod:`._progress` — the progress display;
- :mod:`._capacity` — the enqueued-token estimate and submitting so the queue holds;
- :mod:`._remote` — each provider's batch API behind one seam (OpenAI's Batch API,
  Anthropic's Message Batches), seen by the journal as Batch API batches and lines;
- :mod:`._journal` — :class:`BatchJournal`, remote batches kept in step with the journal;
- :mod:`._runner` — :class:`BatchRunner`, one engine round as Batch API jobs.

Each part imports only the ones listed before it.
"""

from inert._runners._batch._http import CallFailed
from inert._runners._batch._journal import BatchJournal
from inert._runners._batch._lines import (
    MAX_BYTES_PER_BATCH,
    MAX_REQUESTS_PER_BATCH,
    TERMINAL_STATUSES,
    ShardPlan,
    jsonl_line,
    plan_shards,
)
from inert._runners._batch._output import (
    Collected,
    OutputLine,
    is_success,
    parse_output_file,
    parse_output_lines,
)
from inert._runners._batch._progress import ProgressView
from inert._runners._batch._runner import BatchRunner

__all__ = [
    "MAX_BYTES_PER_BATCH",
    "MAX_REQUESTS_PER_BATCH",
    "TERMINAL_STATUSES",
    "BatchJournal",
    "BatchRunner",
    "CallFailed",
    "Collected",
    "OutputLine",
    "ProgressView",
    "ShardPlan",
    "is_success",
    "jsonl_line",
    "parse_output_file",
    "parse_output_lines",
    "plan_shards",
]
