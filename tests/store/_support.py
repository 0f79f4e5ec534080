"""Helpers of the store tests: cheap requests, read-only files and small filesystems.

Making a file read-only for root takes more than ``chmod`` (root writes through
permission bits), so as root the helpers use the immutable attribute
(``chattr +i``) or a read-only tmpfs mount; as another user, ``chmod`` is enough.
A small filesystem is a tmpfs mounted with ``size=``; tests that need one are
skipped, with the reason, where it cannot be mounted.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from inert import Op, Request, call
from inert.openai import CHAT_COMPLETIONS, chat
from inert.testing import op_of

MODEL = "gpt-4o-mini"

_TEMPLATE = op_of(chat(model=MODEL, messages=[{"role": "user", "content": "template"}]))


def ask(i: int, salt: str = "") -> Request[str]:
    """The ``i``-th small chat request (the body ``chat`` builds, without its cost)."""
    body = dict(_TEMPLATE.body)
    body["messages"] = [{"role": "user", "content": f"say something about {i}{salt}"}]
    return call(Op(endpoint=CHAT_COMPLETIONS, body=body, decode=_TEMPLATE.decode))


def _run(*argv: str) -> bool:
    return subprocess.run(argv, capture_output=True, check=False).returncode == 0


@contextlib.contextmanager
def read_only(path: Path) -> Iterator[None]:
    """Make a file or directory unwritable, even for root, while the block runs."""
    if os.geteuid() != 0:
        mode = path.stat().st_mode
        path.chmod(0o500 if path.is_dir() else 0o400)
        try:
            yield
        finally:
            path.chmod(mode)
        return
    if shutil.which("chattr") is None or not _run("chattr", "+i", str(path)):
        pytest.skip(f"cannot make {path} read-only for root here (chattr +i failed)")
    try:
        yield
    finally:
        _run("chattr", "-i", str(path))


@contextlib.contextmanager
def small_filesystem(where: Path, size: str) -> Iterator[Path]:
    """A tmpfs of ``size`` (such as ``"2m"``) mounted at a new directory under ``where``."""
    mount_point = where / f"fs-{uuid.uuid4().hex[:8]}"
    mount_point.mkdir()
    if os.geteuid() != 0 or not _run(
        "mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(mount_point)
    ):
        pytest.skip("cannot mount a small tmpfs here (needs root and mount); no disk to fill")
    try:
        yield mount_point
    finally:
        _run("umount", "-l", str(mount_point))


def remount(mount_point: Path, mode: str) -> None:
    """Remount a :func:`small_filesystem` ``"ro"`` or ``"rw"``."""
    assert _run("mount", "-o", f"remount,{mode}", str(mount_point)), f"remount {mode} failed"


def fill(directory: Path, leave: int) -> Path:
    """Fill the filesystem holding ``directory`` until only about ``leave`` bytes are free."""
    filler = directory / "filler"
    chunk = b"\0" * (1 << 16)
    with filler.open("wb", buffering=0) as f, contextlib.suppress(OSError):
        while True:
            f.write(chunk)
    size = filler.stat().st_size
    os.truncate(filler, max(0, size - leave))
    return filler
