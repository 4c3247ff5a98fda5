"""The policy: the rules as data (model), protected instances (protection), the hard rails (rails) and the
verdict on a decision (evaluate). Pure: no I/O, no model, no cloud; the same inputs give the same verdict."""

from costguard.errors import PolicyError
from costguard.policy.autonomy import AutonomyPolicy, Standings, plan_class, standing, wilson_lower_bound
from costguard.policy.evaluate import Evaluation, evaluate, make_plan, reasons_on_facts
from costguard.policy.kinds import hourly_price
from costguard.policy.model import Policy, load_policy
from costguard.policy.protection import is_critical, is_database, is_production, protection_rules
from costguard.policy.rails import (
    PriceBook,
    RailCheck,
    apply_edit,
    approval_reasons,
    check_action,
    monthly,
    recheck_at_execution,
    review_refusal,
)
from costguard.state import Plan


def autonomy_class(plan: Plan, policy: Policy) -> str:
    """A plan's class for the autonomy evidence: kind, action, savings band."""
    return plan_class(plan.resource_type, plan.action, plan.savings_usd_per_month, policy.autonomy)


__all__ = [
    "AutonomyPolicy",
    "Standings",
    "autonomy_class",
    "plan_class",
    "standing",
    "wilson_lower_bound",
    "Evaluation",
    "Policy",
    "PolicyError",
    "PriceBook",
    "RailCheck",
    "apply_edit",
    "approval_reasons",
    "check_action",
    "evaluate",
    "hourly_price",
    "is_critical",
    "is_database",
    "is_production",
    "load_policy",
    "make_plan",
    "monthly",
    "protection_rules",
    "reasons_on_facts",
    "recheck_at_execution",
    "review_refusal",
]
