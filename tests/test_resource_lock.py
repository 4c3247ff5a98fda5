"""One plan acts on a resource at a time; the others find it handled and say so, never a second effect."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from costguard.errors import ResourceBusy
from costguard.state import Alert
from costguard.tools.store import Store
from costguard.tools.store.locks import resource_lock, try_lock, unlock
from tests.conftest import Harness, decision, launch, snapshots_of, state_of

NOW = datetime(2026, 12, 1, tzinfo=UTC)


def test_a_lock_is_held_re_entrant_released_and_expires(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.db")
    assert try_lock(store, "i-1", "t1", NOW) is None
    assert try_lock(store, "i-1", "t2", NOW) == "t1"
    assert try_lock(store, "i-1", "t1", NOW) is None  # a resumed thread takes its own lock again
    assert try_lock(store, "i-2", "t2", NOW) is None  # another resource is free
    unlock(store, "i-1", "t2")  # not ours: nothing happens
    assert try_lock(store, "i-1", "t2", NOW) == "t1"
    assert try_lock(store, "i-1", "t2", NOW + timedelta(minutes=16)) is None  # a dead holder's lock expires
    unlock(store, "i-1", "t2")
    assert try_lock(store, "i-1", "t3", NOW) is None


def test_waiting_for_a_held_resource_ends_in_a_retryable_error(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.db")
    assert try_lock(store, "i-1", "t1", NOW) is None
    with (
        pytest.raises(ResourceBusy, match="i-1 is being acted on by t1"),
        resource_lock(store, "i-1", "t2", lambda: NOW, wait_s=0.3),
    ):
        pass
    with resource_lock(store, "i-1", "t1", lambda: NOW, wait_s=0.3):
        assert try_lock(store, "i-1", "t2", NOW) == "t1"
    assert try_lock(store, "i-1", "t2", NOW) is None  # released on the way out


def test_two_alerts_for_one_instance_act_once(make_harness: Callable[..., Harness], ec2: Any) -> None:
    iid = launch(ec2, "t3.small", {"env": "dev"})
    h = make_harness([decision("{{instance_id}}", confidence=0.95)] * 2, phase="autonomous")
    alarm = Alert(alert_id="alarm-1", instance_id=iid, monthly_cost_usd=15)
    budget = Alert(alert_id="budget-1", instance_id=iid, monthly_cost_usd=15)
    # the budget's thread has its plan and approval and stands right before execute ...
    config = h.guard.config("alert:budget-1")
    h.guard.graph.invoke({"alert": budget}, config, context=h.guard.deps, interrupt_before=["execute"])
    assert h.guard.snapshot("alert:budget-1").next == ("execute",)
    # ... when the alarm's thread stops the instance
    first = h.guard.process_alert(alarm)
    assert first.status == "executed"
    second = h.guard.resume("alert:budget-1")
    assert second.status == "rejected"
    assert second.rules == ("already_handled",)
    assert "already handled by alert:alarm-1" in second.reason
    assert state_of(ec2, iid) == "stopped"
    assert len(snapshots_of(ec2, iid)) == 1
    events = [r.event for r in h.store.audit_rows("alert:budget-1")]
    assert "execution_skipped" in events
    assert h.store.verify().ok
