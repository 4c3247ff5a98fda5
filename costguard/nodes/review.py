"""human_review: pause with the plan, its digest, the findings and an expiry; check the answer.

Nothing with a side effect happens before `interrupt()`: the node re-runs from the top when it
is resumed. A response that may not move the plan on (unknown reviewer, wrong digest,
malformed) is refused, audited, and the thread asks again; a late one expires the plan.
"""

from __future__ import annotations

from typing import Any

from langgraph.config import get_config
from langgraph.runtime import Runtime
from langgraph.types import interrupt

from costguard.context import Deps
from costguard.errors import InternalError
from costguard.nodes import story
from costguard.nodes.review_answer import Caller, Refused, read_answer
from costguard.policy import apply_edit, autonomy_class, review_refusal
from costguard.state import (
    Approval,
    CostState,
    Plan,
    Result,
    ReviewResult,
    canonical_json,
    sha256_hex,
)
from costguard.tools.store import AuditRecord
from costguard.tools.store.agreements import record_vote
from costguard.tools.telemetry import ReviewRecord

ACTION_NAME = "execute_plan"
_VERBS = {"shutdown": "Stop", "delete": "Delete", "release": "Release"}
_KIND_NAMES = {"instance": "", "volume": "EBS volume", "address": "Elastic IP", "db_instance": "RDS database"}
_SNAPSHOT_FIRST = {"instance": ("shutdown", "resize"), "volume": ("delete",), "db_instance": ("shutdown",)}
_RAILS = {
    "instance": "not critical, not a production database, EBS-backed and stoppable",
    "volume": "not critical, attached to nothing (or gp2 now, for a change to gp3)",
    "address": "not critical, associated with nothing",
    "db_instance": "not critical, not production, no deletion protection, single-AZ, no replica",
}


def describe_plan(plan: Plan, refused: str | None = None) -> str:
    """The plan in a few plain lines: what, where, how much, why a person, what was checked, until when."""
    verb = _VERBS.get(plan.action) or f"Resize to **{plan.target_type}**"
    savings = (
        "an unknown amount" if plan.savings_usd_per_month is None else f"**${plan.savings_usd_per_month:,.2f}/month**"
    )
    why = ", ".join(story.WHY.get(reason, reason) for reason in plan.approval_reasons) or "the policy asks for one"
    what = f"{_KIND_NAMES[plan.resource_type]} `{plan.resource_id}`".lstrip()
    kind = f"{plan.current_type}, {plan.region}" if plan.current_type else plan.region
    first = "A snapshot is taken first." if plan.action in _SNAPSHOT_FIRST.get(plan.resource_type, ()) else ""
    last = " **It cannot be undone.**" if plan.action == "release" else ""
    if plan.action == "delete":
        last = " **Irreversible**: undo makes a new volume from the snapshot."
    lines = [
        f"{verb} {what} ({kind}): saves {savings}.",
        f"Why a person: {why}.",
        f"Rails passed: {_RAILS[plan.resource_type]}, the alert's own resource, savings from the price list; "
        "they are checked again on fresh facts before anything is done.",
        f"Expires {plan.expires_at:%Y-%m-%d %H:%M} UTC (then denied). {first}{last}".rstrip(),
    ]
    if refused:
        lines.append(f"**Your last answer was refused:** {refused}")
    return "\n\n".join(lines)


def review_request(plan: Plan, refused: str | None = None) -> dict[str, Any]:
    """Shaped as LangChain's HITL request (agent-chat-ui, Studio show it unchanged): the args are only what a
    reviewer may change; the digest stays server-side, bound to the pending plan."""
    # a shutdown shows an empty target (front ends edit only the fields they are shown, and print `null` as is)
    args = {"action": plan.action, "target_instance_type": plan.target_type or ""}
    return {
        "action_requests": [{"name": ACTION_NAME, "args": args, "description": describe_plan(plan, refused)}],
        "review_configs": [{"action_name": ACTION_NAME, "allowed_decisions": ["approve", "edit", "reject"]}],
    }


def caller() -> Caller:
    """Who resumed the run, as the LangGraph server authenticated them; clients cannot set these keys."""
    configurable = get_config().get("configurable", {})
    identity = configurable.get("langgraph_auth_user_id")
    permissions = configurable.get("langgraph_auth_permissions") or ()
    if not isinstance(identity, str) or not identity:
        return Caller(None)
    return Caller(identity, tuple(str(p) for p in permissions))


