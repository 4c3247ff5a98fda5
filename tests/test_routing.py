"""The routers on their own: pure functions of the state that name the next node, or fail loudly."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from costguard.errors import RoutingError
from costguard.graph.routing import after_intake, after_review, after_validate
from costguard.state import Alert, CostState, Outcome, Plan, ReviewResult, Verdict

NOW = datetime(2026, 12, 1, tzinfo=UTC)
ALERT = Alert(alert_id="a", instance_id="i-0123456789abcdef0")
PLAN = Plan(
    alert_id="a",
    thread_id="alert:a",
    resource_id="i-0123456789abcdef0",
    region="us-east-1",
    action="shutdown",
    current_type="t3.small",
    savings_usd_per_month=15.18,
    requires_approval=True,
    phase="reversible",
    policy_hash="p",
    created_at=NOW,
    expires_at=NOW + timedelta(hours=72),
)


def state(**values: Any) -> CostState:
    base: dict[str, Any] = {"alert": ALERT}
    base.update(values)
    return base  # type: ignore[return-value]


def test_an_invalid_alert_ends_at_intake_and_a_valid_one_goes_on() -> None:
    invalid = Outcome(alert_id="a", thread_id="", status="invalid_input")
    assert after_intake(state(outcome=invalid)) == "__end__"
    assert after_intake(state()) == "gather"
    assert after_intake(state(outcome=None)) == "gather"


@pytest.mark.parametrize("route", ["investigate", "report"])
def test_validate_routes_without_a_plan_where_none_is_needed(route: str) -> None:
    assert after_validate(state(verdict=Verdict(route=route))) == route


@pytest.mark.parametrize("route", ["human_review", "execute"])
def test_validate_routes_to_review_or_execute_only_with_a_plan(route: str) -> None:
    assert after_validate(state(verdict=Verdict(route=route), plan=PLAN)) == route
    with pytest.raises(RoutingError, match=f"route {route} without a plan"):
        after_validate(state(verdict=Verdict(route=route), plan=None))


def test_validate_without_a_verdict_is_a_bug_not_a_default() -> None:
    with pytest.raises(RoutingError, match="no verdict"):
        after_validate(state())


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("approved", "execute"),
        ("refused", "human_review"),  # asks again
        ("rejected", "report"),
        ("expired", "report"),
        ("edit_refused", "report"),
    ],
)
def test_review_routes_by_what_became_of_the_answer(status: str, expected: str) -> None:
    assert after_review(state(review=ReviewResult(status=status))) == expected


def test_review_without_a_result_is_a_bug_not_a_default() -> None:
    with pytest.raises(RoutingError, match="no review result"):
        after_review(state())
