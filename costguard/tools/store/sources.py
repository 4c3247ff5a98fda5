"""Source alerts (queue messages, lines of a file): what became of each, beside the threads it started."""

from __future__ import annotations

from costguard.state import SourceOutcome
from costguard.tools.store.records import AuditRecord
from costguard.tools.store.sqlite import Store


def record_source(store: Store, outcome: SourceOutcome) -> None:
    """Index a source alert's outcome and audit it, once per source, status and set of children."""
    key = f"source:{outcome.source_id}:{outcome.status}:{len(outcome.children)}"
    with store.transaction() as conn:
        conn.execute(
            "INSERT INTO cg_sources (source_id, source_kind, status, updated_at, outcome) VALUES (?,?,?,?,?)"
            " ON CONFLICT(source_id) DO UPDATE SET status=excluded.status, updated_at=excluded.updated_at,"
            " outcome=excluded.outcome",
            (
                outcome.source_id,
                outcome.source_kind,
                outcome.status,
                store.now().isoformat(),
                outcome.model_dump_json(),
            ),
        )
        store.append_audit(
            conn,
            AuditRecord(
                thread_id=f"source:{outcome.source_id}"[:300],
                actor="costguard:watch",
                event="source",
                result=outcome.status,
                detail=outcome.reason or f"{len(outcome.children)} thread(s): {outcome.by_status}",
                dedupe_key=key,
            ),
        )


def source(store: Store, source_id: str) -> SourceOutcome | None:
    """A source alert's last recorded outcome."""
    with store.reading() as conn:
        row = conn.execute("SELECT outcome FROM cg_sources WHERE source_id = ?", (source_id,)).fetchone()
    return None if row is None else SourceOutcome.model_validate_json(row["outcome"])
