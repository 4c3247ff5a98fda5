"""The audit trail's hash chain: each record carries the SHA-256 of the one before (as CloudTrail's digest files).

Appends happen inside the caller's transaction, so a ledger change and its audit record commit together.
"""

from __future__ import annotations

from typing import Any

from costguard.tools.store.records import GENESIS, AuditRecord, StoredAudit, VerifyReport, record_hash


def append(conn: Any, record: AuditRecord, at: str) -> bool:
    """Append one record after the last; False when its dedupe key was recorded already."""
    if record.dedupe_key is not None:
        seen = conn.execute("SELECT 1 FROM cg_audit WHERE dedupe_key = ?", (record.dedupe_key,)).fetchone()
        if seen:
            return False
    last = conn.execute("SELECT seq, hash FROM cg_audit ORDER BY seq DESC LIMIT 1").fetchone()
    seq = 1 if last is None else int(last["seq"]) + 1
    prev = GENESIS if last is None else str(last["hash"])
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
            record_hash(prev, seq, at, record),
        ),
    )
    return True


def verify(conn: Any) -> VerifyReport:
    """Recompute the whole chain; name the first record that is missing, moved or changed."""
    prev = GENESIS
    count = 0
    for row in conn.execute("SELECT * FROM cg_audit ORDER BY seq"):
        stored = StoredAudit.model_validate(dict(row))
        count += 1
        if stored.seq != count:
            return VerifyReport(False, count, stored.seq, f"record {count} is missing")
        if stored.prev_hash != prev:
            return VerifyReport(False, count, stored.seq, "prev_hash does not match the record before")
        record = AuditRecord.model_validate(stored.model_dump(exclude={"seq", "at", "prev_hash", "hash"}))
        if record_hash(prev, stored.seq, stored.at, record) != stored.hash:
            return VerifyReport(False, count, stored.seq, "content does not match its hash")
        prev = stored.hash
    return VerifyReport(True, count)
