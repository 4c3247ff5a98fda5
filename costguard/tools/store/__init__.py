"""costguard's own records: the execution ledger, the hash-chained audit trail and the thread index."""

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

__all__ = [
    "AuditRecord",
    "LedgerEntry",
    "Store",
    "StoredAudit",
    "VerifyReport",
    "base_step",
    "generation_step",
    "idempotency_key",
]
