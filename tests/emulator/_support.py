"""Helpers shared by the emulator tests: batch lines and files."""

from __future__ import annotations

import json

import openai

TERMINAL = ("completed", "failed", "expired", "cancelled")

BatchLine = dict[str, object]


def chat_line(custom_id: str, prompt: str, *, model: str = "gpt-test") -> BatchLine:
    """One batch input line asking a chat completion."""
    return {
        "custom_id": custom_id,
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": {"model": model, "messages": [{"role": "user", "content": prompt}]},
    }


def jsonl(lines: list[BatchLine]) -> bytes:
    """The JSONL text of batch lines."""
    return "".join(json.dumps(line) + "\n" for line in lines).encode()


def read_jsonl(client: openai.OpenAI, file_id: str | None) -> list[dict[str, object]]:
    """The lines of an output or error file (none when the id is null)."""
    if file_id is None:
        return []
    text = client.files.content(file_id).text
    return [json.loads(line) for line in text.splitlines() if line]
