"""Undo (the cloud), rollback (the agent's memory), and the tamper-evident audit chain."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any

import pytest

from costguard.errors import ReviewError
from costguard.policy import Policy
from costguard.state import Alert, ReviewResponse
from costguard.tools.store import AuditRecord, Store
from tests.conftest import APPROVER, Harness, decision, launch, snapshots_of, state_of, type_of

HarnessFactory = Callable[..., Harness]


def alert(instance_id: str, alert_id: str = "a-1") -> Alert:
    return Alert(alert_id=alert_id, instance_id=instance_id, monthly_cost_usd=50)


def test_undo_shutdown_round_trip(make_harness: HarnessFactory, ec2: Any) -> None:
    iid = launch(ec2, "t3.small")
    h = make_harness([decision(iid)], phase="autonomous")
    done = h.guard.process_alert(alert(iid))
    assert done.status == "executed"
    assert state_of(ec2, iid) == "stopped"
    with pytest.raises(ReviewError, match="approvers"):
        h.guard.undo(done.thread_id, "mallory")
    assert state_of(ec2, iid) == "stopped"
    undone = h.guard.undo(done.thread_id, APPROVER)
    assert undone.status == "rolled_back"
    assert "started" in undone.reason
    assert state_of(ec2, iid) == "running"
    # idempotent: a second undo does nothing new
    assert h.guard.undo(done.thread_id, APPROVER).status == "rolled_back"
    undo_entries = [e for e in h.store.ledger_rows(done.thread_id) if e.step == "undo"]
    assert len(undo_entries) == 1
    assert undo_entries[0].confirmed
    assert h.guard.snapshot(done.thread_id).values["outcome"].status == "rolled_back"
    assert h.guard.outcome(done.thread_id).status == "rolled_back"
    events = [r.event for r in h.store.audit_rows(done.thread_id)]
    assert events[-4:] == ["undo_refused", "undo_intent", "undo", "outcome"]
    assert len(snapshots_of(ec2, iid)) == 1  # the snapshot is kept


def test_undo_resize_round_trip(make_harness: HarnessFactory, ec2: Any) -> None:
    iid = launch(ec2, "m5.xlarge")
    h = make_harness([decision(iid, action="resize", target="m5.large")], phase="reversible")
    tid = h.guard.process_alert(alert(iid)).thread_id
    digest = h.guard.snapshot(tid).values["plan"].digest
    done = h.guard.review(tid, ReviewResponse(decision="approve", reviewer=APPROVER, digest=digest))
    assert done.status == "executed"
    assert type_of(ec2, iid) == "m5.large"
    undone = h.guard.undo(tid, APPROVER)
    assert undone.status == "rolled_back"
    assert type_of(ec2, iid) == "m5.xlarge"
    assert state_of(ec2, iid) == "running"


def test_undo_refuses_when_someone_else_changed_the_instance(make_harness: HarnessFactory, ec2: Any) -> None:
    iid = launch(ec2, "t3.small")
    h = make_harness([decision(iid)], phase="autonomous")
    done = h.guard.process_alert(alert(iid))
    ec2.terminate_instances(InstanceIds=[iid])
    with pytest.raises(Exception, match=r"left alone|no longer exists"):
        h.guard.undo(done.thread_id, APPROVER)
    assert h.guard.outcome(done.thread_id).status == "executed"


def test_undo_of_a_thread_that_executed_nothing_is_refused(make_harness: HarnessFactory, ec2: Any) -> None:
    iid = launch(ec2, "t3.small", {"critical": ""})
    h = make_harness([decision(iid)], phase="autonomous")
    done = h.guard.process_alert(alert(iid))
    with pytest.raises(ReviewError, match="nothing to undo"):
        h.guard.undo(done.thread_id, APPROVER)


def test_rollback_to_analyze_after_a_policy_change_forks_history(make_harness: HarnessFactory, ec2: Any) -> None:
    iid = launch(ec2, "m5.xlarge")
    # a checkpoint per step, so there is one before analyze (the default has checkpoints at the boundaries)
    h = make_harness([decision(iid), decision(iid)], phase="reversible", durability="sync")
    first = h.guard.process_alert(alert(iid))
    assert first.status == "awaiting_review"
    history = list(h.guard.graph.get_state_history(h.guard.config(first.thread_id)))
    before_analyze = next(s for s in history if s.next == ("analyze",))
    old_ids = {s.config["configurable"]["checkpoint_id"] for s in history}

    # the policy changes: now the phase is observe; continue from before analyze
    h.guard.deps.policy = Policy(phase="observe", approvers=(APPROVER,))
    again = h.guard.rollback(first.thread_id, before_analyze.config["configurable"]["checkpoint_id"])
    assert again.status == "observed"
    # same facts, same prompt: the decision comes from the cache, no second model call
    assert len(h.model.calls) == 1
    assert [r["cached"] for r in h.store.query("SELECT cached FROM cg_model_calls ORDER BY id")] == [0, 1]
    new_history = list(h.guard.graph.get_state_history(h.guard.config(first.thread_id)))
    new_ids = {s.config["configurable"]["checkpoint_id"] for s in new_history}
    assert old_ids < new_ids  # the abandoned branch stays in history
    assert h.guard.outcome(first.thread_id).status == "observed"
    assert h.store.audit_rows(first.thread_id)[0].event == "rollback"
    assert state_of(ec2, iid) == "running"


def test_rollback_of_an_executed_thread_needs_undo_first(make_harness: HarnessFactory, ec2: Any) -> None:
    iid = launch(ec2, "t3.small")
    h = make_harness(
        [decision(iid), decision(iid, action="monitor")], phase="autonomous", decision_cache_ttl_s=0, durability="sync"
    )
    done = h.guard.process_alert(alert(iid))
    history = list(h.guard.graph.get_state_history(h.guard.config(done.thread_id)))
    start = next(s for s in history if s.next == ("analyze",)).config["configurable"]["checkpoint_id"]
    with pytest.raises(ReviewError, match="undo` it first"):
        h.guard.rollback(done.thread_id, start)
    h.guard.undo(done.thread_id, APPROVER)
    again = h.guard.rollback(done.thread_id, start)
    assert again.status == "monitoring"
    assert state_of(ec2, iid) == "running"
    assert len(snapshots_of(ec2, iid)) == 1


def approve(h: Harness, thread_id: str) -> ReviewResponse:
    plan = h.guard.snapshot(thread_id).values["plan"]
    return ReviewResponse(decision="approve", reviewer=APPROVER, digest=plan.digest)


def nexts(h: Harness, thread_id: str) -> list[tuple[str, ...]]:
    return [s.next for s in h.guard.graph.get_state_history(h.guard.config(thread_id))]


def test_default_durability_checkpoints_at_pause_before_execute_and_end(make_harness: HarnessFactory, ec2: Any) -> None:
    iid = launch(ec2, "m5.xlarge")
    h = make_harness([decision(iid)], phase="reversible", durability="exit")
    first = h.guard.process_alert(alert(iid))
    assert first.status == "awaiting_review"
    assert nexts(h, first.thread_id) == [("human_review",)]  # the pause is durable
    done = h.guard.review(first.thread_id, approve(h, first.thread_id))
    assert done.status == "executed"
    # newest first: the end; before execute (the approved plan, on disk before the first effect); the pause
    assert nexts(h, first.thread_id) == [(), ("execute",), ("human_review",)]
    before_execute = list(h.guard.graph.get_state_history(h.guard.config(first.thread_id)))[1]
    assert before_execute.values["plan"].digest == done.digest
    assert before_execute.values["approval"].authorized_by == APPROVER


def test_default_durability_rollback_to_the_review_pause_after_undo(make_harness: HarnessFactory, ec2: Any) -> None:
    iid = launch(ec2, "m5.xlarge")
    h = make_harness([decision(iid)], phase="reversible", durability="exit")
    first = h.guard.process_alert(alert(iid))
    pause = h.guard.graph.get_state(h.guard.config(first.thread_id)).config["configurable"]["checkpoint_id"]
    assert h.guard.review(first.thread_id, approve(h, first.thread_id)).status == "executed"
    with pytest.raises(ReviewError, match="undo` it first"):
        h.guard.rollback(first.thread_id, pause)
    h.guard.undo(first.thread_id, APPROVER)
    again = h.guard.rollback(first.thread_id, pause)
    assert again.status == "awaiting_review"  # the same plan is asked for again; nothing ran twice
    assert state_of(ec2, iid) == "running"
    assert len(snapshots_of(ec2, iid)) == 1
    assert len(h.model.calls) == 1

    # approved again, it runs again: a new generation of the plan, not the old confirmed entries
    redone = h.guard.review(first.thread_id, approve(h, first.thread_id))
    assert redone.status == "executed"
    assert state_of(ec2, iid) == "stopped"
    assert len(snapshots_of(ec2, iid)) == 2  # a snapshot before each stop
    steps = [e.step for e in h.store.ledger_rows(first.thread_id) if e.confirmed]
    assert sorted(steps) == ["shutdown", "shutdown#1", "snapshot", "snapshot#1", "undo"]
    outcomes = [r.result for r in h.store.audit_rows(first.thread_id) if r.event == "outcome"]
    assert outcomes == ["executed", "rolled_back", "executed"]
    with pytest.raises(ReviewError, match="undo` it first"):
        h.guard.rollback(first.thread_id, pause)

    # and it can be undone again
    assert h.guard.undo(first.thread_id, APPROVER).status == "rolled_back"
    assert state_of(ec2, iid) == "running"
    assert [r.result for r in h.store.audit_rows(first.thread_id) if r.event == "outcome"][-1] == "rolled_back"
    assert "undo#1" in [e.step for e in h.store.ledger_rows(first.thread_id) if e.confirmed]


def test_rollback_to_an_unknown_checkpoint(make_harness: HarnessFactory, ec2: Any) -> None:
    iid = launch(ec2, "t3.small")
    h = make_harness([decision(iid, action="monitor")], phase="autonomous")
    done = h.guard.process_alert(alert(iid))
    with pytest.raises(ReviewError, match="no checkpoint"):
        h.guard.rollback(done.thread_id, "1f0-not-a-checkpoint")


# --- the audit chain ------------------------------------------------------------------------


def filled_store(tmp_path: Any, n: int = 6) -> Store:
    store = Store(tmp_path / "audit.db")
    for i in range(n):
        store.audit(
            AuditRecord(thread_id=f"t{i % 2}", actor="costguard", event=f"e{i}", result="done", detail=f"record {i}")
        )
    return store


def test_intact_chain_verifies(tmp_path: Any) -> None:
    report = filled_store(tmp_path).verify()
    assert report.ok
    assert report.records == 6


@pytest.mark.parametrize("column", ["detail", "actor", "event", "result", "at", "thread_id"])
@pytest.mark.parametrize("seq", [1, 4, 6])
def test_one_changed_byte_is_named(tmp_path: Any, column: str, seq: int) -> None:
    store = filled_store(tmp_path)
    with sqlite3.connect(store.path) as conn:
        (value,) = conn.execute(f"SELECT {column} FROM cg_audit WHERE seq = ?", (seq,)).fetchone()
        tampered = value[:-1] + chr(ord(value[-1]) ^ 1)
        conn.execute(f"UPDATE cg_audit SET {column} = ? WHERE seq = ?", (tampered, seq))
    report = store.verify()
    assert not report.ok
    assert report.first_bad_seq == seq


def test_a_deleted_record_is_named(tmp_path: Any) -> None:
    store = filled_store(tmp_path)
    with sqlite3.connect(store.path) as conn:
        conn.execute("DELETE FROM cg_audit WHERE seq = 3")
    report = store.verify()
    assert not report.ok
    assert report.first_bad_seq == 4
    assert "record 3 is missing" in report.problem


def test_a_record_rewritten_with_a_fresh_hash_is_named(tmp_path: Any) -> None:
    store = filled_store(tmp_path)
    with sqlite3.connect(store.path) as conn:
        # a forger rewrites a record and recomputes its own hash but not the next record's link
        conn.execute("UPDATE cg_audit SET detail = 'forged', hash = ? WHERE seq = 2", ("f" * 64,))
    report = store.verify()
    assert report.first_bad_seq == 2


def test_two_swapped_records_are_named(tmp_path: Any) -> None:
    store = filled_store(tmp_path)
    with sqlite3.connect(store.path) as conn:
        rows = {r[0]: r[1:] for r in conn.execute("SELECT seq, detail, event FROM cg_audit WHERE seq IN (2, 5)")}
        conn.execute("UPDATE cg_audit SET detail = ?, event = ? WHERE seq = 2", rows[5])
        conn.execute("UPDATE cg_audit SET detail = ?, event = ? WHERE seq = 5", rows[2])
    report = store.verify()
    assert not report.ok
    assert report.first_bad_seq == 2
