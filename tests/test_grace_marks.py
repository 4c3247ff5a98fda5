"""The mark tag on its own: which mark on a resource is a plan still waiting its grace period (a later alert joins
it instead of marking again), and which is not in the way."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from costguard.policy.grace import MARK_TAG, mark_value, waiting_mark
from tests.test_routing import PLAN as ROUTING_PLAN

NOW = datetime(2026, 12, 5, 6, 0, tzinfo=UTC)
PLAN = ROUTING_PLAN.model_copy(update={"requires_approval": False, "phase": "autonomous", "created_at": NOW})
OWN = mark_value(PLAN, NOW + timedelta(hours=24))


@pytest.mark.parametrize(
    ("tags", "expected"),
    [
        (None, None),
        ({}, None),
        ({MARK_TAG: OWN}, None),  # our own mark: a re-run of the same step
        ({MARK_TAG: "shutdown@2026-12-05T05:59:59Z"}, None),  # its time has passed: left after acting
        ({MARK_TAG: "resize@2026-12-06T00:00:00Z"}, None),  # another action: the newer plan replaces it
        ({MARK_TAG: "shutdown@tomorrow"}, None),  # not a mark costguard wrote
        ({MARK_TAG: "shutdown"}, None),
        ({MARK_TAG: "shutdown@2026-12-05T06:00:01Z"}, "shutdown@2026-12-05T06:00:01Z"),
        ({"env": "dev", MARK_TAG: "shutdown@2026-12-08T00:00:00Z"}, "shutdown@2026-12-08T00:00:00Z"),
    ],
)
def test_which_mark_is_a_plan_still_waiting(tags: dict[str, str] | None, expected: str | None) -> None:
    assert waiting_mark(tags, PLAN, OWN, NOW) == expected


@given(st.integers(min_value=-(10**6), max_value=10**6))
def test_a_mark_costguard_wrote_waits_exactly_until_its_due_time(offset_s: int) -> None:
    other = PLAN.model_copy(update={"alert_id": "b", "thread_id": "alert:b"})
    mark = mark_value(other, NOW + timedelta(seconds=offset_s))
    found = waiting_mark({MARK_TAG: mark}, PLAN, OWN, NOW)
    assert found == (mark if offset_s > 0 and mark != OWN else None)
