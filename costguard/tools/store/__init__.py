"""costguard's own records: the execution ledger, the hash-chained audit trail and the thread index."""

from pathlib import Path
from typing import Any

from costguard.tools.store.records import (
    AuditRecord,
    LedgerEntry,
    StoredAudit,
    VerifyReport,
    base_step,
    generation_step,
    idempotency_key,
)
from costguard.tools.store.sqlite import Store


def open_store(location: str | Path, *, clock: Any = None) -> Store:
    """The store at `location`: a `postgresql://` URL (PostgreSQL), else a SQLite file path."""
    if isinstance(location, str) and location.startswith(("postgresql://", "postgres://")):
        from costguard.tools.store.postgres import PostgresStore

        return PostgresStore(location, clock=clock)
    return Store(location, clock=clock)


def store_errors() -> tuple[type[Exception], ...]:
    """The database errors of both backends (telemetry treats them as minor)."""
    import sqlite3

    import psycopg

    return (sqlite3.Error, psycopg.Error)


__all__ = [
    "AuditRecord",
    "LedgerEntry",
    "Store",
    "StoredAudit",
    "VerifyReport",
    "base_step",
    "generation_step",
    "idempotency_key",
    "open_store",
    "store_errors",
]
