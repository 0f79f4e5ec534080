"""The errors of a store that cannot be used, each with what happened and the fix.

A store holds answers that were paid for, so no message ever suggests deleting or
moving away a file that may be an inert store: a damaged store says how to copy
its answers out, a read-only or busy one says what to change, and only a file
that is certainly not an inert store is called that::

    StoreError                   base: the store cannot be used (``path``)
    ├── StoreNotFoundError       no store at the path (commands that only read make none)
    ├── NotAStoreError           another kind of file or database; nothing is written to it
    ├── NewerStoreError          written by a newer inert
    ├── DamagedStoreError        an inert store whose file is damaged: recover its answers
    ├── StoreReadOnlyError       the file, its directory or its filesystem cannot be written
    ├── StoreBusyError           another process holds its lock too long (``pid``)
    ├── StoreConnectionError     a PostgreSQL store's server cannot be reached or refuses us
    └── StoreWriteError          a write failed (the disk is full, an I/O error)
        └── UnstoredAnswersError a run's paid answers could not be stored; it stops the run

Every error of the database library is translated here into one of these, as
httpx translates httpcore's, so callers never see a raw ``sqlite3`` exception.
"""

from __future__ import annotations

import fcntl
import os
import struct
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:  # only named in a signature: `inert --help` imports this module
    import sqlite3

from inert._json import JSON

_PRIMARY: Final = 0xFF
_SQLITE_PERM: Final = 3
_SQLITE_BUSY: Final = 5
_SQLITE_LOCKED: Final = 6
_SQLITE_READONLY: Final = 8
_SQLITE_IOERR: Final = 10
_SQLITE_CORRUPT: Final = 11
_SQLITE_FULL: Final = 13
_SQLITE_CANTOPEN: Final = 14
_SQLITE_NOTADB: Final = 26


class StoreError(RuntimeError):
    """The store cannot be used; the message says why and what to do.

    Attributes:
        path: the store file.
    """

    def __init__(self, message: str, *, path: Path | None = None) -> None:
        super().__init__(message)
        self.path = path


class StoreNotFoundError(StoreError):
    """There is no store at the path (a command that only reads creates none)."""


class NotAStoreError(StoreError):
    """The file is not an inert store (another file, database or a special file)."""


class NewerStoreError(StoreError):
    """The store was written by a newer inert than this one."""


class DamagedStoreError(StoreError):
    """An inert store whose file is damaged; its readable answers can be recovered."""


class StoreReadOnlyError(StoreError):
    """The store cannot be written: the file, its directory or its filesystem."""


class StoreBusyError(StoreError):
    """Another connection held the store's lock for longer than the store waits.

    Attributes:
        pid: the process holding the lock, when the system says (``None`` otherwise,
            or when it is this process).
    """

    def __init__(self, message: str, *, path: Path | None = None, pid: int | None = None) -> None:
        super().__init__(message, path=path)
        self.pid = pid


class StoreConnectionError(StoreError):
    """A PostgreSQL store's server cannot be reached, or refuses the URL's user or database.

    The message names the server by its URL without the password, and says what to check.
    """


class StoreWriteError(StoreError):
    """A write to the store failed: the disk is full, or the system reported an I/O error."""


class UnstoredAnswersError(StoreWriteError):
    """A run's paid answers could not be stored, so the run stopped.

    It is raised by the run as soon as a write fails (no further call is sent);
    calls that were already on the wire are waited for, and their answers join
    ``unstored`` if they cannot be stored either.

    Attributes:
        kept: answers this run stored before the failure (they are not paid again).
        unstored: ``(op key, raw response)`` of every paid answer the run could not
            store, so a caller can keep them elsewhere.
    """

    def __init__(
        self, message: str, *, path: Path | None, kept: int, unstored: Sequence[tuple[str, JSON]]
    ) -> None:
        super().__init__(message, path=path)
        self.kept = kept
        self.unstored: list[tuple[str, JSON]] = list(unstored)


def recovery_hint(path: Path) -> str:
    """How to copy a damaged store's readable answers into a new file."""
    return (
        f"its answers were paid for, so keep the file: copy what can be read into a new "
        f"store with `inert store recover {path} NEW_PATH`, then use NEW_PATH"
    )


def damaged(path: Path, detail: str) -> DamagedStoreError:
    """The error for an inert store whose file cannot be read as a database."""
    return DamagedStoreError(
        f"the store {path} is damaged ({detail}); {recovery_hint(path)}", path=path
    )


