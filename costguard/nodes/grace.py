"""grace: an autonomous plan waits out its grace period before it acts (the policy's `grace_period_hours`).

First pass: the resource is tagged with the plan (`costguard:planned = <action>@<due time>`), its owner is told once
through the webhook, and the schedule is audited; the thread then pauses (`interrupt`) with status `scheduled`. The
watcher (or `costguard scheduled --run-due`) resumes it at the due time; resumed early, it pauses again. At the due
time the plan is checked on fresh facts: the mark removed or changed, or the opt-out tag added, cancels it; a rail
that now refuses (the resource became protected, ...), or a policy changed meanwhile, rejects it; facts that now need
a person (busy again, tagged production, the class's autonomy revoked) send it to review as validate would; otherwise
it goes on to `execute`, which checks the rails once more. Every ending is audited (before the mark is removed).
Nothing but the first pass has a side effect before `interrupt()`.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from langgraph.runtime import Runtime
from langgraph.types import interrupt

from costguard.context import Deps
from costguard.errors import InternalError
from costguard.nodes import story
from costguard.nodes.validate import earned_classes, tell_reviewers
from costguard.policy import check_action, reasons_on_facts, recheck_at_execution
from costguard.policy.grace import (
    MARK_TAG,
    CalledOff,
    called_off,
    due_time,
    mark_value,
    owner_of,
    policy_changed,
    waiting_mark,
)
from costguard.state import CostState, Facts, Plan, Result, Schedule, Status, Verdict
from costguard.tools.crashpoints import crashpoint
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
    if facts.tags is not None and rule.opt_out_tag in facts.tags:  # opted out already: never marked, nobody told
        reason = f"{plan.resource_id} carries the opt-out tag {rule.opt_out_tag!r}: {plan.action} called off"
        deps.store.audit(_audit(plan, "schedule_cancelled", "cancelled", f"{reason} [rules: opted_out]"))
        return {"result": Result(status="cancelled", reason=reason, rules=("opted_out",))}
    waiting = waiting_mark(facts.tags, plan, mark, deps.clock())
    if waiting is not None:  # a later alert for a plan already waiting: no new mark, nobody told again
        reason = f"{plan.resource_id} is already scheduled ({MARK_TAG}={waiting}): this alert joins that plan"
        deps.store.audit(_audit(plan, "schedule_exists", "monitoring", f"{reason} [rules: already_scheduled]"))
        return {"result": Result(status="monitoring", reason=reason, rules=("already_scheduled",))}
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
    crashpoint("after_owner_notice")
    told = f"owner {owner} notified" if owner else "no owner tag: the notice went to the webhook"
    deps.store.audit(_audit(plan, "scheduled", "scheduled", f"{text}; {told}"))
    return {"schedule": schedule, "messages": [story.scheduled_message(plan, schedule, how)]}


def _at_due(deps: Deps, plan: Plan, schedule: Schedule) -> dict[str, Any]:
    """The due time: called off by the owner, refused by the rails or a changed policy on fresh facts, handed to a
    person when the fresh facts need one, or ready for `execute`. The decision is audited before the mark is
    removed; a re-run (a kill in between) repeats the recorded decision instead of reading its own removal as the
    owner's."""
    kind = deps.cloud.kind(plan.resource_type)
    fresh = kind.describe(plan.resource_id, plan.region)
    off = _decided_before(deps, plan)
    if off is None:
        off = called_off(schedule.mark, fresh, deps.policy) or policy_changed(plan, deps.policy)
        if off is None:
            refusals = recheck_at_execution(plan, fresh, deps.prices, deps.policy)
            if refusals:
                why = f"at its due time a rail refused {plan.action} of {plan.resource_id}: {', '.join(refusals)}"
                off = CalledOff("rejected", refusals, why)
        if off is None:
            off = _needs_a_person(deps, plan, fresh)
        if off is None:
            over = f"the grace period is over; {schedule.mark} stands"
            deps.store.audit(_audit(plan, "schedule_due", "proceed", over))
            return {"schedule": schedule.model_copy(update={"ready": True})}
        event = AT_DUE_EVENTS[off.status]
        deps.store.audit(_audit(plan, event, off.status, f"{off.reason} [rules: {', '.join(off.rules)}]"))
    if fresh.exists and fresh.tags is not None and fresh.tags.get(MARK_TAG) == schedule.mark:
        kind.retag(plan.resource_id, plan.region, add={}, remove=[MARK_TAG])  # the mark no longer means anything
    crashpoint("after_due_decision")
    if off.status == "awaiting_review":
        return _to_review(deps, plan, schedule, off)
    return {"result": Result(status=off.status, reason=off.reason, rules=off.rules)}


AT_DUE_EVENTS: dict[Status, str] = {
    "cancelled": "schedule_cancelled",
    "rejected": "schedule_refused",
    "awaiting_review": "schedule_to_review",
}
_RULES = re.compile(r" \[rules: ([a-z0-9_, ]*)\]$")


def _decided_before(deps: Deps, plan: Plan) -> CalledOff | None:
    """The decision an earlier run of this step recorded at the due time (None: none was)."""
    by_event = {event: status for status, event in AT_DUE_EVENTS.items()}
    for row in deps.store.audit_rows(plan.thread_id):
        status = by_event.get(row.event)
        if status is None or row.dedupe_key != f"{row.event}:{plan.thread_id}:{plan.digest}":
            continue
        found = _RULES.search(row.detail)
        rules = tuple(r for r in found.group(1).split(", ") if r) if found else ()
        return CalledOff(status, rules, row.detail[: found.start()] if found else row.detail)
    return None


def _needs_a_person(deps: Deps, plan: Plan, fresh: Facts) -> CalledOff | None:
    """What validate would say now, without the model's part: busy, tagged production, autonomy revoked, ..."""
    savings = check_action(plan.action, plan.target_type, fresh, deps.prices, deps.policy).savings_usd_per_month
    earned = earned_classes(deps) if deps.policy.autonomy.required else None
    reasons = reasons_on_facts(fresh, plan.action, savings, deps.policy, earned)
    if not reasons:
        return None
    why = f"at its due time {plan.action} of {plan.resource_id} needs a person: {', '.join(reasons)}"
    return CalledOff("awaiting_review", reasons, why)


def _to_review(deps: Deps, plan: Plan, schedule: Schedule, off: CalledOff) -> dict[str, Any]:
    """The plan goes to the review queue, as validate would send it now. Its times start at the due time, so a
    re-run makes the same plan (the same digest: one notice, one approval)."""
    review_plan = plan.model_copy(
        update={
            "requires_approval": True,
            "approval_reasons": off.rules,
            "created_at": schedule.due_at,
            "expires_at": schedule.due_at + timedelta(hours=deps.policy.review_ttl_hours),
        }
    )
    tell_reviewers(deps, review_plan)
    verdict = Verdict(route="human_review", rules=off.rules, reason=off.reason)
    return {
        "plan": review_plan,
        "approval": None,
        "verdict": verdict,
        "messages": [story.verdict_message(verdict, review_plan)],
    }
