"""The store: execution ledger, hash-chained audit trail, thread index and telemetry, in costguard's database.

`Store` is the SQLite one (the default: one file, beside LangGraph's checkpoints); `PostgresStore`
(tools/store/postgres.py) runs the same statements on PostgreSQL for a team. Every ledger change is written in the
same transaction as the audit record that describes it, so neither exists without the other. Audit records carry
the SHA-256 of the previous record. Statements use `?` placeholders and SQL both databases accept.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import tenacity

from costguard.errors import ConfigError, InternalError
from costguard.state import Alert, Outcome, canonical_json
from costguard.tools.store import chain
from costguard.tools.store.records import AuditRecord, LedgerEntry, StoredAudit, VerifyReport, base_step
from costguard.tools.store.schema import SQLITE

ACTIONS = (
    "shutdown",
    "resize",
    "delete",
    "release",
)  # the ledger steps that change a resource (snapshots and undos do not)


Conn = Any  # a connection of either backend: `execute(sql, params)` returning a cursor of name-indexed rows


def _entry(row: Any) -> LedgerEntry:
    data = dict(row)
    data["result"] = json.loads(data["result"]) if data["result"] else None
    return LedgerEntry(**data)


def _locked(exc: BaseException) -> bool:
    return isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc)


def _while_locked() -> tenacity.Retrying:
    """Retry a statement SQLite refused with "database is locked" without waiting, for up to 30 s."""
    return tenacity.Retrying(
        retry=tenacity.retry_if_exception(_locked),
        stop=tenacity.stop_after_delay(30),
        wait=tenacity.wait_random(0.005, 0.05),
        reraise=True,
    )


class Store:
    """The ledger, the audit chain and the thread index, over one SQLite connection per thread (WAL: several
    threads and processes may share the file; writes are short `BEGIN IMMEDIATE` transactions)."""

    def __init__(self, path: Path | str, *, clock: Any = None) -> None:
        self.path = str(path)
        self._clock = clock or (lambda: datetime.now(UTC))
        self._local = threading.local()
        self._leases: dict[str, threading.Lock] = {}
        self._leases_lock = threading.Lock()
        self._create_schema()

    def _create_schema(self) -> None:
        try:
            conn = self.connect()
            try:
                # one write transaction taken up front: processes creating a new file at once wait their turn
                # (busy timeout) instead of meeting mid-script, where SQLite answers "locked" without waiting
                for attempt in _while_locked():
                    with attempt:
                        conn.executescript(f"BEGIN IMMEDIATE;\n{SQLITE}\nCOMMIT;")
            finally:
                conn.close()
        except sqlite3.Error as exc:  # a path that cannot be opened, a file that is not SQLite
            raise ConfigError(f"cannot use {self.path} as costguard's database: {exc}") from exc

    def close(self) -> None:
        """Nothing to release: SQLite connections are per thread and close with it."""

    @contextmanager
    def thread_lease(self, thread_id: str) -> Iterator[None]:
        """Run one graph thread at a time in this process (a duplicate delivery waits, then finds it done).

        SQLite serves one machine; across its processes a thread is handed to one worker by the queue, and
        effects are exactly-once by the ledger either way. PostgresStore holds a lease across machines.
        """
        with self._leases_lock:
            lease = self._leases.setdefault(thread_id, threading.Lock())
        with lease:
            yield

    def now(self) -> datetime:
        now: datetime = self._clock()
        return now

    def _now(self) -> str:
        return self.now().isoformat()

    def connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
        for attempt in _while_locked():  # switching a new file to WAL can be refused at once while another
            with attempt:  # process does the same; the busy timeout does not cover it
                conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA busy_timeout=30000")
        conn.row_factory = sqlite3.Row
        return conn

    def _conn(self) -> sqlite3.Connection:
        """One connection per thread, opened once (opening one costs more than most writes)."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self.connect()
            self._local.conn = conn
        return conn

    @contextmanager
    def reading(self) -> Iterator[Conn]:
        yield self._conn()

    @contextmanager
    def transaction(self) -> Iterator[Conn]:
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    @contextmanager
    def independent(self) -> Iterator[Conn]:
        """A transaction of statements that read nothing they depend on (inserts, upserts): it need not be
        serialised with other writers. SQLite serialises every write anyway; PostgreSQL skips the write lock."""
        with self.transaction() as conn:
            yield conn

    def write(self, sql: str, params: tuple[object, ...]) -> None:
        """One statement in its own transaction (an insert or an upsert: telemetry)."""
        with self.independent() as conn:
            conn.execute(sql, params)

    def write_many(self, statements: list[tuple[str, tuple[object, ...]]]) -> None:
        """Several statements in one transaction (one commit instead of one each)."""
        with self.independent() as conn:
            for sql, params in statements:
                conn.execute(sql, params)

    def query(self, sql: str, params: tuple[object, ...] = ()) -> list[Any]:
        with self.reading() as conn:
            rows: list[Any] = conn.execute(sql, params).fetchall()
        return rows

    # --- audit -----------------------------------------------------------------------------

    def append_audit(self, conn: Conn, record: AuditRecord) -> bool:
        """Append inside the caller's transaction (a change and its record commit together)."""
        return chain.append(conn, record, self._now())

    def audit(self, record: AuditRecord) -> bool:
        """Append one record; False when its dedupe key was already recorded."""
        with self.transaction() as conn:
            return self.append_audit(conn, record)

    def audit_rows(self, thread_id: str | None = None, *, limit: int = 1000, after_seq: int = 0) -> list[StoredAudit]:
        with self.reading() as conn:
            if thread_id is None:
                rows = conn.execute(
                    "SELECT * FROM cg_audit WHERE seq > ? ORDER BY seq LIMIT ?", (after_seq, limit)
                ).fetchall()
            else:
                rows = conn.execute(
                    "SELECT * FROM cg_audit WHERE thread_id = ? AND seq > ? ORDER BY seq LIMIT ?",
                    (thread_id, after_seq, limit),
                ).fetchall()
        return [StoredAudit.model_validate(dict(row)) for row in rows]

    def verify(self) -> VerifyReport:
        """Recompute the chain; name the first record that does not match."""
        conn = self.connect()
        try:
            return chain.verify(conn)
        finally:
            conn.close()

    # --- ledger ----------------------------------------------------------------------------

    def ledger_get(self, key: str) -> LedgerEntry | None:
        with self.reading() as conn:
            row = conn.execute("SELECT * FROM cg_ledger WHERE key = ?", (key,)).fetchone()
        return None if row is None else _entry(row)

    def record_intent(
        self, *, key: str, thread_id: str, digest: str, step: str, instance_id: str, audit: AuditRecord
    ) -> LedgerEntry:
        """Write the intent (once) and its audit record, in one transaction."""
        with self.transaction() as conn:
            exists = conn.execute("SELECT 1 FROM cg_ledger WHERE key = ?", (key,)).fetchone()
            if not exists:
                conn.execute(
                    "INSERT INTO cg_ledger (key, thread_id, digest, step, instance_id, intent_at) VALUES (?,?,?,?,?,?)",
                    (key, thread_id, digest, step, instance_id, self._now()),
                )
                self.append_audit(conn, audit)
        entry = self.ledger_get(key)
        if entry is None:
            raise InternalError(f"the ledger intent {key} was written but cannot be read back")
        return entry

    def confirm(self, key: str, result: dict[str, Any], audit: AuditRecord) -> None:
        """Mark the effect done (once) and append its audit record, in one transaction."""
        with self.transaction() as conn:
            row = conn.execute("SELECT confirmed_at FROM cg_ledger WHERE key = ?", (key,)).fetchone()
            if row is None:
                raise KeyError(f"no ledger intent for {key}")
            if row["confirmed_at"] is None:
                conn.execute(
                    "UPDATE cg_ledger SET confirmed_at = ?, result = ? WHERE key = ?",
                    (self._now(), canonical_json(result), key),
                )
                self.append_audit(conn, audit)

    def undo_generation(self, thread_id: str, digest: str) -> int:
        """How many times the plan was executed and undone (confirmed undos): its current generation."""
        with self.reading() as conn:
            return self._undos(conn, thread_id, digest)

    @staticmethod
    def _undos(conn: Conn, thread_id: str, digest: str) -> int:
        row = conn.execute(
            "SELECT COUNT(*) AS n FROM cg_ledger WHERE thread_id = ? AND digest = ? AND confirmed_at IS NOT NULL"
            " AND (step = 'undo' OR step LIKE 'undo#%')",
            (thread_id, digest),
        ).fetchone()
        return int(row["n"])

    def acted_on(self, instance_id: str, *, except_thread: str) -> LedgerEntry | None:
        """Another thread's confirmed action on the instance that no undo has compensated (the latest), if any."""
        with self.reading() as conn:
            rows = conn.execute(
                "SELECT * FROM cg_ledger WHERE instance_id = ? AND thread_id != ? AND confirmed_at IS NOT NULL"
                " ORDER BY confirmed_at",
                (instance_id, except_thread),
            ).fetchall()
        entries = [_entry(row) for row in rows]
        undone = Counter((e.thread_id, e.digest) for e in entries if base_step(e.step) == "undo")
        acts = [e for e in entries if base_step(e.step) in ACTIONS]
        done = Counter((e.thread_id, e.digest) for e in acts)
        live = [e for e in acts if done[(e.thread_id, e.digest)] > undone[(e.thread_id, e.digest)]]
        return live[-1] if live else None

    def ledger_rows(self, thread_id: str | None = None) -> list[LedgerEntry]:
        with self.reading() as conn:
            if thread_id is None:
                rows = conn.execute("SELECT * FROM cg_ledger ORDER BY intent_at").fetchall()
            else:
                rows = conn.execute(
                    "SELECT * FROM cg_ledger WHERE thread_id = ? ORDER BY intent_at", (thread_id,)
                ).fetchall()
        return [_entry(row) for row in rows]

    def first_notice(self, key: str) -> bool:
        """True the first time `key` is asked for (a notice is sent once, however often its step re-runs)."""
        with self.independent() as conn:
            done = conn.execute(
                "INSERT INTO cg_notices (key, sent_at) VALUES (?, ?) ON CONFLICT DO NOTHING", (key, self._now())
            )
            return bool(done.rowcount == 1)

    # --- thread index ----------------------------------------------------------------------

    def set_thread(
        self, thread_id: str, alert_id: str, status: str, outcome: Outcome | None = None, alert: Alert | None = None
    ) -> None:
        """Index a thread's status; the alert is kept so a run killed before its first checkpoint can restart."""
        with self.independent() as conn:
            self._upsert_thread(conn, thread_id, alert_id, status, outcome, alert)

    def _upsert_thread(
        self,
        conn: Conn,
        thread_id: str,
        alert_id: str,
        status: str,
        outcome: Outcome | None,
        alert: Alert | None,
    ) -> None:
        # defaults left out (they come back on parsing): about a third of the bytes of an outcome
        payload = outcome.model_dump_json(exclude_defaults=True) if outcome is not None else None
        alert_json = alert.model_dump_json(exclude_defaults=True) if alert is not None else None
        conn.execute(
            "INSERT INTO cg_threads (thread_id, alert_id, status, updated_at, outcome, alert) VALUES (?,?,?,?,?,?)"
            " ON CONFLICT(thread_id) DO UPDATE SET status=excluded.status, updated_at=excluded.updated_at,"
            " outcome=COALESCE(excluded.outcome, cg_threads.outcome),"
            " alert=COALESCE(excluded.alert, cg_threads.alert)",
            (thread_id, alert_id, status, self._now(), payload, alert_json),
        )

    def record_outcome(self, outcome: Outcome, *, actor: str, authorized_by: str | None = None) -> bool:
        """Index the thread's outcome and append its audit record, in one transaction.

        The record is written once per thread, plan, status and generation, however often the run is
        replayed: a plan executed again after an undo is a new generation, and a `rolled_back` outcome
        belongs to the generation its (already confirmed) undo closed. False when it was recorded before.
        """
        with self.transaction() as conn:
            generation = 0
            if outcome.digest:
                undos = self._undos(conn, outcome.thread_id, outcome.digest)
                generation = undos - 1 if outcome.status == "rolled_back" else undos
            key = f"outcome:{outcome.thread_id}:{outcome.digest}:{outcome.status}"
            self._upsert_thread(conn, outcome.thread_id, outcome.alert_id, outcome.status, outcome, None)
            return self.append_audit(
                conn,
                AuditRecord(
                    thread_id=outcome.thread_id,
                    actor=actor,
                    authorized_by=authorized_by,
                    event="outcome",
                    instance_id=outcome.instance_id,
                    digest=outcome.digest,
                    result=outcome.status,
                    detail=outcome.reason,
                    dedupe_key=key + (f":{generation}" if generation else ""),
                ),
            )

    def threads(self, status: str | None = None, *, limit: int = 100, offset: int = 0) -> list[dict[str, Any]]:
        with self.reading() as conn:
            if status is None:
                rows = conn.execute(
                    "SELECT * FROM cg_threads ORDER BY updated_at LIMIT ? OFFSET ?", (limit, offset)
                ).fetchall()
            else:
                rows = conn.execute(
                    "SELECT * FROM cg_threads WHERE status = ? ORDER BY updated_at LIMIT ? OFFSET ?",
                    (status, limit, offset),
                ).fetchall()
        return [dict(row) for row in rows]

    def thread(self, thread_id: str) -> dict[str, Any] | None:
        with self.reading() as conn:
            row = conn.execute("SELECT * FROM cg_threads WHERE thread_id = ?", (thread_id,)).fetchone()
        return None if row is None else dict(row)

    def threads_since(self, since: str = "") -> list[dict[str, Any]]:
        """Every indexed thread updated at or after `since` (ISO-8601; "" for all)."""
        with self.reading() as conn:
            rows = conn.execute("SELECT * FROM cg_threads WHERE updated_at >= ?", (since,)).fetchall()
        return [dict(row) for row in rows]

    def thread_statuses(self) -> dict[str, str]:
        """Each thread's status now."""
        with self.reading() as conn:
            return {r["thread_id"]: r["status"] for r in conn.execute("SELECT thread_id, status FROM cg_threads")}

    def reviewed_threads(self) -> set[str]:
        """Threads a person answered (any review event in the audit trail: approved, rejected, edited, refused)."""
        with self.reading() as conn:
            rows = conn.execute("SELECT DISTINCT thread_id FROM cg_audit WHERE event LIKE 'review%'").fetchall()
        return {r["thread_id"] for r in rows}
