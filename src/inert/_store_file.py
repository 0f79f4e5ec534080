"""Checks on a store's file before SQLite opens it: what it is, where it is, who may read it.

SQLite happily opens a FIFO (and blocks), follows a dangling symlink to create a
world-readable file, or reads a text file until it fails halfway. Each of those is
decided here, from the file itself, before any byte is written:

* the path is resolved (``~`` and symlinks), so a store reached through a symlink
  is the target file, and a new target is created with mode 0600;
* only a regular file is a store; a directory, FIFO, socket or device is refused
  without being read (opened non-blocking);
* the 100-byte SQLite header says whether this is a database at all, whether it
  is an inert store (its ``application_id``) and whether the file was cut short.

SQLite file format: https://www.sqlite.org/fileformat.html (section 1.3, "The
Database Header").
"""

from __future__ import annotations

import errno
import os
import stat
import time
import warnings
from pathlib import Path
from typing import Final

import attrs

from inert._store_errors import (
    DamagedStoreError,
    NotAStoreError,
    StoreError,
    StoreNotFoundError,
    damaged,
    read_only,
)

APPLICATION_ID: Final = 0x696E7274
"""The SQLite ``application_id`` of an inert store ("inrt"), at byte 68 of its header."""

SQLITE_HEADER: Final = b"SQLite format 3\x00"
_HEADER_SIZE: Final = 100
_SIDE_FILES: Final = ("-wal", "-shm", "-journal")
_SETTLE_LOOKS: Final = 40
_SETTLE_PAUSE: Final = 0.025
"""A file that looks cut short is looked at again, this often and this far apart (s).

The first pages of a new store are written by whichever process created it; a
process opening it at that moment can read a header whose pages are not yet on disk.
"""
_INERT_MARKS: Final = (b"applicationinert", b"schema_version")
"""Bytes of an inert store's ``meta`` rows as SQLite's record format lays them out
(the two text values of a row are adjacent), found even in a damaged file."""


class StorePermissionsWarning(UserWarning):
    """A store file could be read by other users; inert made it private (mode 0600)."""


StorePermissionsWarning.__module__ = "inert.errors"  # warnings name its public home


@attrs.frozen
class FileLook:
    """What a store's file is, from its bytes on disk, before SQLite reads it.

    Attributes:
        fresh: empty (just created, here or by another process): a store is made in it.
        inert: the header carries inert's application id (``False`` for a store
            written before the id was set, or before the first checkpoint).
    """

    fresh: bool
    inert: bool


def locate(path: str | os.PathLike[str]) -> Path:
    """The absolute store path with ``~`` expanded and every symlink resolved."""
    return Path(os.path.realpath(Path(path).expanduser()))


def create_private(path: Path) -> bool:
    """Create the store file with mode 0600; ``False`` if it already exists."""
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_NOFOLLOW, 0o600)
    except FileExistsError:
        return False
    except FileNotFoundError:
        raise StoreError(
            f"cannot create the store {path}: its directory does not exist "
            f"({path.parent}); create the directory or pass another path",
            path=path,
        ) from None
    except PermissionError:
        raise read_only(path, f"its directory {path.parent} does not let inert create it") from None
    except OSError as exc:
        if exc.errno == errno.EROFS:
            raise read_only(path, f"the filesystem holding {path.parent} is read-only") from None
        raise StoreError(f"cannot create the store {path}: {exc.strerror}", path=path) from None
    os.close(fd)
    return True


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a regular file"


