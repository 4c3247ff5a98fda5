"""Undo and rollback: the cloud and the agent's memory, put back separately.

Undo is the compensating action for an executed plan, itself ledgered, audited and idempotent: a stopped
instance is started again, a resized one goes back to its original type (and is started again if it was
running). Both leave the EBS volumes as they were: the snapshots taken before the action are kept and
named in the outcome, for a manual restore. Rollback is LangGraph time travel to an earlier checkpoint; it
refuses while an executed effect of the thread is not undone, so a re-run can never act twice.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from costguard.context import Deps
from costguard.errors import ReviewError, UndoRefused
from costguard.nodes import outcome as outcomes
from costguard.state import Facts, Outcome, Plan
from costguard.tools.store import AuditRecord, base_step, generation_step, idempotency_key
from costguard.tools.store.once import LedgerStep, run_once
from costguard.tools.store.sqlite import Store


def _audit(plan: Plan, reviewer: str, event: str, result: str, detail: str) -> AuditRecord:
    return AuditRecord(
        thread_id=plan.thread_id,
        actor=f"reviewer:{reviewer}",
        authorized_by=reviewer,
        event=event,
        instance_id=plan.instance_id,
        digest=plan.digest,
        result=result,
        detail=detail,
    )


def _compensate(deps: Deps, plan: Plan, fresh: Facts, was_running: bool) -> str:
    """Bring the instance back; reconcile when an earlier attempt already did."""
    if not fresh.exists:
        raise UndoRefused(f"{plan.instance_id} no longer exists; snapshots remain for a manual restore")
    if plan.action == "shutdown":
        if fresh.state == "running":
            return f"reconciled: {plan.instance_id} already running"
        if fresh.state in ("stopped", "stopping"):
            deps.cloud.start(plan.instance_id, plan.region, dry_run=False)
            return f"started {plan.instance_id}"
        raise UndoRefused(f"{plan.instance_id} is {fresh.state!r}, not stopped: left alone")
    original = plan.current_instance_type
    if fresh.instance_type == original:
        if was_running and fresh.state != "running":
            deps.cloud.start(plan.instance_id, plan.region, dry_run=False)
        return f"reconciled: {plan.instance_id} already {original}"
    if fresh.instance_type != plan.target_instance_type:
        raise UndoRefused(
            f"{plan.instance_id} is now {fresh.instance_type}, neither {original} nor {plan.target_instance_type}"
        )
    deps.cloud.resize(plan.instance_id, plan.region, original, start_after=was_running, dry_run=False)
    return f"resized {plan.instance_id} back {plan.target_instance_type} -> {original}"


def undo_plan(deps: Deps, plan: Plan, executed: Outcome, reviewer: str, *, was_running: bool) -> Outcome:
    """Compensate an executed plan once; the returned Outcome has status `rolled_back`."""
    if reviewer not in deps.policy.approvers:
        deps.store.audit(_audit(plan, reviewer, "undo_refused", "refused", "reviewer_not_allowed"))
        raise ReviewError(f"{reviewer!r} is not on the policy's approvers list")
    # the generation being undone: confirmed undos so far (an unconfirmed one is retried under its key)
    name = generation_step("undo", deps.store.undo_generation(plan.thread_id, plan.digest))
    step = LedgerStep(
        key=idempotency_key(plan.thread_id, plan.digest, name),
        thread_id=plan.thread_id,
        digest=plan.digest,
        step=name,
        instance_id=plan.instance_id,
    )

    def effect() -> tuple[dict[str, Any], AuditRecord]:
        fresh = deps.cloud.describe(plan.instance_id, plan.region)
        detail = _compensate(deps, plan, fresh, was_running)
        return {"detail": detail}, _audit(plan, reviewer, "undo", "done", detail)

    intent = _audit(plan, reviewer, "undo_intent", "intent", f"undo {plan.action}")
    result = run_once(deps.store, step, intent=intent, effect=effect)
    return outcomes.rolled_back(executed, reviewer, str(result.get("detail", "already undone")))


def unundone_action(store: Store, thread_id: str) -> str | None:
    """An executed effect of the thread that no undo has compensated, described; None when there is none."""
    ledger = store.ledger_rows(thread_id)
    undos = Counter(e.digest for e in ledger if base_step(e.step) == "undo" and e.confirmed)
    acts = Counter(e.digest for e in ledger if base_step(e.step) in ("shutdown", "resize"))
    for entry in ledger:
        if base_step(entry.step) in ("shutdown", "resize") and acts[entry.digest] > undos[entry.digest]:
            return f"{entry.instance_id} ({entry.step})"
    return None
