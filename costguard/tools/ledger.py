"""The costguard store: execution ledger, hash-chained audit trail and thread index.

It lives in the same SQLite file as LangGraph's checkpoints, in tables of its own. Every
ledger change is written in the same transaction as the audit record that describes it, so
neither exists without the other. Audit records carry the SHA-256 of the previous record.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from costguard.state import Alert, Outcome, canonical_json, sha256_hex

GENESIS = "0" * 64

_SCHEMA = """
CREATE TABLE IF NOT EXISTS cg_ledger (
    key TEXT PRIMARY KEY,
    thread_id TEXT NOT NULL,
    digest TEXT NOT NULL,
    step TEXT NOT NULL,
    instance_id TEXT NOT NULL,
    intent_at TEXT NOT NULL,
    confirmed_at TEXT,
    result TEXT
);
CREATE TABLE IF NOT EXISTS cg_audit (
    seq INTEGER PRIMARY KEY,
    at TEXT NOT NULL,
    thread_id TEXT NOT NULL,
    actor TEXT NOT NULL,
    authorized_by TEXT,
    event TEXT NOT NULL,
    instance_id TEXT,
    digest TEXT,
    result TEXT NOT NULL,
    detail TEXT NOT NULL,
    dedupe_key TEXT UNIQUE,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS cg_audit_thread ON cg_audit(thread_id, seq);
CREATE TABLE IF NOT EXISTS cg_threads (
    thread_id TEXT PRIMARY KEY,
    alert_id TEXT NOT NULL,
    status TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    outcome TEXT,
    alert TEXT
);
CREATE INDEX IF NOT EXISTS cg_threads_status ON cg_threads(status, updated_at);
"""


class AuditRecord(BaseModel):
    """What is recorded: who (actor, authorized_by), what, which instance, which plan, result."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    thread_id: str
    actor: str
    event: str
    result: str
    authorized_by: str | None = None
    instance_id: str | None = None
    digest: str | None = None
    detail: str = ""
    dedupe_key: str | None = None  # the same key is recorded once, however often a node re-runs


class StoredAudit(AuditRecord):
    seq: int
    at: str
    prev_hash: str
    hash: str


@dataclass(frozen=True)
class LedgerEntry:
    key: str
    thread_id: str
    digest: str
    step: str
    instance_id: str
    intent_at: str
    confirmed_at: str | None
    result: dict[str, Any] | None

    @property
    def confirmed(self) -> bool:
        return self.confirmed_at is not None


@dataclass(frozen=True)
class VerifyReport:
    ok: bool
    records: int
    first_bad_seq: int | None = None
    problem: str = ""


def _record_hash(prev_hash: str, seq: int, at: str, record: AuditRecord) -> str:
    body = record.model_dump(mode="json")
    body.update({"seq": seq, "at": at, "prev_hash": prev_hash})
    return sha256_hex(canonical_json(body))


def idempotency_key(thread_id: str, digest: str, step: str) -> str:
    return sha256_hex(f"{thread_id}\x1f{digest}\x1f{step}")[:32]


def generation_step(step: str, generation: int) -> str:
    """A step's ledger name in its generation: a plan executed again after an undo is a new
    generation (`shutdown#1`), so its effects are new entries, not the confirmed old ones."""
    return step if generation == 0 else f"{step}#{generation}"


def base_step(step: str) -> str:
    return step.partition("#")[0]


class Store:
    """One short-lived connection per operation: safe across threads and processes (WAL)."""

    def __init__(self, path: Path | str, *, clock: Any = None) -> None:
        self.path = str(path)
        self._clock = clock or (lambda: datetime.now(UTC))
        self._local = threading.local()
        conn = self.connect()
        try:
            conn.executescript(_SCHEMA)
        finally:
            conn.close()

    def now(self) -> datetime:
        now: datetime = self._clock()
        return now

    def _now(self) -> str:
        return self.now().isoformat()

    def connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
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
    def _read(self) -> Iterator[sqlite3.Connection]:
        yield self._conn()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def write(self, sql: str, params: tuple[object, ...]) -> None:
        """One statement in its own transaction."""
        with self._tx() as conn:
            conn.execute(sql, params)

    def write_many(self, statements: list[tuple[str, tuple[object, ...]]]) -> None:
        """Several statements in one transaction (one commit instead of one each)."""
        with self._tx() as conn:
            for sql, params in statements:
                conn.execute(sql, params)

    def query(self, sql: str, params: tuple[object, ...] = ()) -> list[sqlite3.Row]:
        with self._read() as conn:
            return conn.execute(sql, params).fetchall()

    # --- audit -----------------------------------------------------------------------------

    def _append(self, conn: sqlite3.Connection, record: AuditRecord) -> bool:
        if record.dedupe_key is not None:
            seen = conn.execute("SELECT 1 FROM cg_audit WHERE dedupe_key = ?", (record.dedupe_key,)).fetchone()
            if seen:
                return False
        last = conn.execute("SELECT seq, hash FROM cg_audit ORDER BY seq DESC LIMIT 1").fetchone()
        seq = 1 if last is None else int(last["seq"]) + 1
        prev = GENESIS if last is None else str(last["hash"])
        at = self._now()
        conn.execute(
            "INSERT INTO cg_audit (seq, at, thread_id, actor, authorized_by, event, instance_id, digest,"
            " result, detail, dedupe_key, prev_hash, hash) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                seq,
                at,
                record.thread_id,
                record.actor,
                record.authorized_by,
                record.event,
                record.instance_id,
                record.digest,
                record.result,
                record.detail,
                record.dedupe_key,
                prev,
                _record_hash(prev, seq, at, record),
            ),
        )
        return True

    def audit(self, record: AuditRecord) -> bool:
        """Append one record; False when its dedupe key was already recorded."""
        with self._tx() as conn:
            return self._append(conn, record)

    def audit_rows(self, thread_id: str | None = None, *, limit: int = 1000, after_seq: int = 0) -> list[StoredAudit]:
        with self._read() as conn:
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
        prev = GENESIS
        expected_seq = 1
        count = 0
        conn = self.connect()
        try:
            for row in conn.execute("SELECT * FROM cg_audit ORDER BY seq"):
                stored = StoredAudit.model_validate(dict(row))
                count += 1
                if stored.seq != expected_seq:
                    return VerifyReport(False, count, stored.seq, f"record {expected_seq} is missing")
                if stored.prev_hash != prev:
                    return VerifyReport(False, count, stored.seq, "prev_hash does not match the record before")
                record = AuditRecord.model_validate(stored.model_dump(exclude={"seq", "at", "prev_hash", "hash"}))
                if _record_hash(prev, stored.seq, stored.at, record) != stored.hash:
                    return VerifyReport(False, count, stored.seq, "content does not match its hash")
                prev = stored.hash
                expected_seq += 1
        finally:
            conn.close()
        return VerifyReport(True, count)

    # --- ledger ----------------------------------------------------------------------------

    def ledger_get(self, key: str) -> LedgerEntry | None:
        with self._read() as conn:
            row = conn.execute("SELECT * FROM cg_ledger WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        data = dict(row)
        data["result"] = json.loads(data["result"]) if data["result"] else None
        return LedgerEntry(**data)

    def record_intent(
        self, *, key: str, thread_id: str, digest: str, step: str, instance_id: str, audit: AuditRecord
    ) -> LedgerEntry:
        """Write the intent (once) and its audit record, in one transaction."""
        with self._tx() as conn:
            exists = conn.execute("SELECT 1 FROM cg_ledger WHERE key = ?", (key,)).fetchone()
            if not exists:
                conn.execute(
                    "INSERT INTO cg_ledger (key, thread_id, digest, step, instance_id, intent_at) VALUES (?,?,?,?,?,?)",
                    (key, thread_id, digest, step, instance_id, self._now()),
                )
                self._append(conn, audit)
        entry = self.ledger_get(key)
        assert entry is not None
        return entry

    def confirm(self, key: str, result: dict[str, Any], audit: AuditRecord) -> None:
        """Mark the effect done (once) and append its audit record, in one transaction."""
        with self._tx() as conn:
            row = conn.execute("SELECT confirmed_at FROM cg_ledger WHERE key = ?", (key,)).fetchone()
            if row is None:
                raise KeyError(f"no ledger intent for {key}")
            if row["confirmed_at"] is None:
                conn.execute(
                    "UPDATE cg_ledger SET confirmed_at = ?, result = ? WHERE key = ?",
                    (self._now(), canonical_json(result), key),
                )
                self._append(conn, audit)

    def undo_generation(self, thread_id: str, digest: str) -> int:
        """How many times the plan was executed and undone (confirmed undos): its current generation."""
        with self._read() as conn:
            row = conn.execute(
                "SELECT COUNT(*) FROM cg_ledger WHERE thread_id = ? AND digest = ? AND confirmed_at IS NOT NULL"
                " AND (step = 'undo' OR step LIKE 'undo#%')",
                (thread_id, digest),
            ).fetchone()
        return int(row[0])

    def ledger_rows(self, thread_id: str | None = None) -> list[LedgerEntry]:
        with self._read() as conn:
            if thread_id is None:
                rows = conn.execute("SELECT * FROM cg_ledger ORDER BY intent_at").fetchall()
            else:
                rows = conn.execute(
                    "SELECT * FROM cg_ledger WHERE thread_id = ? ORDER BY intent_at", (thread_id,)
                ).fetchall()
        out = []
        for row in rows:
            data = dict(row)
            data["result"] = json.loads(data["result"]) if data["result"] else None
            out.append(LedgerEntry(**data))
        return out

    # --- thread index ----------------------------------------------------------------------

    def set_thread(
        self, thread_id: str, alert_id: str, status: str, outcome: Outcome | None = None, alert: Alert | None = None
    ) -> None:
        """Index a thread's status; the alert is kept so a run killed before its first checkpoint can restart."""
        # defaults left out (they come back on parsing): about a third of the bytes of an outcome
        payload = outcome.model_dump_json(exclude_defaults=True) if outcome is not None else None
        alert_json = alert.model_dump_json(exclude_defaults=True) if alert is not None else None
        with self._tx() as conn:
            conn.execute(
                "INSERT INTO cg_threads (thread_id, alert_id, status, updated_at, outcome, alert) VALUES (?,?,?,?,?,?)"
                " ON CONFLICT(thread_id) DO UPDATE SET status=excluded.status, updated_at=excluded.updated_at,"
                " outcome=COALESCE(excluded.outcome, cg_threads.outcome),"
                " alert=COALESCE(excluded.alert, cg_threads.alert)",
                (thread_id, alert_id, status, self._now(), payload, alert_json),
            )

    def threads(self, status: str | None = None, *, limit: int = 100, offset: int = 0) -> list[dict[str, Any]]:
        with self._read() as conn:
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
        with self._read() as conn:
            row = conn.execute("SELECT * FROM cg_threads WHERE thread_id = ?", (thread_id,)).fetchone()
        return None if row is None else dict(row)
