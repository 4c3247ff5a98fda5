"""human_review: pause with the plan, its digest, the findings and an expiry; check the answer.

Nothing with a side effect happens before `interrupt()`: the node re-runs from the top when it
is resumed. A response that may not move the plan on (unknown reviewer, wrong digest,
malformed) is refused, audited, and the thread asks again; a late one expires the plan.
"""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime
from langgraph.types import interrupt
from pydantic import ValidationError

from costguard.context import Deps
from costguard.errors import InternalError
from costguard.policy import apply_edit, review_refusal
from costguard.state import (
    Approval,
    CostState,
    Plan,
    Result,
    ReviewResponse,
    ReviewResult,
    canonical_json,
    sha256_hex,
)
from costguard.tools.store import AuditRecord
from costguard.tools.telemetry import ReviewRecord

ACTION_NAME = "execute_plan"


def describe_plan(plan: Plan) -> str:
    target = f" to **{plan.target_instance_type}**" if plan.action == "resize" else ""
    savings = "unknown" if plan.savings_usd_per_month is None else f"${plan.savings_usd_per_month:,.2f}/month"
    reasons = ", ".join(plan.approval_reasons) or "none"
    return (
        f"**{plan.action}** `{plan.instance_id}` ({plan.current_instance_type}){target} in {plan.region}: "
        f"saves {savings}. Needs approval because: {reasons}. "
        f"Approve with digest `{plan.digest}` before {plan.expires_at.isoformat()}."
    )


def review_request(plan: Plan, findings: list[str], refusals: int) -> dict[str, Any]:
    """Shaped as LangChain's HITL request, so agent-chat-ui style front ends show it unchanged."""
    args = plan.model_dump(mode="json")
    args.update({"digest": plan.digest, "expires_at": plan.expires_at.isoformat(), "findings": findings})
    if refusals:
        args["refused_responses"] = refusals
    return {
        "action_requests": [{"name": ACTION_NAME, "args": args, "description": describe_plan(plan)}],
        "review_configs": [{"action_name": ACTION_NAME, "allowed_decisions": ["approve", "edit", "reject"]}],
    }


def human_review(state: CostState, runtime: Runtime[Deps]) -> dict[str, Any]:
    deps = runtime.context
    plan = state.get("plan")
    if plan is None:
        raise InternalError("human_review was reached without a plan")
    refusals = state.get("review_refusals", 0)
    raw = interrupt(review_request(plan, state.get("findings", []), refusals))

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
                instance_id=plan.instance_id,
                digest=digest,
                result=result,
                detail=detail,
                dedupe_key=f"review:{plan.thread_id}:{digest}:{refusals}:{seen}",
            )
        )

    try:
        response = ReviewResponse.model_validate(raw)
    except ValidationError as exc:
        reason = f"malformed review response: {exc.errors()[0]['msg']}"
        audit("review_refused", "refused", None, reason)
        return {
            "review_refusals": refusals + 1,
            "review": ReviewResult(status="refused", reason=reason, rules=("malformed_response",)),
        }

    why = review_refusal(response, plan, deps.policy, now)
    if why == "review_expired":
        reason = f"the plan expired at {plan.expires_at.isoformat()}; approval denied"
        audit("review_expired", "expired", response.reviewer, reason)
        return {
            "review": ReviewResult(status="expired", reviewer=response.reviewer, reason=reason, rules=(why,)),
            "result": Result(status="review_expired", reason=reason, rules=(why,)),
        }
    if why is not None:
        reason = f"review response refused: {why}"
        audit("review_refused", "refused", response.reviewer, reason)
        return {
            "review_refusals": refusals + 1,
            "review": ReviewResult(status="refused", reviewer=response.reviewer, reason=reason, rules=(why,)),
        }

    latency = (now - plan.created_at).total_seconds()
    deps.telemetry.review(ReviewRecord(plan.thread_id, response.reviewer, response.decision, latency))
    note = f" ({response.note})" if response.note else ""
    if response.decision == "reject":
        reason = f"rejected by {response.reviewer}{note}"
        audit("review_rejected", "rejected", response.reviewer, reason)
        return {
            "review": ReviewResult(status="rejected", reviewer=response.reviewer, reason=reason),
            "result": Result(status="review_rejected", reason=reason, rules=("reviewer_rejected",)),
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
            reason = f"edited plan refused by rule(s): {', '.join(refusal_rules)}"
            audit("review_edit_refused", "refused", response.reviewer, reason)
            return {
                "review": ReviewResult(
                    status="edit_refused", reviewer=response.reviewer, reason=reason, rules=refusal_rules
                ),
                "result": Result(status="rejected", reason=reason, rules=refusal_rules),
            }
        audit(
            "review_edited", "approved", response.reviewer, f"edited to {edited.action} (digest {edited.digest}){note}"
        )
        return {
            "plan": edited,
            "approval": Approval(digest=edited.digest, authorized_by=response.reviewer, approved_at=now, mode="human"),
            "review": ReviewResult(
                status="approved", reviewer=response.reviewer, reason=f"edited by {response.reviewer}"
            ),
        }

    audit("review_approved", "approved", response.reviewer, f"approved{note}")
    return {
        "approval": Approval(digest=digest, authorized_by=response.reviewer, approved_at=now, mode="human"),
        "review": ReviewResult(
            status="approved", reviewer=response.reviewer, reason=f"approved by {response.reviewer}"
        ),
    }
