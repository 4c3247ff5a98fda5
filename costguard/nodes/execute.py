"""execute: re-check the rails on fresh facts, then snapshot and act, exactly once per plan.

Every effect is ledgered (tools.store.once): its intent is written before the call and its result after,
each in one transaction with its audit record. A re-run (retry, resume, crash) reads the ledger and
reconciles with the cloud instead of acting again:
- snapshot: the snapshots carry the idempotency key as a tag; volumes that have one get no second;
- stop: an instance already `stopped`/`stopping` is not stopped again;
- resize: an instance already of the target type is not modified again.
Without a valid approval for this exact plan digest (or in dry-run mode), every call is made
with DryRun=True: AWS checks it, nothing changes.
"""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from costguard.context import Deps
from costguard.errors import CloudPermissionError, CriticalError, InternalError, RailTrippedAtExecution
from costguard.policy import recheck_at_execution
from costguard.policy.grace import called_off
from costguard.state import Approval, CostState, Facts, Plan, Result
from costguard.tools.cloud.base import ResourceKind
from costguard.tools.store import AuditRecord, LedgerEntry, generation_step, idempotency_key
from costguard.tools.store.locks import resource_lock
from costguard.tools.store.once import LedgerStep, run_once


def _audit(
    plan: Plan, approval: Approval | None, event: str, result: str, detail: str = "", key: str | None = None
) -> AuditRecord:
    return AuditRecord(
        thread_id=plan.thread_id,
        actor="costguard:execute",
        authorized_by=approval.authorized_by if approval else None,
        event=event,
        instance_id=plan.resource_id,
        digest=plan.digest,
        result=result,
        detail=detail,
        dedupe_key=key,
    )


def _step(plan: Plan, name: str, generation: int) -> LedgerStep:
    step = generation_step(name, generation)
    key = idempotency_key(plan.thread_id, plan.digest, step)
    return LedgerStep(key=key, thread_id=plan.thread_id, digest=plan.digest, step=step, instance_id=plan.resource_id)


def _dry_run(deps: Deps, kind: ResourceKind, plan: Plan, fresh: Facts, approval: Approval | None) -> dict[str, Any]:
    key = idempotency_key(plan.thread_id, plan.digest, "dry_run")
    if plan.action in kind.snapshot_first:
        kind.snapshot(fresh, key, dry_run=True)
    effect = kind.act(plan, fresh, key, dry_run=True, start_after=False)
    why = "dry-run mode" if deps.policy.dry_run else "no approval for this plan"
    reason = f"dry run of {plan.action} accepted ({effect.detail}; {why}); nothing changed"
    deps.store.audit(_audit(plan, approval, "dry_run", "dry_run_ok", reason, key=f"dry_run:{key}"))
    return {"result": Result(status="dry_run", reason=reason)}


def _critical(
    deps: Deps, plan: Plan, approval: Approval | None, error: CriticalError, rules: tuple[str, ...]
) -> dict[str, Any]:
    reason = str(error)
    deps.store.audit(
        _audit(plan, approval, "execution_refused", "critical", reason, key=f"critical:{plan.thread_id}:{plan.digest}")
    )
    deps.notifier.critical(
        reason, thread_id=plan.thread_id, detail={"instance_id": plan.resource_id, "digest": plan.digest}
    )
    return {"result": Result(status="failed", reason=reason, rules=rules, error_class=type(error).__name__)}


def execute(state: CostState, runtime: Runtime[Deps]) -> dict[str, Any]:
    deps = runtime.context
    plan = state.get("plan")
    if plan is None:
        raise InternalError("execute was reached without a plan")
    # one plan acts on a resource at a time: an alarm and a budget's fan-out may name the same instance at once
    with resource_lock(deps.store, plan.resource_id, plan.thread_id, deps.clock):
        return _execute_locked(state, deps, plan)


