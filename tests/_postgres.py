"""A throwaway PostgreSQL cluster for the tests and benchmarks of the PostgreSQL store.

``initdb`` makes a cluster in a temporary directory and ``pg_ctl`` starts a server on
it, listening on a unix socket in that directory and on a free loopback port (for
the password tests: the socket trusts the local user, TCP asks for a password).
``initdb`` and ``postgres`` refuse to run as root, and CI runs as root: then both run
as an unprivileged user (``nobody``) over a directory that user owns.

The server binaries are looked up on ``PATH``, then with ``pg_config --bindir``,
then in Debian's ``/usr/lib/postgresql/<version>/bin`` (the newest version):
:func:`server_binaries` returns ``None`` only where none exists. The tests then skip
with that reason — unless the server is required (:func:`server_required`: CI's
``.ci/run`` sets ``INERT_REQUIRE_POSTGRES=1``), where they fail instead, so that a
machine without a server can never turn every PostgreSQL test into a quiet skip.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Final
from urllib.parse import quote

import attrs

SUPERUSER: Final = "inert"
"""The cluster's superuser (trusted on the unix socket)."""
PASSWORD_USER: Final = "worker"
"""A role that logs in over TCP with :data:`PASSWORD` (scram-sha-256)."""
PASSWORD: Final = "s3cret-Pa55word-never-shown"
"""The password of :data:`PASSWORD_USER`: tests check no error text or log shows it."""
_UNPRIVILEGED: Final = "nobody"
_DEBIAN_ROOT: Final = Path("/usr/lib/postgresql")


@attrs.frozen
class ServerBinaries:
    """Where ``initdb``, ``pg_ctl`` and ``postgres`` are."""

    initdb: Path
    pg_ctl: Path


def _version_key(path: Path) -> tuple[int, ...]:
    return tuple(int(part) for part in path.name.split(".") if part.isdigit())


def _candidate_dirs() -> Iterator[Path]:
    found = shutil.which("pg_ctl")
    if found is not None:
        yield Path(found).resolve().parent
    pg_config = shutil.which("pg_config")
    if pg_config is not None:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, check=True, timeout=10
            ).stdout.strip()
            if out:
                yield Path(out)
    if _DEBIAN_ROOT.is_dir():
        versions = sorted(
            (p for p in _DEBIAN_ROOT.iterdir() if _version_key(p)), key=_version_key, reverse=True
        )
        for version in versions:
            yield version / "bin"


def server_binaries() -> ServerBinaries | None:
    """The PostgreSQL server binaries of this machine, or ``None`` where there are none."""
    for directory in _candidate_dirs():
        initdb, pg_ctl = directory / "initdb", directory / "pg_ctl"
        if all(os.access(p, os.X_OK) for p in (initdb, pg_ctl, directory / "postgres")):
            return ServerBinaries(initdb=initdb, pg_ctl=pg_ctl)
    return None


REQUIRE_VARIABLE: Final = "INERT_REQUIRE_POSTGRES"
"""``1``: a missing server fails the PostgreSQL tests; ``0``: it skips them, even on CI."""

NO_SERVER: Final = (
    "no PostgreSQL server binaries (initdb, pg_ctl, postgres) on PATH, in "
    "`pg_config --bindir` or /usr/lib/postgresql/*/bin: install the postgresql "
    "package to run the PostgreSQL store tests"
)
"""Why the PostgreSQL tests cannot run here."""


def server_required(environ: Mapping[str, str]) -> bool:
    """Whether a missing server must fail the tests rather than skip them.

    ``INERT_REQUIRE_POSTGRES=1`` requires it and ``=0`` does not; unset, it is
    required wherever ``CI`` is set (a CI job that cannot run them must say so).
    """
    chosen = environ.get(REQUIRE_VARIABLE, "").strip()
    if chosen in ("0", "1"):
        return chosen == "1"
    if chosen:
        raise ValueError(f"{REQUIRE_VARIABLE} must be 0 or 1, not {chosen!r}")
    return bool(environ.get("CI"))


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@attrs.frozen
class Cluster:
    """A running throwaway server: how to reach it."""

    directory: Path
    socket_dir: Path
    port: int

    def url(self, database: str = "postgres") -> str:
        """A URL for the superuser over the unix socket (no password needed)."""
        return f"postgresql://{SUPERUSER}@/{database}?host={quote(str(self.socket_dir))}&port={self.port}"

    def password_url(self, database: str = "postgres", password: str = PASSWORD) -> str:
        """A URL for :data:`PASSWORD_USER` over TCP, carrying ``password``."""
        return (
            f"postgresql://{PASSWORD_USER}:{quote(password, safe='')}@127.0.0.1:{self.port}"
            f"/{database}"
        )

    @property
    def log(self) -> Path:
        """The server's log file."""
        return self.directory / "server.log"