def inspect(path: Path, *, create: bool) -> FileLook:
    """Look at the file at ``path`` (creating it empty and private if asked) without writing.

    Raises:
        StoreNotFoundError: nothing at ``path`` and ``create`` is false.
        NotAStoreError: a special file, or a file that is not a SQLite database.
        DamagedStoreError: a SQLite file cut short (its header says it is longer),
            still so after :data:`_SETTLE_LOOKS` looks (about a second).
        StoreReadOnlyError: the file cannot be created there.
    """
    if not os.path.lexists(path):
        if not create:
            raise StoreNotFoundError(
                f"there is no store at {path}; check the path (nothing was created there)",
                path=path,
            )
        if create_private(path):
            return FileLook(fresh=True, inert=False)
    for _ in range(_SETTLE_LOOKS - 1):
        try:
            return _look(path)
        except DamagedStoreError:
            # Another process may be writing this store's first pages right now
            # (many processes creating one store at once): what is cut short
            # while being written is whole a moment later; real damage stays.
            time.sleep(_SETTLE_PAUSE)
    return _look(path)


def _look(path: Path) -> FileLook:
    """One look at an existing file at ``path`` (:func:`inspect` without the waiting)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW)
    except PermissionError:
        raise read_only(path, "the file cannot even be read") from None
    except OSError as exc:
        raise StoreError(f"cannot open the store {path}: {exc.strerror}", path=path) from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise NotAStoreError(
                f"the store path {path} is {_kind(info.st_mode)}, not a store file; "
                "pass the path of a file",
                path=path,
            )
        head = os.pread(fd, _HEADER_SIZE, 0)
        info = os.fstat(fd)  # the size as of the header read, not before it
    finally:
        os.close(fd)
    if not head:
        return FileLook(fresh=True, inert=False)
    if not head.startswith(SQLITE_HEADER[: len(head)]) or len(head) < len(SQLITE_HEADER):
        raise NotAStoreError(
            f"{path} is not an inert store (it is not a SQLite database); inert wrote "
            "nothing to it: pass the path of an inert store or of a new file",
            path=path,
        )
    inert = len(head) >= 72 and int.from_bytes(head[68:72], "big") == APPLICATION_ID
    if len(head) < _HEADER_SIZE:
        raise damaged(path, f"the file ends after {len(head)} bytes, inside its header")
    page_size = int.from_bytes(head[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    pages = int.from_bytes(head[28:32], "big")
    # The page count is valid when the "version-valid-for" number matches the change counter.
    if head[92:96] == head[24:28] and pages * page_size > info.st_size:
        if inert or looks_like_inert(path):
            raise damaged(
                path,
                f"the file was cut short: {info.st_size:,} bytes of the "
                f"{pages * page_size:,} its header records",
            )
        raise NotAStoreError(
            f"{path} is a damaged SQLite database (cut short at {info.st_size:,} bytes) and "
            "not recognisably an inert store; inert wrote nothing to it",
            path=path,
        )
    return FileLook(fresh=False, inert=inert)


def looks_like_inert(path: Path, limit: int = 1 << 20) -> bool:
    """True when the file (or its WAL) holds the bytes of an inert store's ``meta`` rows."""
    for candidate in (path, Path(f"{path}-wal")):
        try:
            with candidate.open("rb") as f:
                data = f.read(limit)
        except OSError:
            continue
        if all(mark in data for mark in _INERT_MARKS):
            return True
    return False


def make_private(path: Path) -> None:
    """Take group and other permissions off the store and its side files, with a warning.

    Only access is removed (mode ``& 0o700``), never added: a store its owner made
    read-only stays read-only.
    """
    fixed: list[str] = []
    for candidate in (path, *(Path(f"{path}{suffix}") for suffix in _SIDE_FILES)):
        try:
            mode = stat.S_IMODE(os.stat(candidate).st_mode)
        except FileNotFoundError:
            continue
        if mode & 0o077:
            try:
                os.chmod(candidate, mode & 0o700)
            except OSError as exc:
                warnings.warn(
                    f"the store file {candidate} is readable by other users (mode "
                    f"{mode:04o}) and could not be made private: {exc.strerror}",
                    StorePermissionsWarning,
                    stacklevel=4,
                )
                continue
            fixed.append(f"{candidate.name} {mode:04o} -> {mode & 0o700:04o}")
    if fixed:
        warnings.warn(
            f"the store {path} was readable by other users; inert made it private "
            f"({', '.join(fixed)})",
            StorePermissionsWarning,
            stacklevel=4,
        )
