"""The policy's verdict on a decision: investigate, review, execute or report, and the plan to act on."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from costguard.errors import InternalError
from costguard.policy.model import Policy
from costguard.policy.protection import is_production
from costguard.policy.rails import PriceBook, approval_reasons, check_action
from costguard.state import Alert, Decision, Facts, Plan, Verdict


@dataclass(frozen=True)
class Evaluation:
    verdict: Verdict
    plan: Plan | None = None


def evaluate(
    *,
    alert: Alert,
    facts: Facts,
    decision: Decision,
    investigation_rounds: int,
    thread_id: str,
    prices: PriceBook,
    policy: Policy,
    now: datetime,
) -> Evaluation:
    """Turn a model's decision into a verdict (and a plan when something may be done)."""
    action = decision.action
    low_confidence = decision.confidence < policy.confidence_threshold
    rounds_left = investigation_rounds < policy.max_investigation_rounds

    if action == "monitor" and not low_confidence:
        return Evaluation(Verdict(route="report", status="monitoring", reason="the model proposes to keep watching"))
    if action in ("investigate", "monitor") or low_confidence:
        if rounds_left:
            return Evaluation(
                Verdict(
                    route="investigate",
                    rules=("low_confidence",) if low_confidence else (),
                    reason=f"{action} at confidence {decision.confidence:.2f}: looking deeper",
                )
            )
        if action in ("investigate", "monitor"):
            return Evaluation(
                Verdict(
                    route="report",
                    status="investigation_required",
                    rules=("undecided_after_investigation",),
                    reason=f"still {action} at confidence {decision.confidence:.2f} after "
                    f"{investigation_rounds} investigation round(s): a person must look",
                )
            )
    if action not in ("shutdown", "resize"):
        raise InternalError(f"evaluate reached an action it cannot plan: {action!r}")

    if decision.parameters.instance_id != alert.instance_id:
        return Evaluation(
            Verdict(
                route="report",
                status="rejected",
                rules=("wrong_instance",),
                reason=f"the decision targets {decision.parameters.instance_id!r}, "
                f"not the alert's own instance {alert.instance_id}",
            )
        )
    if facts.instance_id != alert.instance_id:
        return Evaluation(
            Verdict(
                route="report",
                status="rejected",
                rules=("facts_mismatch",),
                reason=f"the facts describe {facts.instance_id}, not the alert's instance {alert.instance_id}",
            )
        )
    target = decision.parameters.target_instance_type if action == "resize" else None
    rails = check_action(action, target, facts, prices, policy)
    if rails.refusals:
        return Evaluation(
            Verdict(
                route="report",
                status="rejected",
                rules=rails.refusals,
                reason=f"{action} refused by rule(s): {', '.join(rails.refusals)}",
                savings_usd_per_month=rails.savings_usd_per_month,
            )
        )
    reasons = approval_reasons(
        decision_requires_approval=decision.requires_approval,
        low_confidence=low_confidence,
        savings=rails.savings_usd_per_month,
        policy=policy,
        utilization_known=facts.cpu_avg_pct is not None,
        busy=facts.cpu_avg_pct is not None and facts.cpu_avg_pct >= policy.busy_cpu_pct,
        production=facts.tags is not None and is_production(facts.tags, policy),
    )
    plan = make_plan(
        alert=alert,
        facts=facts,
        action=action,
        target=target,
        savings=rails.savings_usd_per_month,
        reasons=reasons,
        thread_id=thread_id,
        policy=policy,
        now=now,
    )
    if policy.phase == "observe":
        return Evaluation(
            Verdict(
                route="report",
                status="observed",
                rules=("phase_observe",),
                reason=f"observe phase: would {action}, nothing executed",
                savings_usd_per_month=rails.savings_usd_per_month,
            ),
            plan,
        )
    route = "execute" if policy.dry_run or not reasons else "human_review"
    return Evaluation(
        Verdict(
            route=route,
            rules=reasons,
            reason="needs approval: " + ", ".join(reasons) if reasons else "allowed autonomously",
            savings_usd_per_month=rails.savings_usd_per_month,
        ),
        plan,
    )


def make_plan(
    *,
    alert: Alert,
    facts: Facts,
    action: str,
    target: str | None,
    savings: float | None,
    reasons: Iterable[str],
    thread_id: str,
    policy: Policy,
    now: datetime,
) -> Plan:
    reasons = tuple(reasons)
    return Plan.model_validate(
        {
            "alert_id": alert.alert_id,
            "thread_id": thread_id,
            "instance_id": facts.instance_id,
            "region": facts.region,
            "action": action,
            "current_instance_type": facts.instance_type or "unknown",
            "target_instance_type": target,
            "savings_usd_per_month": savings,
            "requires_approval": bool(reasons),
            "approval_reasons": reasons,
            "phase": policy.phase,
            "policy_hash": policy.digest,
            "created_at": now,
            "expires_at": now + timedelta(hours=policy.review_ttl_hours),
        }
    )
