"""A thread tells its story in `messages`: what chat front ends (agent-chat-ui, Studio) show of it."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from langchain_core.messages import AIMessage, HumanMessage

from costguard.state import Alert, ReviewResponse
from tests.conftest import APPROVER, Harness, decision, launch


def test_a_reviewed_thread_reads_as_a_conversation(make_harness: Callable[..., Harness], ec2: Any) -> None:
    iid = launch(ec2, "m5.2xlarge", {"env": "dev"})
    h = make_harness([decision(iid, confidence=0.95)], phase="autonomous")
    alert = Alert(alert_id="story-1", instance_id=iid, region="us-east-1", monthly_cost_usd=280.32, summary="idle")
    waiting = h.guard.process_alert(alert)
    assert waiting.status == "awaiting_review"
    plan = h.guard.snapshot(waiting.thread_id).values["plan"]
    h.guard.review(waiting.thread_id, {"decision": "approve", "reviewer": "mallory", "digest": plan.digest})
    done = h.guard.review(
        waiting.thread_id, ReviewResponse(decision="approve", reviewer=APPROVER, digest=plan.digest, note="go")
    )
    assert done.status == "executed"

    messages = h.guard.snapshot(waiting.thread_id).values["messages"]
    told = [(type(m).__name__, m.name, str(m.content)) for m in messages]
    assert [t[:2] for t in told] == [
        ("HumanMessage", None),
        ("AIMessage", "gather"),
        ("AIMessage", "analyze"),
        ("AIMessage", "validate"),
        ("AIMessage", "human_review"),  # mallory's answer, refused
        ("HumanMessage", "alice_example_com"),
        ("AIMessage", "report"),
    ]
    assert told[0][2].startswith(f"Cost alert story-1 (cost_anomaly) on {iid} in us-east-1, $280.32/month: idle")
    assert "m5.2xlarge, running, CPU 2% (24 h average), $280.32/month; tags: env=dev" in told[1][2]
    assert told[2][2].startswith("Proposal: shutdown (confidence 0.95).")
    assert "a person must approve (the savings are over the approval threshold)" in told[3][2]
    assert "reviewer_not_allowed" in told[4][2]
    assert told[5][2] == "Approved: go"
    assert told[6][2].startswith("Outcome: executed.")
    assert all(isinstance(m, HumanMessage | AIMessage) for m in messages)
    assert sum(len(t[2]) for t in told) < 1500  # short: every checkpoint holds them


def test_a_plan_waiting_for_a_person_is_announced_once_with_its_review_link(
    make_harness: Callable[..., Harness], ec2: Any
) -> None:
    iid = launch(ec2, "m5.2xlarge", {"env": "dev"})
    h = make_harness([decision(iid, confidence=0.95)] * 2, phase="autonomous")
    h.guard.deps.review_ui_url = "http://localhost:3000/?apiUrl=http://127.0.0.1:2024&assistantId=costguard"
    alert = Alert(alert_id="notice-1", instance_id=iid, monthly_cost_usd=280.32)
    assert h.guard.process_alert(alert).status == "awaiting_review"
    assert h.guard.process_alert(alert).status == "awaiting_review"  # reported again, not announced again
    (notice,) = [json.loads(line) for line in h.alerts_sink.read_text().splitlines()]
    assert notice["kind"] == "review_waiting"
    assert notice["link"] == (
        "http://localhost:3000/?apiUrl=http://127.0.0.1:2024&assistantId=costguard&threadId=alert%3Anotice-1"
    )
    assert f"shutdown of {iid} ($280.32/month) waits for a reviewer" in notice["text"]
