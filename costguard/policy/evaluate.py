"""The policy's verdict on a decision: investigate, review, execute or report, and the plan to act on."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from costguard.errors import InternalError
from costguard.policy.autonomy import plan_class
from costguard.policy.model import Policy
from costguard.policy.protection import is_production
from costguard.policy.rails import PriceBook, approval_reasons, check_action, target_for
from costguard.state import IRREVERSIBLE_ACTIONS, Alert, Decision, Facts, Plan, Verdict, current_type_of


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
    earned: frozenset[str] | None = None,
) -> Evaluation:
    """Turn a model's decision into a verdict (and a plan when something may be done).

    `earned`: the plan classes that have earned autonomy (policy/autonomy.py); None: no evidence, none has."""
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
    if action not in ("shutdown", "resize", "delete", "release"):
        raise InternalError(f"evaluate reached an action it cannot plan: {action!r}")

    noun = "instance" if alert.resource_type == "instance" else "resource"
    if decision.parameters.target_id != alert.resource_id:
        return Evaluation(
            Verdict(
                route="report",
                status="rejected",
                rules=(f"wrong_{noun}",),
                reason=f"the decision targets {decision.parameters.target_id!r}, "
                f"not the alert's own {noun} {alert.resource_id}",
            )
        )
    if facts.resource_id != alert.resource_id or facts.resource_type != alert.resource_type:
        return Evaluation(
            Verdict(
                route="report",
                status="rejected",
                rules=("facts_mismatch",),
                reason=f"the facts describe {facts.resource_id}, not the alert's {noun} {alert.resource_id}",
            )
        )
    target = target_for(action, decision.parameters.target_instance_type, facts)
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
    reasons = reasons_on_facts(
        facts,
        action,
        rails.savings_usd_per_month,
        policy,
        earned,
        decision_requires_approval=decision.requires_approval,
        low_confidence=low_confidence,
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


def reasons_on_facts(
    facts: Facts,
    action: str,
    savings: float | None,
    policy: Policy,
    earned: frozenset[str] | None,
    *,
    decision_requires_approval: bool = False,
    low_confidence: bool = False,
) -> tuple[str, ...]:
    """Why a person must approve `action` on a resource with these facts (empty: it may run alone). At a grace
    period's due time the same question is asked again on fresh facts, without the model's part."""
    return approval_reasons(
        decision_requires_approval=decision_requires_approval,
        low_confidence=low_confidence,
        savings=savings,
        policy=policy,
        utilization_known=_utilization_known(facts),
        busy=_busy(facts, policy),
        production=facts.tags is not None and is_production(facts.tags, policy),
        irreversible=action in IRREVERSIBLE_ACTIONS,
        autonomy_earned=earned is not None
        and plan_class(facts.resource_type, action, savings, policy.autonomy) in earned,
    )


def _utilization_known(facts: Facts) -> bool:
    """Volumes and addresses are judged by their attachment; instances by CPU; databases by CPU and connections."""
    if facts.resource_type in ("volume", "address"):
        return True
    if facts.resource_type == "db_instance":
        return facts.cpu_avg_pct is not None and facts.connections_max is not None
    return facts.cpu_avg_pct is not None


def _busy(facts: Facts, policy: Policy) -> bool:
    busy_cpu = facts.cpu_avg_pct is not None and facts.cpu_avg_pct >= policy.busy_cpu_pct
    if facts.resource_type == "db_instance":
        return busy_cpu or (
            facts.connections_max is not None and facts.connections_max > policy.idle_db_max_connections
        )
    return busy_cpu and facts.resource_type == "instance"


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
            "resource_id": facts.resource_id,
            "resource_type": facts.resource_type,
            "region": facts.region,
            "action": action,
            "current_type": current_type_of(facts),
            "target_type": target,
            "savings_usd_per_month": savings,
            "requires_approval": bool(reasons),
            "approval_reasons": reasons,
            "phase": policy.phase,
            "policy_hash": policy.digest,
            "created_at": now,
            "expires_at": now + timedelta(hours=policy.review_ttl_hours),
        }
    )
