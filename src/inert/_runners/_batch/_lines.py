"""Batch input: the API's limits, one JSONL line per op, and shard planning.

This is the hot path of a large round: every op's line is built once, measured in
UTF-8 bytes and assigned to a shard under the line and byte limits of one batch.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any, Final, Literal, NamedTuple

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
    """The ops of one future batch and their JSONL lines (newline-terminated text)."""

    endpoint: str
    model: str | None
    ops: list[Op[Any]]
    lines: list[str]
    size: int

    def payload(self) -> bytes:
        """The input file's bytes."""
        return "".join(self.lines).encode("utf-8")


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


def plan_shards(
    ops: Iterable[Op[Any]], *, max_requests: int, max_bytes: int
) -> tuple[list[ShardPlan], list[Op[Any]]]:
    """Group ops by endpoint and model and cut each group under both limits.

    Line sizes are counted in UTF-8 bytes (ASCII lines, the usual case, are measured
    without encoding them).

    Returns:
        the shards in order, and the ops whose single line is larger than
        ``max_bytes`` (they can never be sent as a batch line).
    """
    groups: dict[tuple[str, str | None], list[Op[Any]]] = {}
    for op in ops:
        groups.setdefault((op.endpoint, op.model), []).append(op)
    plans: list[ShardPlan] = []
    too_large: list[Op[Any]] = []
    for (endpoint, model), members in groups.items():
        head = '","method":"POST","url":' + json.dumps(endpoint) + ',"body":'
        cur_ops: list[Op[Any]] = []
        cur_lines: list[str] = []
        size = 0
        for op in members:
            # The body is the op's canonical text: the very bytes the immediate runner
            # posts, so the two modes cannot send different requests.
            line = '{"custom_id":"' + op.key + head + op.canonical_body() + "}\n"
            n = len(line) if line.isascii() else len(line.encode("utf-8"))
            if n > max_bytes:
                too_large.append(op)
                continue
            if cur_ops and (len(cur_ops) >= max_requests or size + n > max_bytes):
                plans.append(ShardPlan(endpoint, model, cur_ops, cur_lines, size))
                cur_ops, cur_lines, size = [], [], 0
            cur_ops.append(op)
            cur_lines.append(line)
            size += n
        if cur_ops:
            plans.append(ShardPlan(endpoint, model, cur_ops, cur_lines, size))
    return plans, too_large
