"""Undo: the compensating action for an executed plan, itself ledgered, audited and idempotent.

Rollback to a checkpoint restores the agent's memory, not the cloud; undo restores the cloud:
a stopped instance is started again, a resized one goes back to its original type (and is
started again if it was running). Both leave the EBS volumes as they were, so the snapshots
taken before the action are kept for a manual restore and named in the outcome, not used.
"""

from __future__ import annotations

from costguard.context import Deps
from costguard.errors import CriticalError, ReviewError
from costguard.state import Facts, Outcome, Plan
from costguard.tools.crashpoints import crashpoint
from costguard.tools.ledger import AuditRecord, generation_step, idempotency_key


class UndoRefused(CriticalError):
    """The instance is no longer in the state costguard left it in: undoing could clobber someone's change."""


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


def undo_plan(deps: Deps, plan: Plan, outcome: Outcome, reviewer: str, *, was_running: bool) -> Outcome:
    """Compensate an executed plan once; the returned Outcome has status `rolled_back`."""
    if reviewer not in deps.policy.approvers:
        deps.store.audit(_audit(plan, reviewer, "undo_refused", "refused", "reviewer_not_allowed"))
        raise ReviewError(f"{reviewer!r} is not on the policy's approvers list")
    # the generation being undone: confirmed undos so far (an unconfirmed one is retried under its key)
    step = generation_step("undo", deps.store.undo_generation(plan.thread_id, plan.digest))
    key = idempotency_key(plan.thread_id, plan.digest, step)
    entry = deps.store.record_intent(
        key=key,
        thread_id=plan.thread_id,
        digest=plan.digest,
        step=step,
        instance_id=plan.instance_id,
        audit=_audit(plan, reviewer, "undo_intent", "intent", f"undo {plan.action}"),
    )
    detail = "already undone"
    if not entry.confirmed:
        crashpoint("after_intent")
        fresh = deps.cloud.describe(plan.instance_id, plan.region)
        detail = _compensate(deps, plan, fresh, was_running)
        crashpoint("after_effect")
        deps.store.confirm(key, {"detail": detail}, _audit(plan, reviewer, "undo", "done", detail))
    elif entry.result:
        detail = str(entry.result.get("detail", detail))
    kept = f"; snapshots kept: {', '.join(outcome.snapshot_ids)}" if outcome.snapshot_ids else ""
    return outcome.model_copy(
        update={"status": "rolled_back", "executed": False, "reason": f"undone by {reviewer}: {detail}{kept}"}
    )
