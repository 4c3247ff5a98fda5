"""Every path of the graph, over InMemorySaver and SqliteSaver, against moto's EC2 server."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from langgraph.checkpoint.base import BaseCheckpointSaver

from costguard.errors import ReviewError
from costguard.graph.builder import build_graph
from costguard.state import Alert, ReviewResponse
from tests.conftest import APPROVER, Harness, decision, launch, snapshots_of, state_of, type_of

HarnessFactory = Callable[..., Harness]


def alert(instance_id: str, alert_id: str = "a-1", **extra: Any) -> Alert:
    return Alert(alert_id=alert_id, instance_id=instance_id, monthly_cost_usd=120, summary="idle", **extra)


def approve(h: Harness, thread_id: str, reviewer: str = APPROVER, digest: str | None = None) -> Any:
    plan = h.guard.snapshot(thread_id).values["plan"]
    return h.guard.review(
        thread_id, ReviewResponse(decision="approve", reviewer=reviewer, digest=digest or plan.digest)
    )


def test_build_graph_is_uncompiled_with_the_designed_nodes() -> None:
    graph = build_graph()
    assert set(graph.nodes) == {
        "intake",
        "gather",
        "analyze",
        "validate",
        "investigate",
        "human_review",
        "grace",
        "execute",
        "report",
    }


def test_autonomous_cheap_shutdown_executes_once_after_snapshot(make_harness: HarnessFactory, ec2: Any) -> None:
    iid = launch(ec2, "t3.small", {"env": "dev"})
    h = make_harness([decision(iid)], phase="autonomous")
    outcome = h.guard.process_alert(alert(iid))
    assert outcome.status == "executed"
    assert outcome.executed
    assert outcome.savings_usd_per_month == round(0.0208 * 730, 2)
    assert state_of(ec2, iid) == "stopped"
    snaps = snapshots_of(ec2, iid)
    assert len(snaps) == 1
    assert list(outcome.snapshot_ids) == snaps
    entries = h.store.ledger_rows(outcome.thread_id)
    assert sorted(e.step for e in entries) == ["shutdown", "snapshot"]
    assert all(e.confirmed for e in entries)
    # processing the same alert again does nothing new
    again = h.guard.process_alert(alert(iid))
    assert again.status == "executed"
    assert len(h.model.calls) == 1
    assert snapshots_of(ec2, iid) == snaps
    assert h.store.verify().ok


@pytest.mark.parametrize(
    ("tags", "rule"),
    [
        ({"Criticality": " CRITICAL "}, "critical_tag"),
        ({"critical": "yes"}, "critical_tag"),
        ({"Environment": "prd", "Role": "PostgreSQL"}, "production_database"),
        ({"env": "live", "Name": "orders-db-01"}, "production_database"),
    ],
)
def test_protected_instance_is_never_stopped(
    make_harness: HarnessFactory, ec2: Any, tags: dict[str, str], rule: str
) -> None:
    iid = launch(ec2, "m5.large", tags)
    h = make_harness([decision(iid, confidence=1.0)], phase="autonomous")
    outcome = h.guard.process_alert(alert(iid))
    assert outcome.status == "rejected"
    assert rule in outcome.rules
    assert rule in outcome.reason
    assert state_of(ec2, iid) == "running"
    assert snapshots_of(ec2, iid) == []


def test_observe_phase_records_would_save_and_changes_nothing(make_harness: HarnessFactory, ec2: Any) -> None:
    iid = launch(ec2, "m5.xlarge")
    h = make_harness([decision(iid)])  # the default phase is observe
    outcome = h.guard.process_alert(alert(iid))
    assert outcome.status == "observed"
    assert outcome.savings_usd_per_month == round(0.192 * 730, 2)
    assert not outcome.executed
    assert state_of(ec2, iid) == "running"


def test_monitor_ends_in_monitoring(make_harness: HarnessFactory, ec2: Any) -> None:
    iid = launch(ec2)
    h = make_harness([decision(iid, action="monitor")], phase="autonomous")
    assert h.guard.process_alert(alert(iid)).status == "monitoring"


def test_investigate_feeds_findings_back_then_goes_to_a_person(make_harness: HarnessFactory, ec2: Any) -> None:
    iid = launch(ec2)
    h = make_harness([decision(iid, action="investigate", confidence=0.3)] * 3, phase="autonomous")
    outcome = h.guard.process_alert(alert(iid))
    assert outcome.status == "investigation_required"
    assert len(h.model.calls) == 3  # first look + max_investigation_rounds (2)
    state = h.guard.snapshot(outcome.thread_id).values
    assert state["investigation_rounds"] == 2
    assert any(f.startswith("round 2: CPU average") for f in state["findings"])
    # the second prompt carries the first round's findings, the first does not
    assert "round 1:" not in str(h.model.calls[0][-1].content)
    assert "round 1:" in str(h.model.calls[1][-1].content)


def test_low_confidence_shutdown_then_confident_one_executes(make_harness: HarnessFactory, ec2: Any) -> None:
    iid = launch(ec2, "t3.micro")
    h = make_harness([decision(iid, confidence=0.4), decision(iid, confidence=0.95)], phase="autonomous")
    outcome = h.guard.process_alert(alert(iid))
    assert outcome.status == "executed"
    assert len(h.model.calls) == 2


@pytest.mark.parametrize(
    "garbage",
    [
        "I think you should shut it down!",
        {"action": "delete", "confidence": 0.9, "reasoning": "x", "parameters": {}, "requires_approval": False},
        {
            "action": "shutdown",
            "confidence": 100,
            "reasoning": "x",
            "parameters": {"instance_id": "i-0"},
            "requires_approval": False,
        },
    ],
)
def test_garbage_model_answer_becomes_investigate_with_raw_kept(
    make_harness: HarnessFactory, ec2: Any, garbage: Any
) -> None:
    iid = launch(ec2)
    h = make_harness([garbage] * 3, phase="autonomous")
    outcome = h.guard.process_alert(alert(iid))
    assert outcome.status == "investigation_required"
    state = h.guard.snapshot(outcome.thread_id).values
    assert state["decision"].action == "investigate"
    assert state["decision"].confidence == 0.0
    raw = state["raw_model_output"]
    expected = garbage if isinstance(garbage, str) else json.dumps([garbage])
    assert raw == expected
    assert state_of(ec2, iid) == "running"


def test_model_targeting_another_instance_is_refused(make_harness: HarnessFactory, ec2: Any) -> None:
    mine, other = launch(ec2, "t3.small"), launch(ec2, "t3.small")
    h = make_harness([decision(other)], phase="autonomous")
    outcome = h.guard.process_alert(alert(mine))
    assert outcome.status == "rejected"
    assert outcome.rules == ("wrong_instance",)
    assert state_of(ec2, mine) == "running"
    assert state_of(ec2, other) == "running"


def test_review_interrupt_payload_and_approve(make_harness: HarnessFactory, ec2: Any) -> None:
    iid = launch(ec2, "m5.xlarge", {"env": "dev"})
    h = make_harness([decision(iid)], phase="reversible")
    outcome = h.guard.process_alert(alert(iid))
    assert outcome.status == "awaiting_review"
    snap = h.guard.snapshot(outcome.thread_id)
    assert snap.next == ("human_review",)
    request = snap.interrupts[0].value
    plan = snap.values["plan"]
    assert set(request) == {"action_requests", "review_configs"}
    assert request["review_configs"] == [
        {"action_name": "execute_plan", "allowed_decisions": ["approve", "edit", "reject"]}
    ]
    (action,) = request["action_requests"]
    assert action["name"] == "execute_plan"
    # only what a reviewer may change; the digest stays server-side, bound to the pending plan
    assert action["args"] == {"action": "shutdown", "target_instance_type": ""}
    description = action["description"]
    assert f"Stop `{iid}` (m5.xlarge, us-east-1): saves **$140.16/month**." in description
    assert "Why a person: the policy's phase asks a person for every action" in description
    assert f"Expires {plan.expires_at:%Y-%m-%d %H:%M} UTC" in description
    assert plan.digest not in description
    assert state_of(ec2, iid) == "running"  # nothing happens before the review

    done = approve(h, outcome.thread_id)
    assert done.status == "executed"
    assert state_of(ec2, iid) == "stopped"
    assert len(snapshots_of(ec2, iid)) == 1
    with pytest.raises(ReviewError, match="not waiting"):
        approve(h, outcome.thread_id)  # an approval is used once
    events = [r.event for r in h.store.audit_rows(outcome.thread_id)]
    assert events == [
        "review_approved",
        "snapshot_intent",
        "snapshot_created",
        "shutdown_intent",
        "shutdown",
        "outcome",
    ]
    assert all(r.authorized_by == APPROVER for r in h.store.audit_rows(outcome.thread_id))


def test_review_reject(make_harness: HarnessFactory, ec2: Any) -> None:
    iid = launch(ec2, "m5.xlarge")
    h = make_harness([decision(iid)], phase="reversible")
    tid = h.guard.process_alert(alert(iid)).thread_id
    digest = h.guard.snapshot(tid).values["plan"].digest
    done = h.guard.review(tid, ReviewResponse(decision="reject", reviewer=APPROVER, digest=digest, note="busy week"))
    assert done.status == "review_rejected"
    assert "busy week" in done.reason
    assert state_of(ec2, iid) == "running"
    assert snapshots_of(ec2, iid) == []


def test_review_edit_to_resize_is_checked_and_executed(make_harness: HarnessFactory, ec2: Any) -> None:
    iid = launch(ec2, "m5.xlarge")
    h = make_harness([decision(iid)], phase="reversible")
    tid = h.guard.process_alert(alert(iid)).thread_id
    digest = h.guard.snapshot(tid).values["plan"].digest
    edit = {"action": "resize", "target_instance_type": "m5.large"}
    done = h.guard.review(tid, {"decision": "edit", "reviewer": APPROVER, "digest": digest, "edited_plan": edit})
    assert done.status == "executed"
    assert done.action == "resize"
    assert done.savings_usd_per_month == round((0.192 - 0.096) * 730, 2)
    assert type_of(ec2, iid) == "m5.large"
    assert state_of(ec2, iid) == "running"  # it was running, so it runs again


def test_review_edit_refused_by_rails(make_harness: HarnessFactory, ec2: Any) -> None:
    iid = launch(ec2, "m5.large")
    h = make_harness([decision(iid)], phase="reversible")
    tid = h.guard.process_alert(alert(iid)).thread_id
    digest = h.guard.snapshot(tid).values["plan"].digest
    edit = {"action": "resize", "target_instance_type": "m6g.large"}  # arm64 from x86_64
    done = h.guard.review(tid, {"decision": "edit", "reviewer": APPROVER, "digest": digest, "edited_plan": edit})
    # refused, and asked again: a mistyped target does not end the plan
    assert done.status == "awaiting_review"
    review = h.guard.snapshot(tid).values["review"]
    assert review.status == "refused"
    assert "resize_architecture_mismatch" in review.rules
    assert type_of(ec2, iid) == "m5.large"
    # an "edit" that changes nothing is an approval of the plan as it is
    same = {"action": "shutdown", "target_instance_type": "m5.medium"}  # a shutdown has no target: dropped
    again = h.guard.review(tid, {"decision": "edit", "reviewer": APPROVER, "digest": digest, "edited_plan": same})
    assert again.status == "executed"
    events = [r.event for r in h.store.audit_rows(tid)]
    assert events[:2] == ["review_edit_refused", "review_approved"]


@pytest.mark.parametrize(
    ("response", "rule"),
    [
        ({"decision": "approve", "reviewer": "mallory", "digest": None}, "reviewer_not_allowed"),
        ({"decision": "approve", "reviewer": APPROVER, "digest": "0" * 64}, "digest_mismatch"),
        ({"decision": "approve", "reviewer": APPROVER}, "malformed_response"),
        ({"decisions": [{"type": "approve"}]}, "unauthenticated_front_end"),  # a front end's answer needs auth
    ],
)
def test_refused_review_keeps_waiting_and_is_audited(
    make_harness: HarnessFactory, ec2: Any, response: dict[str, Any], rule: str
) -> None:
    iid = launch(ec2, "m5.xlarge")
    h = make_harness([decision(iid)], phase="reversible")
    tid = h.guard.process_alert(alert(iid)).thread_id
    plan = h.guard.snapshot(tid).values["plan"]
    if "digest" in response and response["digest"] is None:
        response = {**response, "digest": plan.digest}
    outcome = h.guard.review(tid, response)
    assert outcome.status == "awaiting_review"
    state = h.guard.snapshot(tid).values
    assert state["review"].status == "refused"
    assert state["review"].rules == (rule,)
    assert state["review_refusals"] == 1
    assert state_of(ec2, iid) == "running"
    refused = [r for r in h.store.audit_rows(tid) if r.event == "review_refused"]
    assert len(refused) == 1
    # the request comes again, saying why in words
    again = h.guard.snapshot(tid).interrupts[0].value["action_requests"][0]["description"]
    assert f"**Your last answer was refused:** {state['review'].reason}" in again
    # the same thread still accepts a valid approval afterwards
    assert approve(h, tid).status == "executed"


def test_late_approval_expires_the_plan(make_harness: HarnessFactory, ec2: Any) -> None:
    iid = launch(ec2, "m5.xlarge")
    h = make_harness([decision(iid)], phase="reversible", review_ttl_hours=1)
    tid = h.guard.process_alert(alert(iid)).thread_id
    h.clock.advance(hours=2)
    outcome = approve(h, tid)
    assert outcome.status == "review_expired"
    assert state_of(ec2, iid) == "running"
    assert [r.event for r in h.store.audit_rows(tid)][-2:] == ["review_expired", "outcome"]


def test_critical_tag_added_after_review_trips_the_rail_at_execution(make_harness: HarnessFactory, ec2: Any) -> None:
    iid = launch(ec2, "m5.xlarge", {"env": "dev"})
    h = make_harness([decision(iid)], phase="reversible")
    tid = h.guard.process_alert(alert(iid)).thread_id
    ec2.create_tags(Resources=[iid], Tags=[{"Key": "Critical", "Value": "true"}])
    outcome = approve(h, tid)
    assert outcome.status == "failed"
    assert outcome.error_class == "RailTrippedAtExecution"
    assert "critical_tag" in outcome.rules
    assert state_of(ec2, iid) == "running"
    assert snapshots_of(ec2, iid) == []
    assert h.store.ledger_rows(tid) == []
    alerts = [json.loads(line) for line in h.alerts_sink.read_text().splitlines()]
    assert [a["kind"] for a in alerts] == ["review_waiting", "critical"]
    assert iid in alerts[1]["detail"]["instance_id"]


def test_dry_run_mode_asks_aws_and_changes_nothing(make_harness: HarnessFactory, ec2: Any) -> None:
    iid = launch(ec2, "m5.xlarge")
    h = make_harness([decision(iid)], phase="reversible", dry_run=True)
    outcome = h.guard.process_alert(alert(iid))
    assert outcome.status == "dry_run"
    assert "DryRun" in outcome.reason
    assert state_of(ec2, iid) == "running"
    assert snapshots_of(ec2, iid) == []
    assert h.store.ledger_rows(outcome.thread_id) == []


def test_unknown_instance_is_rejected(make_harness: HarnessFactory) -> None:
    iid = "i-0123456789abcdef0"
    h = make_harness([decision(iid)], phase="autonomous")
    outcome = h.guard.process_alert(alert(iid))
    assert outcome.status == "rejected"
    assert outcome.rules == ("instance_not_found",)


def test_expensive_autonomous_plan_waits_for_review(make_harness: HarnessFactory, ec2: Any) -> None:
    iid = launch(ec2, "m5.xlarge")  # 0.192 $/h -> 140.16 $/month > 100
    h = make_harness([decision(iid)], phase="autonomous")
    outcome = h.guard.process_alert(alert(iid))
    assert outcome.status == "awaiting_review"
    assert outcome.rules == ("savings_over_threshold",)
    pending = h.guard.pending()
    assert [p.thread_id for p in pending] == [outcome.thread_id]


def test_model_timeouts_are_retried_then_succeed(make_harness: HarnessFactory, ec2: Any) -> None:
    iid = launch(ec2, "t3.small")
    h = make_harness([TimeoutError("slow"), TimeoutError("slow"), decision(iid)], phase="autonomous")
    outcome = h.guard.process_alert(alert(iid))
    assert outcome.status == "executed"
    assert len(h.model.calls) == 3


def test_model_down_fails_after_three_attempts_and_the_batch_goes_on(make_harness: HarnessFactory, ec2: Any) -> None:
    down, fine = launch(ec2, "t3.small"), launch(ec2, "t3.small")
    h = make_harness([TimeoutError("down")] * 3 + [decision(fine)], phase="autonomous")
    outcomes = list(h.guard.process([alert(down, "a-down"), alert(fine, "a-fine")]))
    assert [o.status for o in outcomes] == ["failed", "executed"]
    assert outcomes[0].error_class == "ModelUnavailable"
    assert "after 3 attempts" in outcomes[0].reason
    assert len(h.model.calls) == 4
    assert state_of(ec2, down) == "running"


class _Killed(BaseException):
    """Stands for SIGKILL: not an Exception, so nothing in costguard catches it."""


def test_killed_between_the_last_writes_and_their_checkpoint_ends_indexed(
    make_harness: HarnessFactory, ec2: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run killed after `report` ran (its writes saved) but before the step's checkpoint: the rerun applies the saved
    writes without running `report` again, so the thread index must still end at the outcome, not at `running`."""
    iid = launch(ec2, "t3.small", {"env": "dev"})
    h = make_harness([decision(iid)], phase="autonomous", durability="sync")
    saver = h.guard.graph.checkpointer
    assert isinstance(saver, BaseCheckpointSaver)
    put = saver.put

    def put_then_die(config: Any, checkpoint: Any, metadata: Any, versions: Any) -> Any:
        if "outcome" in checkpoint["channel_values"]:
            raise _Killed
        return put(config, checkpoint, metadata, versions)

    monkeypatch.setattr(saver, "put", put_then_die)
    with pytest.raises(_Killed):
        h.guard.process_alert(alert(iid))
    monkeypatch.setattr(saver, "put", put)
    outcome = h.guard.process_alert(alert(iid))
    assert outcome.status == "executed"
    assert (h.store.thread(outcome.thread_id) or {}).get("status") == "executed"
    assert h.guard.unfinished() == []
    # killed after the final checkpoint, before the index was written: reporting the outcome mends it
    h.store.set_thread(outcome.thread_id, outcome.alert_id, "running")
    assert h.guard.process_alert(alert(iid)).status == "executed"
    assert h.guard.unfinished() == []
    assert len(snapshots_of(ec2, iid)) == 1
