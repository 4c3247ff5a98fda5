"""Routers: pure functions of the state that return the next node's name, and fail loudly."""

from __future__ import annotations

from typing import Literal

from costguard.errors import RoutingError
from costguard.state import CostState


def after_intake(state: CostState) -> Literal["gather", "__end__"]:
    """An invalid alert already has its outcome: the run ends there."""
    outcome = state.get("outcome")
    if outcome is not None and outcome.status == "invalid_input":
        return "__end__"
    return "gather"


def after_validate(state: CostState) -> Literal["investigate", "human_review", "execute", "grace", "report"]:
    verdict = state.get("verdict")
    if verdict is None:
        raise RoutingError("validate produced no verdict")
    if verdict.route in ("human_review", "execute", "grace") and state.get("plan") is None:
        raise RoutingError(f"route {verdict.route} without a plan")
    return verdict.route


def after_review(state: CostState) -> Literal["execute", "human_review", "report"]:
    review = state.get("review")
    if review is None:
        raise RoutingError("human_review produced no review result")
    if review.status == "approved":
        return "execute"
    if review.status == "refused":
        return "human_review"
    return "report"


def after_grace(state: CostState) -> Literal["execute", "grace", "human_review", "report"]:
    """Called off or refused at the due time (a result) → report; the fresh facts need a person (the plan now
    requires approval and has none) → human_review; re-validated → execute; else wait again."""
    if state.get("result") is not None:
        return "report"
    schedule = state.get("schedule")
    plan = state.get("plan")
    if plan is not None and plan.requires_approval and state.get("approval") is None:
        return "human_review"
    if schedule is not None and plan is not None and schedule.ready and schedule.digest == plan.digest:
        return "execute"
    return "grace"
