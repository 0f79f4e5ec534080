"""``PostgresStore``: the store on a PostgreSQL server, shared by many workers and machines.

``Store("postgresql://user@host/db")`` opens one (``pip install inert[postgres]``).
It holds the same logical schema as the SQLite file (:func:`inert._sql.postgres_ddl`
translates it) and runs the same SQL (``?`` placeholders translated once), over a
pool of psycopg 3 connections. Every transaction that changes the store (answers,
journal, claims and leases) takes a transaction-scoped advisory lock of the store
first, so they run one at a time across every process and machine, exactly as
SQLite's ``BEGIN IMMEDIATE`` makes them on one file; reads run beside them, each a
single statement in autocommit.

Leases are kept by the server's clock (:meth:`PostgresStore.clock`): each store
reads it when it opens, and again every minute, so workers on machines whose clocks
disagree still agree, within a round trip, on when a lease runs out.

Credentials come only from the URL or libpq's environment (``PGPASSWORD``,
``~/.pgpass``): the store keeps, shows and reports the URL without its password
(:attr:`location`), and no message carries it.

Several stores can share one database, each in its own schema: put
``?options=-csearch_path%3Dmyschema`` in the URL (the schema must exist).
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Final

from inert._sql import PgConnection, PgRunner, Rows, Secrets, pg_error, postgres_ddl, redact
from inert._store import _APPLICATION, _SCHEMA, SCHEMA_VERSION, Store, StoreStats
from inert._store import _positive_seconds as positive_seconds
from inert._store_errors import (
    NewerStoreError,
    NotAStoreError,
    StoreError,
    StoreNotFoundError,
    damaged,
)

_NOT_AN_ANSWER: Final = (
    "COALESCE(jsonb_typeof(CAST({column} AS jsonb) -> 'error'), 'null') != 'null'"
)
"""The PostgreSQL form of "this stored body is an error object" (as the SQLite store's)."""
_TABLES: Final = tuple(re.findall(r"CREATE TABLE (\w+)", _SCHEMA))
"""inert's tables, as the schema names them (``meta``, ``responses``, the journal's)."""
_CLOCK_CHECK: Final = 60.0
"""Seconds between two readings of the server's clock (how far this machine's is off)."""
_INSTALL_HINT: Final = (
    "a postgresql:// store needs the PostgreSQL driver: pip install 'inert[postgres]' "
    "(psycopg 3 and psycopg_pool)"
)


def _schema_statements() -> list[str]:
    """Every table of the store, as PostgreSQL DDL (from the SQLite schema)."""
    return postgres_ddl(_SCHEMA)


class PostgresStore(Store):
    """The store on a PostgreSQL database: same answers, journal and usage as the SQLite file.

    Args:
        path: a ``postgresql://`` (or ``postgres://``) URL, as libpq reads it; a
            password in it is used to connect and never shown.
        create: make inert's tables when the database (or schema) has none
            (``False``: raise :class:`~inert.errors.StoreNotFoundError`).
        busy_timeout: seconds a change waits for another worker's transaction
            (the store's lock) before raising :class:`~inert.errors.StoreBusyError`.
        connect_timeout: seconds to wait for the server to answer a new connection.
        pool_size: connections this store keeps at most (threads of one process
            share them).

    Raises:
        StoreConnectionError: the server cannot be reached, or refuses the user,
            password or database (the message names the server without the password).
        NotAStoreError: the database already has tables of these names that are
            not an inert store.
        NewerStoreError, StoreNotFoundError, StoreReadOnlyError: as for a file.
    """

    _not_an_answer = _NOT_AN_ANSWER
    _key_list = "jsonb_array_elements_text(CAST(? AS jsonb)) AS wanted(value)"

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        create: bool = True,
        busy_timeout: float = 30.0,
        connect_timeout: float = 10.0,
        pool_size: int = 4,
    ) -> None:
        url = os.fspath(path) if path is not None else ""
        self.busy_timeout = positive_seconds("busy_timeout", busy_timeout)
        self.location = redact(url)
        self.path = Path(self.location)
        self._lock = threading.RLock()
        self._secrets = Secrets(url, dict(os.environ))
        try:
            import psycopg
            import psycopg_pool
        except ImportError:
            raise StoreError(f"cannot open the store {self.location}: {_INSTALL_HINT}") from None
        timeout = max(1, round(connect_timeout))
        lock_ms = max(1, round(self.busy_timeout * 1000))

        def configure(conn: psycopg.Connection[Any]) -> None:
            conn.execute("SELECT set_config('lock_timeout', %s, false)", (f"{lock_ms}ms",))

        # The first connection is made here, so a refusal is reported as the server
        # said it (a pool only retries); the pool then keeps its own.
        try:
            first = psycopg.connect(url, autocommit=True, connect_timeout=timeout)
        except psycopg.Error as exc:
            raise pg_error(exc, self.location, self._secrets) from None
        with first:
            configure(first)
            self._lock_key = self._open_pg(
                PgConnection(first, self.location, self._secrets), create
            )
        pool: psycopg_pool.ConnectionPool[Any] = psycopg_pool.ConnectionPool(
            url,
            min_size=1,
            max_size=max(1, pool_size),
            kwargs={"autocommit": True, "connect_timeout": timeout},
            configure=configure,
            open=False,
            timeout=self.busy_timeout + timeout,
            name="inert-store",
        )
        self._runner = PgRunner(pool, self.location, self._secrets)
        try:
            pool.open(wait=True, timeout=timeout)
        except psycopg_pool.PoolTimeout as exc:
            pool.close()
            raise pg_error(exc, self.location, self._secrets) from None
        self._conn = self._runner
        self._clock_offset = 0.0
        self._clock_read_at = 0.0
        try:
            self._read_server_clock()
        except StoreError:
            pool.close()
            raise

    # --- the server's clock -----------------------------------------------------------

    def _wall_clock(self) -> float:
        """This machine's clock, seconds since the epoch."""
        return time.time()

    def _read_server_clock(self) -> None:
        """Measure how far the server's clock is from this machine's (half a round trip)."""
        before = self._wall_clock()
        (server,) = self._runner.execute("SELECT EXTRACT(EPOCH FROM clock_timestamp())").fetchone()
        after = self._wall_clock()
        self._clock_offset = float(server) - (before + after) / 2
        self._clock_read_at = time.monotonic()

    def clock(self) -> float:
        """Now on the server's clock (seconds since the epoch): every lease is kept by it.

        Read from this machine's clock and the offset last measured (at most a minute
        ago); a failed reading keeps the previous offset.
        """
        if time.monotonic() - self._clock_read_at > _CLOCK_CHECK:
            with contextlib.suppress(StoreError):
                self._read_server_clock()
        return self._wall_clock() + self._clock_offset

    # --- opening ----------------------------------------------------------------------

    def _open_pg(self, conn: PgConnection, create: bool) -> int:
        """Check the database holds an inert store (or make one); the store's lock number.

        Every opener takes the store's advisory lock first, so with several opening
        a new database at once, exactly one creates the tables (or migrates them).
        """
        (lock_key,) = conn.execute(
            "SELECT hashtextextended('inert store ' || current_schema(), 0)"
        ).fetchone()
        with conn.raw.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(?)", (lock_key,))
            present = self._pg_tables(conn)
            if not present:
                if not create:
                    raise StoreNotFoundError(
                        f"there is no inert store in {self.location}; check the URL "
                        "(nothing was created there)"
                    )
                for statement in _schema_statements():
                    conn.execute(statement)
                conn.executemany(
                    "INSERT INTO meta (key, value) VALUES (?, ?)",
                    [("application", _APPLICATION), ("schema_version", str(SCHEMA_VERSION))],
                )
            else:
                version = self._check_pg_version(conn, present)
                if version < SCHEMA_VERSION:
                    self._migrate_pg(conn, version)
            # The writable check is this real write, before anything can be paid for.
            conn.execute("UPDATE meta SET value = value WHERE key = 'application'")
        return int(lock_key)

    def _pg_tables(self, conn: PgConnection) -> set[str]:
        marks = ",".join("?" * len(_TABLES))
        rows = conn.execute(
            # pg_tables lists every table, also those this user may not read.
            "SELECT tablename FROM pg_catalog.pg_tables "
            f"WHERE schemaname = current_schema() AND tablename IN ({marks})",
            _TABLES,
        ).fetchall()
        return {str(row[0]) for row in rows}

    def _check_pg_version(self, conn: PgConnection, tables: set[str]) -> int:
        meta: dict[str, str] = {}
        if "meta" in tables:
            meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
        if meta.get("application") != _APPLICATION or "schema_version" not in meta:
            raise NotAStoreError(
                f"the database {self.location} has tables named like inert's "
                f"({', '.join(sorted(tables))}) but no inert store; inert wrote nothing to "
                "it: pass another database, or a schema of its own "
                "(?options=-csearch_path%3Dinert)"
            )
        try:
            version = int(meta["schema_version"])
        except ValueError:
            raise damaged(
                self.path, f"its schema version {meta['schema_version']!r} is unreadable"
            ) from None
        if version > SCHEMA_VERSION:
            raise NewerStoreError(
                f"{self.location} was written by a newer inert (store schema version "
                f"{version}; this inert reads up to version {SCHEMA_VERSION}); upgrade inert "
                "(pip install -U inert) or pass another URL to Store(...)"
            )
        return version

    def _migrate_pg(self, conn: PgConnection, version: int) -> None:
        """Bring an older store to this layout (inside the open's locked transaction)."""
        from inert._journal import migrate_journal

        migrate_journal(_Translated(conn), version, SCHEMA_VERSION)
        conn.execute(
            "UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION),)
        )

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[PgConnection]:
        with self._runner.transaction(self._lock_key) as conn:
            yield conn

    def close(self) -> None:
        """Close the store's connections (the store cannot be used afterwards)."""
        self._runner.close()

    def __repr__(self) -> str:
        return f"Store({self.location!r})"

    # --- what it holds ----------------------------------------------------------------

    def stats(self) -> StoreStats:
        """As :meth:`Store.stats`; the size is what inert's tables take on the server."""
        stats = super().stats()
        marks = ",".join("?" * len(_TABLES))
        (size,) = self._conn.execute(
            "SELECT COALESCE(SUM(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            f"WHERE n.nspname = current_schema() AND c.relname IN ({marks})",
            _TABLES,
        ).fetchone()
        import attrs

        return attrs.evolve(stats, size_bytes=int(size))

    def check(self) -> list[str]:
        """``[]`` when every table of the store is there (the server keeps them sound)."""
        with self._runner.connection() as conn:
            missing = set(_TABLES) - self._pg_tables(conn)
        return [f"missing table {name}" for name in sorted(missing)]


class _Translated:
    """A :class:`PgConnection` for SQLite migrations: each ALTER as PostgreSQL DDL."""

    def __init__(self, conn: PgConnection) -> None:
        self._conn = conn

    def execute(self, sql: str, parameters: Any = (), /) -> Rows:
        (statement,) = postgres_ddl(sql)
        return self._conn.execute(statement, parameters)

    def executemany(self, sql: str, parameters: Iterable[Any], /) -> Rows:
        (statement,) = postgres_ddl(sql)
        return self._conn.executemany(statement, parameters)