def _execute_locked(state: CostState, deps: Deps, plan: Plan) -> dict[str, Any]:
    approval = state.get("approval")
    kind = deps.cloud.kind(plan.resource_type)
    fresh = kind.describe(plan.resource_id, plan.region)
    generation = deps.store.undo_generation(plan.thread_id, plan.digest)  # > 0: executed again after an undo
    snap_step, act_step = _step(plan, "snapshot", generation), _step(plan, plan.action, generation)
    if deps.store.ledger_get(act_step.key) is None:
        # nothing was done yet: another thread may have handled the resource; else the rails decide on fresh facts
        other = deps.store.acted_on(plan.resource_id, except_thread=plan.thread_id)
        if other is not None and not _stopped_then_restarted(plan, fresh):
            return _already_handled(deps, plan, approval, other)
        if approval is not None and approval.mode == "autonomous" and plan.policy_hash != deps.policy.digest:
            # made alone under another policy (a crash or a wait between validate and execute): not under this one
            reason = f"the policy changed since this plan was allowed to run alone ({plan.policy_hash}); nothing done"
            deps.store.audit(
                _audit(plan, approval, "execution_skipped", "policy_changed", reason, key=f"policy:{plan.thread_id}")
            )
            return {"result": Result(status="rejected", reason=reason, rules=("policy_changed",))}
        schedule = state.get("schedule")
        if approval is not None and approval.mode == "autonomous" and schedule and schedule.digest == plan.digest:
            # after a grace period (resumed late, say, from the checkpoint before this step): the owner's word holds
            off = called_off(schedule.mark, fresh, deps.policy)
            if off is not None:
                key = f"called_off:{plan.thread_id}:{plan.digest}"
                deps.store.audit(_audit(plan, approval, "execution_skipped", off.status, off.reason, key=key))
                return {"result": Result(status=off.status, reason=f"{off.reason}; nothing done", rules=off.rules)}
        refusals = recheck_at_execution(plan, fresh, deps.prices, deps.policy)
        if refusals:
            return _critical(deps, plan, approval, RailTrippedAtExecution(plan.resource_id, refusals), refusals)
        if deps.policy.dry_run or approval is None or approval.digest != plan.digest:
            try:
                return _dry_run(deps, kind, plan, fresh, approval)
            except RailTrippedAtExecution as exc:  # the kind's own last look (an address associated meanwhile)
                return _critical(deps, plan, approval, exc, exc.rules)
    if approval is None:
        raise InternalError(f"{plan.thread_id}: a ledgered action without an approval")
    original = state.get("facts")
    start_after = (original.state if original else fresh.state) == "running"
    try:
        snapshots = (
            _snapshot_once(deps, kind, plan, approval, fresh, snap_step) if plan.action in kind.snapshot_first else []
        )
        detail = _act_once(deps, kind, plan, approval, fresh, act_step, snapshots, start_after=start_after)
    except CloudPermissionError as exc:
        return _critical(deps, plan, approval, exc, ("permission_denied",))
    except RailTrippedAtExecution as exc:  # the kind's own last look, just before the call
        return _critical(deps, plan, approval, exc, exc.rules)
    note = f"; {detail['note']}" if detail.get("note") else ""
    after = (
        f" after snapshot(s) {', '.join(snapshots) or '(no EBS volumes)'}" if plan.action in kind.snapshot_first else ""
    )
    return {
        "result": Result(
            status="executed",
            executed=True,
            reason=f"{plan.resource_id} {_verb(plan)}{after}; authorized by {approval.authorized_by}{note}",
            snapshot_ids=tuple(snapshots),
        )
    }


def _stopped_then_restarted(plan: Plan, fresh: Facts) -> bool:
    """RDS starts a stopped database again after 7 days: an earlier stop of it no longer holds once it runs."""
    return plan.resource_type == "db_instance" and plan.action == "shutdown" and fresh.state == "available"


def _already_handled(deps: Deps, plan: Plan, approval: Approval | None, other: LedgerEntry) -> dict[str, Any]:
    """Another thread acted on this resource (and nobody undid it): say so; never a second snapshot or action."""
    reason = f"{plan.resource_id} was already handled by {other.thread_id} ({other.step}); nothing done again"
    deps.store.audit(
        _audit(
            plan,
            approval,
            "execution_skipped",
            "already_handled",
            reason,
            key=f"skipped:{plan.thread_id}:{plan.digest}",
        )
    )
    return {"result": Result(status="rejected", reason=reason, rules=("already_handled",))}


def _snapshot_once(
    deps: Deps, kind: ResourceKind, plan: Plan, approval: Approval, fresh: Facts, step: LedgerStep
) -> list[str]:
    def effect() -> tuple[dict[str, Any], AuditRecord]:
        # the snapshot call itself skips volumes that already carry a snapshot with this key
        _, ids = kind.snapshot(fresh, step.key, dry_run=False)
        # the resource as it was, kept with its snapshots: an undo after a re-run (the resource gone) needs it
        before = fresh.model_dump(mode="json", include=_BEFORE, exclude_none=True)
        return {"snapshot_ids": ids, "before": before}, _audit(
            plan, approval, "snapshot_created", "done", ", ".join(ids)
        )

    intent = _audit(plan, approval, "snapshot_intent", "intent", f"volumes {', '.join(fresh.volume_ids)}")
    return list(run_once(deps.store, step, intent=intent, effect=effect).get("snapshot_ids", []))


def _act_once(
    deps: Deps,
    kind: ResourceKind,
    plan: Plan,
    approval: Approval,
    fresh: Facts,
    step: LedgerStep,
    snapshots: list[str],
    *,
    start_after: bool,
) -> dict[str, Any]:
    """The action, once: a re-run finds it in the ledger, or the kind reconciles with what the cloud shows."""

    def effect() -> tuple[dict[str, Any], AuditRecord]:
        done = kind.act(plan, fresh, step.key, dry_run=False, start_after=start_after)
        result = {**done.result, "detail": done.detail}
        return result, _audit(plan, approval, plan.action, "done", done.detail)

    before = f"after snapshots {', '.join(snapshots)}" if snapshots else f"{plan.action} {plan.resource_id}"
    intent = _audit(plan, approval, f"{plan.action}_intent", "intent", before)
    return run_once(deps.store, step, intent=intent, effect=effect)


_BEFORE = {"availability_zone", "volume_type", "size_gib", "iops", "tags", "instance_type"}


def _verb(plan: Plan) -> str:
    if plan.action == "resize":
        return (
            f"resized to {plan.target_type}" if plan.resource_type == "instance" else f"changed to {plan.target_type}"
        )
    return {"shutdown": "stopped", "delete": "deleted", "release": "released"}[plan.action]