def read_only(path: Path, why: str) -> StoreReadOnlyError:
    """The error for a store that cannot be written, found before anything is paid."""
    return StoreReadOnlyError(
        f"the store {path} cannot be written ({why}); inert stores every answer as it "
        f"pays for it, so nothing was sent: make the file and its directory {path.parent} "
        "writable, or pass another path",
        path=path,
    )


def why_read_only(path: Path) -> str:
    """Which part of a store refuses writes: the filesystem, the directory or the file."""
    try:
        if os.statvfs(path.parent).f_flag & os.ST_RDONLY:
            return f"the filesystem holding {path.parent} is mounted read-only"
    except OSError:
        pass
    try:
        fd = os.open(path, os.O_RDWR | os.O_NONBLOCK)
    except PermissionError:
        return "the file is read-only"
    except OSError as exc:
        if exc.errno == 30:  # EROFS
            return "the filesystem is read-only"
    else:
        os.close(fd)
    return (
        f"its directory {path.parent} does not let inert create the files SQLite keeps "
        f"beside the store ({path.name}-wal, {path.name}-shm)"
    )


def lock_holder(path: Path) -> int | None:
    """The process holding a write lock on the store, as POSIX ``F_GETLK`` reports it.

    SQLite in WAL mode takes its writer lock on byte 120 of the ``-shm`` file, and
    in rollback mode on the lock bytes at 1 GiB of the database file (sqlite.org,
    "File Locking And Concurrency" and wal.html). Returns ``None`` when no other
    process holds one (this process's own locks never conflict with it) or when the
    system cannot say.
    """
    probes = ((Path(f"{path}-shm"), 120, 8), (path, 0x40000000, 512 + 2))
    for target, start, length in probes:
        try:
            fd = os.open(target, os.O_RDWR | os.O_NONBLOCK)
        except OSError:
            continue
        try:
            # struct flock: short type, short whence, off_t start, off_t len, pid_t pid.
            probe = struct.pack("hhqqi4x", fcntl.F_WRLCK, os.SEEK_SET, start, length, 0)
            kind, _, _, _, pid = struct.unpack("hhqqi4x", fcntl.fcntl(fd, fcntl.F_GETLK, probe))
        except (OSError, struct.error):
            continue
        finally:
            os.close(fd)
        if kind != fcntl.F_UNLCK and pid > 0:
            return int(pid)
    return None


def _command_of(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    text = raw.replace(b"\x00", b" ").decode("utf-8", "replace").strip()
    return f" ({text[:120]})" if text else ""


def busy(path: Path, waited: float) -> StoreBusyError:
    """The error for a store whose lock another connection held too long."""
    pid = lock_holder(path)
    if pid is None:
        holder = "another connection (perhaps another Store on the same file in this process)"
    else:
        holder = f"process {pid}{_command_of(pid)}"
    return StoreBusyError(
        f"the store {path} is busy: {holder} held its lock for more than {waited:g} s; "
        "wait for it to finish or stop it, then run again (nothing was lost)",
        path=path,
        pid=pid,
    )


def translate(exc: sqlite3.Error, path: Path, *, busy_timeout: float) -> StoreError:
    """The :class:`StoreError` for an error the database library raised on an inert store."""
    code = getattr(exc, "sqlite_errorcode", None)
    primary = None if code is None else code & _PRIMARY
    detail = str(exc)
    if primary in (_SQLITE_BUSY, _SQLITE_LOCKED) or "locked" in detail:
        return busy(path, busy_timeout)
    if primary in (_SQLITE_READONLY, _SQLITE_PERM):
        return read_only(path, why_read_only(path))
    if primary == _SQLITE_CANTOPEN:
        return read_only(path, why_read_only(path))
    if primary == _SQLITE_FULL:
        return StoreWriteError(
            f"could not write the store {path}: the disk holding it is full ({detail}); "
            "free some space and run again (what was stored is kept)",
            path=path,
        )
    if primary in (_SQLITE_CORRUPT, _SQLITE_NOTADB):
        return damaged(path, detail)
    if primary == _SQLITE_IOERR:
        return StoreWriteError(
            f"the system reported an I/O error on the store {path} ({detail}); check the "
            "disk, then run again (what was stored is kept)",
            path=path,
        )
    return StoreError(f"the store {path} could not be used: {detail}", path=path)


for _error in (
    StoreError,
    StoreNotFoundError,
    NotAStoreError,
    NewerStoreError,
    DamagedStoreError,
    StoreReadOnlyError,
    StoreBusyError,
    StoreConnectionError,
    StoreWriteError,
    UnstoredAnswersError,
):
    _error.__module__ = "inert.errors"  # tracebacks name their public home
