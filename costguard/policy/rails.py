"""The hard rails: what a disruptive action on a resource may never do, and what needs a person."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from costguard.policy.kinds import GP3, KindPrices, check_kind_action
from costguard.policy.model import Policy
from costguard.policy.protection import protection_rules
from costguard.state import Facts, Plan, PlanEdit, ReviewResponse, current_type_of


class PriceBook(KindPrices, Protocol):
    def architecture(self, instance_type: str) -> str | None: ...


def monthly(hourly: float | None, policy: Policy) -> float | None:
    return None if hourly is None else round(hourly * policy.hours_per_month, 2)


# --- the rails ---------------------------------------------------------------------------


@dataclass(frozen=True)
class RailCheck:
    """The result of the hard rails for one disruptive action on one instance."""

    refusals: tuple[str, ...]
    savings_usd_per_month: float | None


def check_action(
    action: str,
    target_instance_type: str | None,
    facts: Facts,
    prices: PriceBook,
    policy: Policy,
) -> RailCheck:
    """The hard rails: protection, reversibility, resize target. Pure."""
    if facts.resource_type != "instance":
        kind_refusals, kind_savings = check_kind_action(action, facts, prices, policy)
        return RailCheck(tuple(kind_refusals), kind_savings)
    refusals: list[str] = []
    if not facts.exists:
        return RailCheck(("instance_not_found",), None)
    if action not in ("shutdown", "resize"):
        return RailCheck(("action_not_valid_for_instance",), None)
    refusals.extend(protection_rules(facts, policy))
    if facts.root_device_type != "ebs":
        refusals.append("not_reversible_instance_store")
    if facts.disable_api_stop is not False:
        refusals.append("stop_protection_enabled")
    if facts.state not in ("running", "stopped"):
        refusals.append("instance_state_not_actionable")
    elif action == "shutdown" and facts.state != "running":
        refusals.append("already_stopped")

    current = facts.instance_type
    current_hourly = prices.hourly(current, facts.region) if current else None
    savings: float | None
    if action == "shutdown":
        savings = monthly(current_hourly, policy)
    else:
        savings = None
        if not target_instance_type:
            refusals.append("resize_target_missing")
        elif target_instance_type == current:
            refusals.append("resize_target_same_type")
        else:
            target_hourly = prices.hourly(target_instance_type, facts.region)
            if target_hourly is None:
                refusals.append("resize_target_unknown")
            elif current_hourly is None:
                refusals.append("current_price_unknown")
            elif target_hourly >= current_hourly:
                refusals.append("resize_not_cheaper")
            else:
                savings = monthly(current_hourly - target_hourly, policy)
            current_arch = facts.architecture or (prices.architecture(current) if current else None)
            target_arch = prices.architecture(target_instance_type)
            if target_hourly is not None and (current_arch is None or current_arch != target_arch):
                refusals.append("resize_architecture_mismatch")
    return RailCheck(tuple(refusals), savings)


def approval_reasons(
    *,
    decision_requires_approval: bool,
    low_confidence: bool,
    savings: float | None,
    policy: Policy,
    utilization_known: bool = True,
    busy: bool = False,
    production: bool = False,
    irreversible: bool = False,
    autonomy_earned: bool = True,
) -> tuple[str, ...]:
    """Why a person must approve (empty: the plan may run autonomously). A missing datum adds a reason."""
    reasons: list[str] = []
    if policy.phase == "reversible":
        reasons.append("phase_requires_approval")
    if savings is None:
        reasons.append("savings_unknown")
    elif savings > policy.approval_threshold_usd_per_month:
        reasons.append("savings_over_threshold")
    if decision_requires_approval:
        reasons.append("model_requested_review")
    if low_confidence:
        reasons.append("low_confidence")
    if not utilization_known:
        reasons.append("utilization_unknown")
    if busy:
        reasons.append("instance_busy")
    if production:
        reasons.append("production_instance")
    if irreversible and not (
        policy.phase == "autonomous"
        and policy.irreversible_autonomous_max_usd_per_month > 0
        and savings is not None
        and savings <= policy.irreversible_autonomous_max_usd_per_month
    ):
        reasons.append("irreversible_action")
    if policy.phase == "autonomous" and policy.autonomy.required and not autonomy_earned:
        reasons.append("autonomy_not_earned")
    return tuple(reasons)


# --- review ------------------------------------------------------------------------------


def review_refusal(response: ReviewResponse, plan: Plan, policy: Policy, now: datetime) -> str | None:
    """Why a review response may not move the plan on (None: it may)."""
    if response.reviewer not in policy.approvers:
        return "reviewer_not_allowed"
    if response.digest != plan.digest:
        return "digest_mismatch"
    if now > plan.expires_at:
        return "review_expired"
    if response.decision == "edit" and response.edited_plan is None:
        return "edit_without_plan"
    return None


def apply_edit(
    plan: Plan, edit: PlanEdit, facts: Facts, prices: PriceBook, policy: Policy, now: datetime
) -> tuple[Plan | None, RailCheck]:
    """A reviewer's edit is a new plan: the rails apply to it exactly as to the model's."""
    target = target_for(edit.action, edit.target_instance_type, facts)
    rails = check_action(edit.action, target, facts, prices, policy)
    if rails.refusals:
        return None, rails
    edited = plan.model_copy(
        update={
            "action": edit.action,
            "target_type": target,
            "savings_usd_per_month": rails.savings_usd_per_month,
            "created_at": now,
        }
    )
    return Plan.model_validate(edited.model_dump()), rails


def target_for(action: str, asked: str | None, facts: Facts) -> str | None:
    """A resize's target: the type asked for an instance; gp3, always, for a volume; nothing otherwise."""
    if action != "resize":
        return None
    return GP3 if facts.resource_type == "volume" else asked


def recheck_at_execution(plan: Plan, fresh: Facts, prices: PriceBook, policy: Policy) -> tuple[str, ...]:
    """Rails on fresh facts, plus anything the approval relied on that has since changed."""
    rails = check_action(plan.action, plan.target_type, fresh, prices, policy)
    refusals = list(rails.refusals)
    if fresh.exists and current_type_of(fresh) != plan.current_type:
        refusals.append("instance_type_changed" if plan.resource_type == "instance" else "resource_type_changed")
    approved = plan.savings_usd_per_month
    now_savings = rails.savings_usd_per_month
    if approved is not None and (now_savings is None or now_savings > approved * 1.05 + 0.01):
        # a bigger effect than the one approved needs a new approval
        refusals.append("savings_changed")
    return tuple(refusals)
