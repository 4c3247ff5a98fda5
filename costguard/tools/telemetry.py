"""Telemetry at the model and agent levels, in the costguard SQLite file; plus the decision cache.

- model: every call (model, tokens, latency, prompt hash, schema-valid, error, served from cache);
- agent: every node run (success, duration, error class, decision confidence);
- the decision cache: a prompt hash seen within the TTL reuses the earlier decision, no model call.
Business figures are read from the thread index and the audit trail (see costguard.app.metrics).
Telemetry is minor: a failure to record is logged and never fails a run.

Step and model-call rows are buffered per thread and written in one transaction when the
thread ends or pauses (`flush`: the report node, an interrupt, a failure, the end of a run);
a process killed mid-run loses the in-flight thread's rows, never a ledger or audit record.
"""

from __future__ import annotations

import threading
from dataclasses import astuple, dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog

from costguard.state import Decision
from costguard.tools.store import Store, store_errors

log = structlog.get_logger(__name__)
MAX_BUFFERED = 64  # rows a thread may hold before they are written without waiting for its end


@dataclass(frozen=True)
class StepRecord:
    """One node run (agent level)."""

    thread_id: str
    node: str
    ok: bool
    duration_s: float
    error_class: str | None = None
    confidence: float | None = None


@dataclass(frozen=True)
class ModelCallRecord:
    """One model call, or one decision served from the cache (model level)."""

    thread_id: str
    model: str
    prompt_hash: str
    latency_s: float
    schema_valid: bool
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cached: bool = False
    error: str | None = None


@dataclass(frozen=True)
class ReviewRecord:
    """One accepted review answer (business level: who, what, how long after the plan)."""

    thread_id: str
    reviewer: str
    decision: str
    latency_s: float


class Telemetry:
    """What the graph reports, and the decision cache. This base records nothing and caches nothing."""

    def step(self, record: StepRecord) -> None:
        return None

    def model_call(self, record: ModelCallRecord) -> None:
        return None

    def review(self, record: ReviewRecord) -> None:
        return None

    def cached_decision(self, prompt_hash: str, ttl: timedelta, now: datetime) -> Decision | None:
        return None

    def remember_decision(self, prompt_hash: str, decision: Decision, now: datetime) -> None:
        return None

    def flush(self, thread_id: str) -> None:
        """Write what was buffered for the thread (step and model-call rows)."""
        return None


NullTelemetry = Telemetry  # records nothing: for tests and tools that want no telemetry

_STEP_SQL = "INSERT INTO cg_steps (thread_id, node, ok, duration_s, error_class, confidence, at) VALUES (?,?,?,?,?,?,?)"
_MODEL_CALL_SQL = (
    "INSERT INTO cg_model_calls (thread_id, model, prompt_hash, latency_s, schema_valid, prompt_tokens,"
    " completion_tokens, cached, error, at) VALUES (?,?,?,?,?,?,?,?,?,?)"
)
_REVIEW_SQL = "INSERT INTO cg_reviews (thread_id, reviewer, decision, latency_s, at) VALUES (?,?,?,?,?)"


class SqliteTelemetry(Telemetry):
    """Telemetry and the decision cache in the costguard store's SQLite file."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._pending: dict[str, list[tuple[str, tuple[object, ...]]]] = {}
        self._lock = threading.Lock()

    def _row(self, record: Any) -> tuple[object, ...]:
        # booleans as 0/1: the columns are integers in both SQLite and PostgreSQL
        values = (int(v) if isinstance(v, bool) else v for v in astuple(record))
        return (*values, self.store.now().isoformat())

    def _write(self, sql: str, params: tuple[object, ...]) -> None:
        try:
            self.store.write(sql, params)
        except store_errors() as exc:  # minor: log and go on
            log.warning("telemetry_write_failed", error=str(exc))

    def _buffer(self, thread_id: str, sql: str, params: tuple[object, ...]) -> None:
        with self._lock:
            rows = self._pending.setdefault(thread_id, [])
            rows.append((sql, params))
            full = len(rows) >= MAX_BUFFERED
        if full:  # a run that never reaches a flush point (cancelled in a server, say) is written anyway
            self.flush(thread_id)

    def flush(self, thread_id: str) -> None:
        with self._lock:
            rows = self._pending.pop(thread_id, None)
        if not rows:
            return
        try:
            self.store.write_many(rows)
        except store_errors() as exc:  # minor: log and go on
            log.warning("telemetry_write_failed", error=str(exc), rows=len(rows))

    def step(self, record: StepRecord) -> None:
        self._buffer(record.thread_id, _STEP_SQL, self._row(record))

    def model_call(self, record: ModelCallRecord) -> None:
        self._buffer(record.thread_id, _MODEL_CALL_SQL, self._row(record))

    def review(self, record: ReviewRecord) -> None:
        self._write(_REVIEW_SQL, self._row(record))

    def cached_decision(self, prompt_hash: str, ttl: timedelta, now: datetime) -> Decision | None:
        if ttl <= timedelta(0):
            return None
        rows = self.store.query(
            "SELECT decision FROM cg_decision_cache WHERE prompt_hash = ? AND at >= ?",
            (prompt_hash, (now - ttl).isoformat()),
        )
        return None if not rows else Decision.model_validate_json(rows[0]["decision"])

    def remember_decision(self, prompt_hash: str, decision: Decision, now: datetime) -> None:
        self._write(
            "INSERT INTO cg_decision_cache (prompt_hash, at, decision) VALUES (?,?,?)"
            " ON CONFLICT(prompt_hash) DO UPDATE SET at = excluded.at, decision = excluded.decision",
            (prompt_hash, now.isoformat(), decision.model_dump_json(exclude_defaults=True)),
        )

    # --- read back (costguard.app.metrics) ---------------------------------------------------

    def rows(self, table: str, since: str = "") -> list[dict[str, Any]]:
        """The rows of one telemetry table (`model_calls`, `steps`, `reviews`) recorded at or after `since`."""
        if table not in ("model_calls", "steps", "reviews"):
            raise ValueError(f"no telemetry table {table!r}")
        return [dict(r) for r in self.store.query(f"SELECT * FROM cg_{table} WHERE at >= ?", (since,))]  # noqa: S608
