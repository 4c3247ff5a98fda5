"""The store on PostgreSQL (`COSTGUARD_DB=postgresql://…`): the same statements as the SQLite store, for many workers
on many machines sharing one database.

Writes that read what they depend on are serialised by a transaction-scoped advisory lock, as SQLite's
`BEGIN IMMEDIATE` serialises them: the audit chain stays one chain with concurrent writers (each append reads the
last record and links to it), a ledger intent is written once however many workers race for it, a resource lock
has one holder. The lock is held for a few statements. Plain inserts and upserts (telemetry, the thread index,
notices) do not take it. Connections come from two psycopg pools, opened lazily and closed with the store: one for
statements, one for thread leases (each held for a whole run, so they must not starve the statements).
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from costguard.errors import ConfigError
from costguard.tools.store import chain
from costguard.tools.store.records import VerifyReport
from costguard.tools.store.schema import POSTGRES, SCHEMA_VERSION
from costguard.tools.store.sqlite import Conn, Store

WRITE_LOCK = 7_262_015  # the advisory lock every serialised store write takes ("costguard")
POOL_MAX = 32  # connections for statements, per process
LEASE_POOL_MAX = 128  # connections holding thread leases, per process: the alerts in flight at once


def is_postgres(location: str) -> bool:
    return location.startswith(("postgresql://", "postgres://"))


def _translate(sql: str) -> str:
    # `?` placeholders become psycopg's `%s`; a literal `%` (in LIKE patterns) must then be doubled
    return sql.replace("%", "%%").replace("?", "%s")


class _PgConn:
    """A pooled connection that takes the SQLite store's statements."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self._conn = conn

    def execute(self, sql: str, params: tuple[object, ...] | list[object] = ()) -> Any:
        return self._conn.execute(_translate(sql), tuple(params)) if params else self._conn.execute(sql)


class PostgresStore(Store):
    """The store on PostgreSQL; `location` is a `postgresql://` URL."""

    def __init__(self, location: str, *, clock: Any = None) -> None:
        self.url = location
        self._pool: ConnectionPool[Any] | None = None
        self._lease_pool: ConnectionPool[Any] | None = None
        self._pool_lock = threading.Lock()
        super().__init__(location, clock=clock)

    # --- connections -------------------------------------------------------------------------

    @property
    def pool(self) -> ConnectionPool[Any]:
        with self._pool_lock:
            if self._pool is None:
                self._pool = self._new_pool(1, POOL_MAX, timeout=60)
            return self._pool

    @property
    def lease_pool(self) -> ConnectionPool[Any]:
        with self._pool_lock:
            if self._lease_pool is None:
                # a run waiting for a lease holds nothing else, so it may wait as long as the runs before it take
                self._lease_pool = self._new_pool(0, LEASE_POOL_MAX, timeout=24 * 3600)
            return self._lease_pool

    def _new_pool(self, min_size: int, max_size: int, *, timeout: float) -> ConnectionPool[Any]:
        return ConnectionPool(
            self.url,
            min_size=min_size,
            max_size=max_size,
            kwargs={"autocommit": True, "row_factory": dict_row, "prepare_threshold": 0},
            open=True,
            timeout=timeout,
        )

    def _create_schema(self) -> None:
        try:
            with psycopg.connect(self.url, autocommit=True) as conn, conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (WRITE_LOCK,))  # two workers creating at once
                conn.execute(POSTGRES)
                conn.execute("CREATE TABLE IF NOT EXISTS cg_schema (version INTEGER NOT NULL)")
                if conn.execute("SELECT version FROM cg_schema").fetchone() is None:
                    conn.execute("INSERT INTO cg_schema (version) VALUES (%s)", (SCHEMA_VERSION,))
        except psycopg.Error as exc:
            raise ConfigError(f"cannot use {self.url} as costguard's database: {exc}") from exc

    @contextmanager
    def reading(self) -> Iterator[Conn]:
        with self.pool.connection() as conn:
            yield _PgConn(conn)

    @contextmanager
    def transaction(self) -> Iterator[Conn]:
        with self.pool.connection() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (WRITE_LOCK,))
            yield _PgConn(conn)

    @contextmanager
    def independent(self) -> Iterator[Conn]:
        with self.pool.connection() as conn, conn.transaction():
            yield _PgConn(conn)

    @contextmanager
    def thread_lease(self, thread_id: str) -> Iterator[None]:
        """One worker on a thread at a time, across machines: a session advisory lock on a connection held for the
        run. A worker that dies loses its connection, and with it the lease; nothing waits for an expiry."""
        key = int.from_bytes(hashlib.sha256(f"thread:{thread_id}".encode()).digest()[:8], "big", signed=True)
        with super().thread_lease(thread_id), self.lease_pool.connection() as conn:
            conn.execute("SELECT pg_advisory_lock(%s)", (key,))
            try:
                yield
            finally:
                conn.execute("SELECT pg_advisory_unlock(%s)", (key,))

    def verify(self) -> VerifyReport:
        with self.reading() as conn:
            return chain.verify(conn)

    def close(self) -> None:
        with self._pool_lock:
            for pool in (self._pool, self._lease_pool):
                if pool is not None:
                    pool.close()
            self._pool = self._lease_pool = None
