"""Batch input: the API's limits, one JSONL line per op, and shard planning.

This is the hot path of a large round: every op's line is built once, measured in
UTF-8 bytes and assigned to a shard under the line and byte limits of one batch.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any, BinaryIO, Final, Literal, NamedTuple

from inert._gc import paused_gc
from inert._json import canonical_dumps
from inert._op import Op

MAX_REQUESTS_PER_BATCH: Final = 50_000
"""OpenAI's limit on lines per batch input file."""
MAX_BYTES_PER_BATCH: Final = 200 * 1024 * 1024
"""OpenAI's limit on the size of a batch input file."""
TERMINAL_STATUSES: Final = frozenset({"completed", "failed", "expired", "cancelled"})
"""Batch statuses after which nothing changes at the server."""
MAX_USER_METADATA: Final = 13  # OpenAI allows 16 pairs; inert adds three

BatchEndpoint = Literal[
    "/v1/responses",
    "/v1/chat/completions",
    "/v1/embeddings",
    "/v1/completions",
    "/v1/moderations",
]
ENDPOINTS: Final[Mapping[str, BatchEndpoint]] = {
    "/v1/responses": "/v1/responses",
    "/v1/chat/completions": "/v1/chat/completions",
    "/v1/embeddings": "/v1/embeddings",
    "/v1/completions": "/v1/completions",
    "/v1/moderations": "/v1/moderations",
}
"""The endpoints the Batch API serves, by path."""


class ShardPlan(NamedTuple):
    """The ops of one future batch: its endpoint, model, byte size and token estimate.

    The JSONL lines are not kept: :meth:`write_to` streams them into the upload, so
    a large round never holds its lines twice.
    """

    endpoint: str
    model: str | None
    ops: list[Op[Any]]
    size: int
    tokens: int

    def write_to(self, file: BinaryIO) -> None:
        """Write the input file's lines (UTF-8, ``\\n``-terminated) into ``file``."""
        head = _line_head(self.endpoint)
        write = file.write
        with paused_gc():
            for op in self.ops:
                # canonical_dumps, not op.canonical_body(): that would keep every body's
                # text alive in its op while the batch runs.
                write(
                    ('{"custom_id":"' + op.key + head + canonical_dumps(op.body) + "}\n").encode()
                )

    def payload(self) -> bytes:
        """The input file's bytes (for tests and small shards)."""
        buffer = io.BytesIO()
        self.write_to(buffer)
        return buffer.getvalue()


def _line_head(endpoint: str) -> str:
    return '","method":"POST","url":' + json.dumps(endpoint) + ',"body":'


def jsonl_line(op: Op[Any], url_json: str | None = None) -> str:
    """One batch input line: ``{"custom_id": key, "method": "POST", "url": ..., "body": ...}``."""
    url = json.dumps(op.endpoint) if url_json is None else url_json
    return (
        '{"custom_id":"'
        + op.key
        + '","method":"POST","url":'
        + url
        + ',"body":'
        + op.canonical_body()
        + "}\n"
    )


def line_tokens(line_bytes: int) -> int:
    """The enqueued-token estimate of a line of ``line_bytes`` bytes (see ``_capacity``)."""
    return line_bytes


def plan_shards(
    ops: Iterable[Op[Any]],
    *,
    max_requests: int,
    max_bytes: int,
    max_tokens: Callable[[str | None], int | None] | None = None,
) -> tuple[list[ShardPlan], list[Op[Any]]]:
    """Group ops by endpoint and model and cut each group under every limit.

    Line sizes are counted in UTF-8 bytes; a body's is :attr:`Op.body_size
    <inert._op.Op.body_size>` (known from its key, so nothing is encoded here). ``max_tokens(model)`` is the known enqueued-token limit
    of a model, if any: shards are cut so their estimate fits under it (a single line
    over it still gets a shard of its own; the server decides).

    Returns:
        the shards in order, and the ops whose single line is larger than
        ``max_bytes`` (they can never be sent as a batch line).
    """
    groups: dict[tuple[str, str | None], list[Op[Any]]] = {}
    for op in ops:
        groups.setdefault((op.endpoint, op.model), []).append(op)
    plans: list[ShardPlan] = []
    too_large: list[Op[Any]] = []
    with paused_gc():
        for (endpoint, model), members in groups.items():
            # Every line is '{"custom_id":"' + key + head + body + '}' and a newline.
            fixed = len('{"custom_id":"') + len(_line_head(endpoint).encode()) + len("}\n")
            token_cap = None if max_tokens is None else max_tokens(model)
            cur_ops: list[Op[Any]] = []
            size = tokens = 0
            for op in members:
                # The body is the op's canonical text: the very bytes the immediate runner
                # posts, so the two modes cannot send different requests. Its size is
                # known from the op's key; the text is made only when it is written (kept,
                # the texts of a large round would stay in memory while its batch runs).
                n = fixed + len(op.key) + op.body_size
                if n > max_bytes:
                    too_large.append(op)
                    continue
                t = line_tokens(n)
                if cur_ops and (
                    len(cur_ops) >= max_requests
                    or size + n > max_bytes
                    or (token_cap is not None and tokens + t > token_cap)
                ):
                    plans.append(ShardPlan(endpoint, model, cur_ops, size, tokens))
                    cur_ops, size, tokens = [], 0, 0
                cur_ops.append(op)
                size += n
                tokens += t
            if cur_ops:
                plans.append(ShardPlan(endpoint, model, cur_ops, size, tokens))
    return plans, too_large
