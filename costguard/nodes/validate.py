"""validate: the policy turns the model's decision into a verdict and, maybe, a plan."""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from costguard.context import Deps
from costguard.nodes import story
from costguard.nodes.common import current_thread_id
from costguard.policy import evaluate, standing
from costguard.policy.grace import grace_applies
from costguard.state import Approval, CostState, Facts, Plan, Result, unusable_decision
from costguard.tools.notify import review_link
from costguard.tools.store.agreements import votes_by_class


def validate(state: CostState, runtime: Runtime[Deps]) -> dict[str, Any]:
    deps = runtime.context
    alert = state["alert"]
    facts = state.get("facts") or Facts(
        resource_id=alert.resource_id, resource_type=alert.resource_type, region=alert.region or "", exists=False
    )
    decision = state.get("decision") or unusable_decision(alert, "no decision")
    now = deps.clock()
    evaluation = evaluate(
        alert=alert,
        facts=facts,
        decision=decision,
        investigation_rounds=state.get("investigation_rounds", 0),
        thread_id=current_thread_id(state),
        prices=deps.prices,
        policy=deps.policy,
        now=now,
        earned=earned_classes(deps) if deps.policy.autonomy.required else None,
    )
    verdict, plan = evaluation.verdict, evaluation.plan
    update: dict[str, Any] = {
        "verdict": verdict,
        "plan": plan,
        "approval": None,
        "result": None,
        "messages": [story.verdict_message(verdict, plan)],
    }
    if verdict.route == "report" and verdict.status is not None:
        update["result"] = Result(status=verdict.status, reason=verdict.reason, rules=verdict.rules)
    if verdict.route == "human_review" and plan is not None:
        tell_reviewers(deps, plan)
    if verdict.route == "execute" and plan is not None and not plan.requires_approval:
        approval = Approval(digest=plan.digest, authorized_by="policy:autonomous", approved_at=now, mode="autonomous")
        update["approval"] = approval
        if grace_applies(plan, approval, deps.policy):
            update["verdict"] = verdict.model_copy(update={"route": "grace"})  # scheduled, not executed
    return update


def earned_classes(deps: Deps) -> frozenset[str]:
    """The plan classes whose reviews have earned them autonomy (read from the agreement records)."""
    rule = deps.policy.autonomy
    return frozenset(
        cls for cls, votes in votes_by_class(deps.store).items() if standing(cls, votes, rule).standing == "earned"
    )


def tell_reviewers(deps: Deps, plan: Plan) -> None:
    """A notice that a plan waits for a person, with the review page's link; once per plan version."""
    if deps.store.first_notice(f"review:{plan.thread_id}:{plan.digest}"):
        savings = (
            "unknown savings" if plan.savings_usd_per_month is None else f"${plan.savings_usd_per_month:,.2f}/month"
        )
        until = f"{plan.expires_at:%Y-%m-%d %H:%M} UTC"
        text = f"{plan.action} of {plan.resource_id} ({savings}) waits for a reviewer until {until}"
        deps.notifier.review_waiting(
            text, thread_id=plan.thread_id, link=review_link(deps.review_ui_url, plan.thread_id)
        )
