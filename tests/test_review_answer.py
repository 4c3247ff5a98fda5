"""Review answers: costguard's own, and LangChain's HITL decisions, which only an authenticated caller may send."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from costguard.nodes.review_answer import AUTH_HINT, Caller, Refused, read_answer
from costguard.state import Plan, PlanEdit, ReviewResponse

NOW = datetime(2026, 12, 1, tzinfo=UTC)
PLAN = Plan(
    alert_id="a",
    thread_id="alert:a",
    resource_id="i-0123456789abcdef0",
    region="us-east-1",
    action="shutdown",
    current_type="m5.4xlarge",
    savings_usd_per_month=560.64,
    requires_approval=True,
    approval_reasons=("savings_over_threshold",),
    phase="autonomous",
    policy_hash="p",
    created_at=NOW,
    expires_at=NOW + timedelta(hours=72),
)
ALICE = Caller("alice@example.com", ("review",))
ANON = Caller(None)


def test_a_front_end_approve_is_the_authenticated_reviewer_on_the_pending_plan() -> None:
    answer = read_answer({"decisions": [{"type": "approve"}]}, PLAN, ALICE)
    assert answer == ReviewResponse(decision="approve", reviewer="alice@example.com", digest=PLAN.digest)


def test_a_front_end_edit_carries_only_the_editable_args() -> None:
    raw = {
        "decisions": [
            {
                "type": "edit",
                "edited_action": {
                    "name": "execute_plan",
                    "args": {"action": "resize", "target_instance_type": "m5.xlarge", "digest": "0" * 64},
                },
            }
        ]
    }
    answer = read_answer(raw, PLAN, ALICE)
    assert answer == ReviewResponse(
        decision="edit",
        reviewer="alice@example.com",
        digest=PLAN.digest,
        edited_plan=PlanEdit(action="resize", target_instance_type="m5.xlarge"),
    )


def test_a_front_end_reject_keeps_its_message() -> None:
    answer = read_answer({"decisions": [{"type": "reject", "message": "still in use by payroll"}]}, PLAN, ALICE)
    assert answer == ReviewResponse(
        decision="reject", reviewer="alice@example.com", digest=PLAN.digest, note="still in use by payroll"
    )


@pytest.mark.parametrize(
    ("raw", "caller", "rule", "says"),
    [
        ({"decisions": [{"type": "approve"}]}, ANON, "unauthenticated_front_end", AUTH_HINT),
        ({"decisions": [{"type": "approve"}], "reviewer": "bob"}, ALICE, "reviewer_mismatch", "names 'bob'"),
        ({"decisions": [{"type": "approve", "reviewer": "bob"}]}, ALICE, "reviewer_mismatch", "names 'bob'"),
        (
            {"decision": "approve", "reviewer": "bob", "digest": "a" * 64},
            ALICE,
            "reviewer_mismatch",
            "but 'alice@example.com' sent it",
        ),
        ({"decisions": []}, ALICE, "malformed_response", "exactly one decision"),
        ({"decisions": [{"type": "respond"}]}, ALICE, "malformed_response", "unknown decision type 'respond'"),
        ({"decisions": [{"type": "edit"}]}, ALICE, "malformed_response", "edited_action.args"),
        (
            {"decisions": [{"type": "edit", "edited_action": {"args": {"action": "terminate"}}}]},
            ALICE,
            "malformed_response",
            "not one costguard can run",
        ),
        ({"goto": "__end__"}, ALICE, "malformed_response", "malformed review response"),
    ],
)
def test_refusals_name_the_rule_and_say_why(raw: Any, caller: Caller, rule: str, says: str) -> None:
    answer = read_answer(raw, PLAN, caller)
    assert isinstance(answer, Refused)
    assert answer.rule == rule
    assert says in answer.reason


def test_the_cli_answer_without_auth_is_unchanged() -> None:
    raw = {"decision": "approve", "reviewer": "alice@example.com", "digest": PLAN.digest}
    assert read_answer(raw, PLAN, ANON) == ReviewResponse.model_validate(raw)
