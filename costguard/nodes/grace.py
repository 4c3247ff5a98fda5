"""grace: an autonomous plan waits out its grace period before it acts (the policy's `grace_period_hours`).

First pass: the resource is tagged with the plan (`costguard:planned = <action>@<due time>`), its owner is told once
through the webhook, and the schedule is audited; the thread then pauses (`interrupt`) with status `scheduled`. The
watcher (or `costguard scheduled --run-due`) resumes it at the due time; resumed early, it pauses again. At the due
time the plan is checked on fresh facts: the mark removed or changed, or the opt-out tag added, cancels it; a rail
that now refuses (the resource became protected, ...) rejects it; otherwise it goes on to `execute`, which checks
the rails once more. Every ending is audited. Nothing but the first pass has a side effect before `interrupt()`.
"""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime
from langgraph.types import interrupt

from costguard.context import Deps
from costguard.errors import InternalError
from costguard.nodes import story
from costguard.nodes.validate import earned_classes
from costguard.policy import autonomy_class, recheck_at_execution
from costguard.policy.grace import MARK_TAG, called_off, due_time, mark_value, owner_of
from costguard.state import CostState, Plan, Result, Schedule, Status
from costguard.tools.store import AuditRecord

GRACE_REQUEST = "grace_period"  # the `type` of the pause's value (a review's value is a HITL request instead)


def _audit(plan: Plan, event: str, result: str, detail: str) -> AuditRecord:
    return AuditRecord(
        thread_id=plan.thread_id,
        actor="costguard:grace",
        authorized_by="policy:autonomous",
        event=event,
        instance_id=plan.resource_id,
        digest=plan.digest,
        result=result,
        detail=detail,
        dedupe_key=f"{event}:{plan.thread_id}:{plan.digest}",
    )


def grace_request(plan: Plan, schedule: Schedule, opt_out_tag: str) -> dict[str, Any]:
    """What the pause shows (Studio, `costguard scheduled`): the plan, when it acts, how to call it off."""
    return {
        "type": GRACE_REQUEST,
        "resource_id": plan.resource_id,
        "resource_type": plan.resource_type,
        "action": plan.action,
        "digest": plan.digest,
        "due_at": schedule.due_at.isoformat(),
        "owner": schedule.owner,
        "how_to_cancel": f"remove the tag {MARK_TAG} or add the tag {opt_out_tag}",
    }


def grace(state: CostState, runtime: Runtime[Deps]) -> dict[str, Any]:
    deps = runtime.context
    plan = state.get("plan")
    if plan is None or state.get("approval") is None:
        raise InternalError("grace was reached without an approved plan")
    schedule = state.get("schedule")
    if schedule is None or schedule.digest != plan.digest:
        return _announce(deps, plan)
    interrupt(grace_request(plan, schedule, deps.policy.autonomy.opt_out_tag))
    if deps.clock() < schedule.due_at:
        return {}  # resumed before the due time: wait again
    return _at_due(deps, plan, schedule)


def _announce(deps: Deps, plan: Plan) -> dict[str, Any]:
    """Mark the resource, tell its owner (once), audit the schedule (once)."""
    rule = deps.policy.autonomy
    kind = deps.cloud.kind(plan.resource_type)
    due = due_time(plan, deps.policy)
    mark = mark_value(plan, due)
    facts = kind.describe(plan.resource_id, plan.region)
    owner = owner_of(facts.tags, deps.policy)
    kind.retag(plan.resource_id, plan.region, add={MARK_TAG: mark})
    schedule = Schedule(digest=plan.digest, due_at=due, mark=mark, owner=owner)
    how = f"remove the tag {MARK_TAG} or add the tag {rule.opt_out_tag} to call it off"
    savings = "" if plan.savings_usd_per_month is None else f" (saves ${plan.savings_usd_per_month:,.2f}/month)"
    text = f"{plan.action} of {plan.resource_id}{savings} is scheduled for {due:%Y-%m-%d %H:%M:%S} UTC; {how}"
    if deps.store.first_notice(f"grace:{plan.thread_id}:{plan.digest}"):
        deps.notifier.owner_notice(
            text,
            thread_id=plan.thread_id,
            owner=owner,
            detail={"resource_id": plan.resource_id, "action": plan.action, "due_at": due.isoformat(), "mark": mark},
        )
    told = f"owner {owner} notified" if owner else "no owner tag: the notice went to the webhook"
    deps.store.audit(_audit(plan, "scheduled", "scheduled", f"{text}; {told}"))
    return {"schedule": schedule, "messages": [story.scheduled_message(plan, schedule, how)]}


def _at_due(deps: Deps, plan: Plan, schedule: Schedule) -> dict[str, Any]:
    """The due time: called off by the owner, refused by the rails on fresh facts, or ready for `execute`."""
    kind = deps.cloud.kind(plan.resource_type)
    fresh = kind.describe(plan.resource_id, plan.region)
    off_status: Status
    off = called_off(schedule.mark, fresh, deps.policy)
    if off is None:
        refusals = recheck_at_execution(plan, fresh, deps.prices, deps.policy)
        if deps.policy.autonomy.required and autonomy_class(plan, deps.policy) not in earned_classes(deps):
            refusals = (*refusals, "autonomy_not_earned")  # revoked while it waited (a rejection, an undo)
        if refusals:
            off_status, off_rules = "rejected", refusals
            reason = f"at its due time a rail refused {plan.action} of {plan.resource_id}: {', '.join(refusals)}"
        else:
            over = f"the grace period is over; {schedule.mark} stands"
            deps.store.audit(_audit(plan, "schedule_due", "proceed", over))
            return {"schedule": schedule.model_copy(update={"ready": True})}
    else:
        off_status, off_rules, reason = off.status, (off.rule,), f"{off.reason}: {plan.action} called off"
    if fresh.exists and fresh.tags is not None and fresh.tags.get(MARK_TAG) == schedule.mark:
        kind.retag(plan.resource_id, plan.region, add={}, remove=[MARK_TAG])  # the mark no longer means anything
    event = "schedule_cancelled" if off_status == "cancelled" else "schedule_refused"
    deps.store.audit(_audit(plan, event, off_status, reason))
    return {"result": Result(status=off_status, reason=reason, rules=off_rules)}
