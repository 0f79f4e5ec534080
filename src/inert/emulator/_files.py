"""Stored files: their OpenAI shape, expiry and listing.

OpenAI's Files API (openai/openai-openapi ``OpenAIFile``, ``FileExpirationAfter``):
a file object carries ``expires_at``; "by default, files with ``purpose=batch``
expire after 30 days and all other files are persisted until they are manually
deleted"; a batch's output and error files expire likewise (30 days unless the
batch's ``output_expires_after`` says otherwise). Once expired a file is gone:
retrieving or downloading it answers 404 "No such File object", and it is no
longer listed.
"""

from __future__ import annotations

import uuid
from typing import Final, Literal

import attrs

from inert._json import JSON, JSONObject

from ._errors import bad_request, not_found_file

DEFAULT_FILE_TTL: Final = 30 * 24 * 3600.0
"""Seconds until a batch input, output or error file expires, as at OpenAI."""

EXPIRING_PURPOSES: Final = ("batch", "batch_output")
"""Purposes whose files expire by default (the rest persist until deleted)."""

MAX_LIST_LIMIT: Final = 10_000


def new_id(prefix: str) -> str:
    """An OpenAI-looking object id such as ``file-5f3a...``."""
    return f"{prefix}{uuid.uuid4().hex[:24]}"


@attrs.define
class StoredFile:
    """One file: its bytes and what the Files API says about it."""

    id: str
    filename: str
    purpose: str
    content: bytes
    created_at: int
    expires_at: float | None = None

    def expired(self, now: float) -> bool:
        """Whether the file's expiry has passed."""
        return self.expires_at is not None and now >= self.expires_at

    def to_json(self) -> JSONObject:
        """The ``OpenAIFile`` object."""
        return {
            "id": self.id,
            "object": "file",
            "bytes": len(self.content),
            "created_at": self.created_at,
            "expires_at": None if self.expires_at is None else int(self.expires_at),
            "filename": self.filename,
            "purpose": self.purpose,
            "status": "processed",
            "status_details": None,
        }


class FileStore:
    """Files by id, in upload order; callers hold the state's lock."""

    def __init__(self) -> None:
        self.files: dict[str, StoredFile] = {}

    def add(
        self, filename: str, purpose: str, content: bytes, *, now: float, ttl: float | None
    ) -> StoredFile:
        """Store a new file that expires ``ttl`` seconds from now (never when None)."""
        stored = StoredFile(
            new_id("file-"),
            filename,
            purpose,
            content,
            int(now),
            None if ttl is None else now + ttl,
        )
        self.files[stored.id] = stored
        return stored

    def get(self, file_id: str, now: float) -> StoredFile:
        """The live file with this id.

        Raises:
            ApiError: 404 "No such File object" when it never existed, was deleted
                or has expired (an expired file is forgotten).
        """
        stored = self.files.get(file_id)
        if stored is not None and stored.expired(now):
            del self.files[file_id]
            stored = None
        if stored is None:
            raise not_found_file(file_id)
        return stored

    def delete(self, file_id: str, now: float) -> None:
        """Delete a live file (404 as ``get`` otherwise)."""
        self.get(file_id, now)
        del self.files[file_id]

    def expire_all(self, now: float, purpose: str | None = None) -> list[str]:
        """Make every file that expires (of ``purpose``, if given) expire now."""
        ids = [
            f.id
            for f in self.files.values()
            if f.expires_at is not None and purpose in (None, f.purpose)
        ]
        for file_id in ids:
            self.files[file_id].expires_at = now
        return ids

    def page(
        self,
        *,
        now: float,
        purpose: str | None,
        after: str | None,
        limit: int,
        order: Literal["asc", "desc"],
    ) -> JSONObject:
        """A ``ListFilesResponse``: live files sorted by ``created_at``, after a cursor."""
        for file_id in [f.id for f in self.files.values() if f.expired(now)]:
            del self.files[file_id]
        ordered = [f for f in self.files.values() if purpose in (None, f.purpose)]
        ordered.sort(key=lambda f: f.created_at)  # stable: upload order within a second
        if order == "desc":
            ordered.reverse()
        start = 0
        if after is not None:
            ids = [f.id for f in ordered]
            start = ids.index(after) + 1 if after in ids else len(ids)
        page = ordered[start : start + limit]
        data: list[JSON] = [f.to_json() for f in page]
        return {
            "object": "list",
            "data": data,
            "first_id": page[0].id if page else None,
            "last_id": page[-1].id if page else None,
            "has_more": start + limit < len(ordered),
        }


def parse_limit(text: str | None, *, default: int, maximum: int) -> int:
    """A list ``limit`` query parameter, from 1 to ``maximum``.

    Raises:
        ApiError: 400 naming ``limit`` when it is not an integer in range.
    """
    if text is None:
        return default
    try:
        limit = int(text)
    except ValueError:
        limit = 0
    if not 1 <= limit <= maximum:
        raise bad_request(
            f"Invalid 'limit': must be an integer from 1 to {maximum:,}.",
            param="limit",
            code="invalid_value",
        )
    return limit