def _as_unprivileged() -> list[str]:
    """The command prefix that runs a program as a user PostgreSQL accepts."""
    if os.geteuid() != 0:
        return []
    return ["runuser", "-u", _UNPRIVILEGED, "--"]


def _run(command: Sequence[str | os.PathLike[str]], log: Path | None = None) -> None:
    done = subprocess.run(
        [*_as_unprivileged(), *(os.fspath(part) for part in command)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        tail = log.read_text(errors="replace")[-2000:] if log is not None and log.exists() else ""
        raise RuntimeError(
            f"{command[0]} failed ({done.returncode}): {done.stderr.strip()[-2000:]}\n{tail}"
        )


@contextlib.contextmanager
def running_cluster(binaries: ServerBinaries) -> Iterator[Cluster]:
    """Start a throwaway cluster in a temporary directory; stop it and remove it afterwards."""
    directory = Path(tempfile.mkdtemp(prefix="inert-pg-"))
    if os.geteuid() == 0:
        user = pwd.getpwnam(_UNPRIVILEGED)
        os.chown(directory, user.pw_uid, user.pw_gid)
    data = directory / "data"
    cluster = Cluster(directory=directory, socket_dir=directory, port=_free_port())
    started = False
    try:
        _run(
            [
                binaries.initdb,
                "-D",
                data,
                "-U",
                SUPERUSER,
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            ]
        )
        options = (
            f"-c listen_addresses=127.0.0.1 -c port={cluster.port} "
            f"-c unix_socket_directories={directory} -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=100 "
            "-c shared_buffers=32MB"
        )
        _run(
            [
                binaries.pg_ctl,
                "-D",
                data,
                "-l",
                cluster.log,
                "-w",
                "-t",
                "60",
                "-o",
                options,
                "start",
            ],
            cluster.log,
        )
        started = True
        _psql_setup(cluster)
        yield cluster
    finally:
        if started:
            with contextlib.suppress(RuntimeError, subprocess.SubprocessError):
                _run([binaries.pg_ctl, "-D", data, "-m", "immediate", "-w", "stop"])
        shutil.rmtree(directory, ignore_errors=True)


def _psql_setup(cluster: Cluster) -> None:
    """Create the password role (its password never passes through a command line)."""
    import psycopg  # the tests' driver; imported here so the module loads without it
    from psycopg import sql

    with psycopg.connect(cluster.url(), autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {PASSWORD_USER} LOGIN")
        # The password is set as a parameter-free literal on a trusted socket; it is
        # never in a command line, and the server logs no statements.
        conn.execute(
            sql.SQL("ALTER ROLE {} PASSWORD {}").format(
                sql.Identifier(PASSWORD_USER), sql.Literal(PASSWORD)
            )
        )


def fresh_schema(cluster: Cluster, database: str = "postgres") -> str:
    """Create an empty schema (owned by :data:`PASSWORD_USER`); a socket URL that uses it."""
    import psycopg
    from psycopg import sql

    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(cluster.url(database), autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE SCHEMA {} AUTHORIZATION {}").format(
                sql.Identifier(name), sql.Identifier(PASSWORD_USER)
            )
        )
    return f"{cluster.url(database)}&options={quote(f'-csearch_path={name}', safe='')}"


def fresh_database(cluster: Cluster, name: str) -> str:
    """Create an empty database ``name`` (owned by :data:`PASSWORD_USER`); its socket URL."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(cluster.url(), autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE DATABASE {} OWNER {}").format(
                sql.Identifier(name), sql.Identifier(PASSWORD_USER)
            )
        )
    return cluster.url(name)
