"""The records costguard keeps of itself: audit records, ledger entries, and the keys that make effects idempotent."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict

from costguard.state import canonical_json, sha256_hex

GENESIS = "0" * 64


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


def record_hash(prev_hash: str, seq: int, at: str, record: AuditRecord) -> str:
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