def human_review(state: CostState, runtime: Runtime[Deps]) -> dict[str, Any]:
    deps = runtime.context
    plan = state.get("plan")
    if plan is None:
        raise InternalError("human_review was reached without a plan")
    refusals = state.get("review_refusals", 0)
    last = state.get("review")
    raw = interrupt(review_request(plan, last.reason if last is not None and last.status == "refused" else None))

    # --- after the interrupt: the response is untrusted input ---------------------------------
    now = deps.clock()
    digest = plan.digest
    seen = sha256_hex(canonical_json(raw if isinstance(raw, dict | list | str | int | float | None) else repr(raw)))

    def audit(event: str, result: str, reviewer: str | None, detail: str) -> None:
        deps.store.audit(
            AuditRecord(
                thread_id=plan.thread_id,
                actor=f"reviewer:{reviewer}" if reviewer else "reviewer:unknown",
                authorized_by=reviewer if result == "approved" else None,
                event=event,
                instance_id=plan.resource_id,
                digest=digest,
                result=result,
                detail=detail,
                dedupe_key=f"review:{plan.thread_id}:{digest}:{refusals}:{seen}",
            )
        )

    who = caller()
    answer = read_answer(raw, plan, who)
    if isinstance(answer, Refused):
        audit("review_refused", "refused", who.identity, answer.reason)
        return {
            "review_refusals": refusals + 1,
            "review": ReviewResult(status="refused", reviewer=who.identity, reason=answer.reason, rules=(answer.rule,)),
            "messages": [story.refusal_message(answer.reason)],
        }
    response = answer

    why = review_refusal(response, plan, deps.policy, now)
    if why == "review_expired":
        reason = f"the plan expired at {plan.expires_at.isoformat()}; approval denied"
        audit("review_expired", "expired", response.reviewer, reason)
        return {
            "review": ReviewResult(status="expired", reviewer=response.reviewer, reason=reason, rules=(why,)),
            "result": Result(status="review_expired", reason=reason, rules=(why,)),
            "messages": [story.ended_message(reason)],
        }
    if why is not None:
        reason = f"review response refused: {why}"
        audit("review_refused", "refused", response.reviewer, reason)
        return {
            "review_refusals": refusals + 1,
            "review": ReviewResult(status="refused", reviewer=response.reviewer, reason=reason, rules=(why,)),
            "messages": [story.refusal_message(f"{reason} ({REFUSAL_WORDS.get(why, why)})")],
        }

    latency = (now - plan.created_at).total_seconds()
    deps.telemetry.review(ReviewRecord(plan.thread_id, response.reviewer, response.decision, latency))
    note = f" ({response.note})" if response.note else ""
    if response.decision == "reject":
        reason = f"rejected by {response.reviewer}{note}"
        audit("review_rejected", "rejected", response.reviewer, reason)
        _vote(deps, plan, "reject", response.reviewer)
        return {
            "review": ReviewResult(status="rejected", reviewer=response.reviewer, reason=reason),
            "result": Result(status="review_rejected", reason=reason, rules=("reviewer_rejected",)),
            "messages": [story.answer_message(response.reviewer, "Rejected", response.note)],
        }

    if response.decision == "edit":
        if response.edited_plan is None:  # review_refusal refuses it first: "edit_without_plan"
            raise InternalError("an edit without an edited plan got past the review checks")
        facts = state.get("facts")
        refusal_rules: tuple[str, ...]
        if facts is None:
            edited, refusal_rules = None, ("facts_unknown",)
        else:
            edited, rails = apply_edit(plan, response.edited_plan, facts, deps.prices, deps.policy, now)
            refusal_rules = rails.refusals
        if edited is None:
            # the plan as proposed still stands: a mistyped target must not end it; ask again, saying why
            reason = f"edited plan refused by rule(s): {', '.join(refusal_rules)}"
            audit("review_edit_refused", "refused", response.reviewer, reason)
            return {
                "review_refusals": refusals + 1,
                "review": ReviewResult(
                    status="refused", reviewer=response.reviewer, reason=reason, rules=refusal_rules
                ),
                "messages": [story.refusal_message(reason)],
            }
        if (edited.action, edited.target_type) == (plan.action, plan.target_type):
            # an edit that changes nothing (a shutdown given a target, say) is an approval of the plan as it is
            response = response.model_copy(update={"decision": "approve"})
        else:
            audit(
                "review_edited",
                "approved",
                response.reviewer,
                f"edited to {edited.action} (digest {edited.digest}){note}",
            )
            _vote(deps, plan, "edit", response.reviewer)
            return {
                "plan": edited,
                "approval": Approval(
                    digest=edited.digest, authorized_by=response.reviewer, approved_at=now, mode="human"
                ),
                "review": ReviewResult(
                    status="approved", reviewer=response.reviewer, reason=f"edited by {response.reviewer}"
                ),
                "messages": [
                    story.answer_message(response.reviewer, f"Approved, edited to {edited.action}", response.note)
                ],
            }
    audit("review_approved", "approved", response.reviewer, f"approved{note}")
    _vote(deps, plan, "agree", response.reviewer)
    return {
        "approval": Approval(digest=digest, authorized_by=response.reviewer, approved_at=now, mode="human"),
        "review": ReviewResult(
            status="approved", reviewer=response.reviewer, reason=f"approved by {response.reviewer}"
        ),
        "messages": [story.answer_message(response.reviewer, "Approved", response.note)],
    }


def _vote(deps: Deps, plan: Plan, vote: str, reviewer: str) -> None:
    """The review as evidence for the plan's class (policy/autonomy.py): once per plan, however often this re-runs."""
    plan_class = autonomy_class(plan, deps.policy)
    record_vote(
        deps.store, thread_id=plan.thread_id, digest=plan.digest, plan_class=plan_class, vote=vote, reviewer=reviewer
    )


REFUSAL_WORDS = {
    "reviewer_not_allowed": "this reviewer is not on the policy's approvers list",
    "digest_mismatch": "the answer was for another version of the plan",
    "edit_without_plan": "an edit must say the new action",
}
