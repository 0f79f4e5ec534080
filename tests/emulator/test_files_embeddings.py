"""Files (upload, read, download, delete) and deterministic embeddings."""

from __future__ import annotations

import base64
import struct

import openai
import pytest
from tests.billing import settled_ledger

from inert.emulator import Emulator


def test_uploaded_file_reads_back(client: openai.OpenAI) -> None:
    """An uploaded file is described with OpenAI's fields and downloads byte for byte."""
    content = b'{"a": 1}\n{"b": 2}\n'
    uploaded = client.files.create(file=("input.jsonl", content), purpose="batch")
    fetched = client.files.retrieve(uploaded.id)
    assert (uploaded.id, "file", len(content), "input.jsonl", "batch", "processed") == (
        fetched.id,
        fetched.object,
        fetched.bytes,
        fetched.filename,
        fetched.purpose,
        fetched.status,
    )
    assert uploaded.id.startswith("file-")
    assert content == client.files.content(uploaded.id).content


def test_deleted_file_is_gone(client: openai.OpenAI) -> None:
    """A deleted file reports deleted and then answers 404."""
    uploaded = client.files.create(file=("x.jsonl", b"{}\n"), purpose="batch")
    deleted = client.files.delete(uploaded.id)
    assert (uploaded.id, True) == (deleted.id, deleted.deleted)
    with pytest.raises(openai.NotFoundError):
        client.files.retrieve(uploaded.id)


def test_embeddings_are_deterministic_vectors(client: openai.OpenAI, emu: Emulator) -> None:
    """Each input gets a fixed 8-number vector by default, the same on every call, and is billed."""
    first = client.embeddings.create(model="emb", input=["river", "stone"])
    again = client.embeddings.create(model="emb", input="river")
    assert [8, 8] == [len(item.embedding) for item in first.data]
    assert first.data[0].embedding == again.data[0].embedding
    assert first.data[0].embedding != first.data[1].embedding
    assert 2 == settled_ledger(emu).total_billed()


def test_embeddings_honour_dimensions_and_base64(client: openai.OpenAI) -> None:
    """The dimensions parameter sets the length, also when the vectors come as base64."""
    floats = client.embeddings.create(model="emb", input="oak", dimensions=5)
    packed = client.embeddings.create(
        model="emb", input="oak", dimensions=5, encoding_format="base64"
    )
    assert 5 == len(floats.data[0].embedding)
    raw = packed.data[0].embedding
    assert isinstance(raw, str)
    decoded = list(struct.unpack("<5f", base64.b64decode(raw)))
    assert floats.data[0].embedding == pytest.approx(decoded, abs=1e-6)
