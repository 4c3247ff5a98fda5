"""At most once: an effect between a ledgered intent and its confirmation.

The intent is written (with its audit record) before the effect and the confirmation (with its own) after
it. A re-run finds the intent: confirmed, the stored result is returned and nothing is done; unconfirmed,
the effect runs again and must reconcile with the cloud (find what an earlier attempt already did).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from costguard.tools.crashpoints import crashpoint
from costguard.tools.store.records import AuditRecord
from costguard.tools.store.sqlite import Store

Effect = Callable[[], tuple[dict[str, Any], AuditRecord]]  # the result to store, and the audit record of it


@dataclass(frozen=True)
class LedgerStep:
    """One effect of one plan: its idempotency key and what the ledger row names."""

    key: str
    thread_id: str
    digest: str
    step: str
    instance_id: str


def run_once(store: Store, step: LedgerStep, *, intent: AuditRecord, effect: Effect) -> dict[str, Any]:
    """The effect's result: the stored one if the step was confirmed before, else the effect's (then stored)."""
    entry = store.record_intent(
        key=step.key,
        thread_id=step.thread_id,
        digest=step.digest,
        step=step.step,
        instance_id=step.instance_id,
        audit=intent,
    )
    if entry.confirmed:
        return entry.result or {}
    crashpoint("after_intent")
    result, done = effect()
    crashpoint("after_effect")
    store.confirm(step.key, result, done)
    return result
