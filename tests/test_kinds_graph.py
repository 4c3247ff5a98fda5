"""EBS volumes and Elastic IPs through the whole graph, against moto's server, over every checkpointer.

The rails refuse what must never happen (an attached volume deleted, an associated address released); the
irreversible actions wait for a person in every phase; the effects happen once, are ledgered and audited, and
undo puts back what can be put back.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from costguard.errors import UndoRefused
from costguard.state import Alert, ReviewResponse
from costguard.tools.cloud import IDEMPOTENCY_TAG
from tests.conftest import APPROVER, Harness, client_like, create_database, launch, state_of

HarnessFactory = Callable[..., Harness]
ZONE = "us-east-1a"


def kind_decision(resource_id: str, action: str, confidence: float = 0.9) -> dict[str, Any]:
    return {
        "action": action,
        "confidence": confidence,
        "reasoning": f"scripted {action}",
        "parameters": {"resource_id": resource_id},
        "requires_approval": False,
    }


def volume(ec2: Any, *, size: int = 100, kind: str = "gp2", tags: dict[str, str] | None = None) -> str:
    spec = [{"ResourceType": "volume", "Tags": [{"Key": k, "Value": v} for k, v in (tags or {}).items()]}]
    made = ec2.create_volume(
        AvailabilityZone=ZONE, Size=size, VolumeType=kind, **({"TagSpecifications": spec} if tags else {})
    )
    return str(made["VolumeId"])


def address(ec2: Any, tags: dict[str, str] | None = None) -> str:
    made = ec2.allocate_address(Domain="vpc")
    if tags:
        ec2.create_tags(Resources=[made["AllocationId"]], Tags=[{"Key": k, "Value": v} for k, v in tags.items()])
    return str(made["AllocationId"])


def later(h: Harness, days: float = 10) -> None:
    """The harness clock after the resources' creation (moto stamps them with the real time): unused this long."""
    h.clock.now = datetime.now(UTC) + timedelta(days=days)


def approve(h: Harness, thread_id: str) -> Any:
    plan = h.guard.snapshot(thread_id).values["plan"]
    return h.guard.review(thread_id, ReviewResponse(decision="approve", reviewer=APPROVER, digest=plan.digest))


def volume_state(ec2: Any, vid: str) -> dict[str, Any] | None:
    found = ec2.describe_volumes(Filters=[{"Name": "volume-id", "Values": [vid]}])["Volumes"]
    return found[0] if found else None


def test_an_unattached_volume_is_snapshotted_then_deleted_after_approval_and_undo_restores_it(
    make_harness: HarnessFactory, ec2: Any
) -> None:
    vid = volume(ec2, size=50, tags={"env": "dev", "Name": "scratch"})
    h = make_harness([kind_decision(vid, "delete")], phase="autonomous")
    later(h)
    waiting = h.guard.process_alert(Alert(alert_id="v-1", resource_id=vid, monthly_cost_usd=5))
    assert waiting.status == "awaiting_review"
    assert "irreversible_action" in waiting.rules  # $5/month, autonomous phase: still a person, since it deletes
    assert waiting.resource_id == vid
    assert waiting.resource_type == "volume"
    assert waiting.instance_id is None
    assert volume_state(ec2, vid) is not None
    from costguard.nodes.review import describe_plan

    told = describe_plan(h.guard.snapshot(waiting.thread_id).values["plan"])
    assert f"Delete EBS volume `{vid}` (gp2, us-east-1): saves **$5.00/month**." in told
    assert "it cannot be undone" in told
    assert "A snapshot is taken first. **Irreversible**: undo makes a new volume from the snapshot." in told

    done = approve(h, waiting.thread_id)
    assert done.status == "executed", done.reason
    assert volume_state(ec2, vid) is None
    (snap,) = done.snapshot_ids
    assert snap in done.reason
    taken = ec2.describe_snapshots(SnapshotIds=[snap])["Snapshots"][0]
    assert taken["VolumeId"] == vid
    assert any(t["Key"] == IDEMPOTENCY_TAG for t in taken.get("Tags", []))
    assert done.savings_usd_per_month == 5.0  # 50 GiB x $0.10
    assert sorted(e.step for e in h.store.ledger_rows(done.thread_id)) == ["delete", "snapshot"]
    # the same alert again: nothing new
    again = h.guard.process_alert(Alert(alert_id="v-1", resource_id=vid))
    assert again.status == "executed"
    assert len(ec2.describe_snapshots(Filters=[{"Name": "volume-id", "Values": [vid]}])["Snapshots"]) == 1

    undone = h.guard.undo(done.thread_id, APPROVER)
    assert undone.status == "rolled_back"
    restored = ec2.describe_volumes(Filters=[{"Name": "tag:costguard:restored-from", "Values": [vid]}])["Volumes"]
    assert len(restored) == 1
    assert restored[0]["SnapshotId"] == snap
    assert restored[0]["AvailabilityZone"] == ZONE
    assert {"Key": "Name", "Value": "scratch"} in restored[0]["Tags"]
    assert h.guard.undo(done.thread_id, APPROVER).status == "rolled_back"  # idempotent: no second volume
    assert len(ec2.describe_volumes(Filters=[{"Name": "tag:costguard:restored-from", "Values": [vid]}])["Volumes"]) == 1
    assert h.store.verify().ok


def test_an_attached_volume_is_never_deleted(make_harness: HarnessFactory, ec2: Any) -> None:
    iid = launch(ec2, "t3.small", {"env": "dev"})
    vid = volume(ec2, tags={"env": "dev"})
    ec2.attach_volume(VolumeId=vid, InstanceId=iid, Device="/dev/sdf")
    h = make_harness([kind_decision(vid, "delete")], phase="autonomous")
    later(h)
    outcome = h.guard.process_alert(Alert(alert_id="v-2", resource_id=vid))
    assert outcome.status == "rejected"
    assert "volume_attached" in outcome.rules
    assert volume_state(ec2, vid) is not None


def test_a_recently_detached_volume_waits_for_the_policy_age(make_harness: HarnessFactory, ec2: Any) -> None:
    vid = volume(ec2, tags={"env": "dev"})
    h = make_harness([kind_decision(vid, "delete")], phase="autonomous", unattached_volume_min_days=7)
    later(h, days=2)
    outcome = h.guard.process_alert(Alert(alert_id="v-3", resource_id=vid))
    assert outcome.status == "rejected"
    assert "volume_unused_too_briefly" in outcome.rules


def test_a_gp2_volume_becomes_gp3_autonomously_and_undo_changes_it_back(make_harness: HarnessFactory, ec2: Any) -> None:
    vid = volume(ec2, size=100, kind="gp2", tags={"env": "dev"})
    h = make_harness([kind_decision(vid, "resize")], phase="autonomous")
    later(h)
    done = h.guard.process_alert(Alert(alert_id="v-4", resource_id=vid))
    assert done.status == "executed", done.reason
    assert done.savings_usd_per_month == 2.0  # 100 GiB x ($0.10 - $0.08); gp3's baseline is as fast at this size
    assert volume_state(ec2, vid)["VolumeType"] == "gp3"  # type: ignore[index]
    assert volume_state(ec2, vid)["Iops"] == 3000  # type: ignore[index]
    assert done.snapshot_ids == ()  # a type change is reversible: no snapshot first
    plan = h.guard.snapshot(done.thread_id).values["plan"]
    assert (plan.current_type, plan.target_type) == ("gp2", "gp3")
    undone = h.guard.undo(done.thread_id, APPROVER)
    assert undone.status == "rolled_back"
    assert volume_state(ec2, vid)["VolumeType"] == "gp2"  # type: ignore[index]


def test_a_gp2_volume_whose_matching_gp3_costs_more_is_not_changed(make_harness: HarnessFactory, ec2: Any) -> None:
    """200 GiB of gp2 bursts to 250 MiB/s: gp3 as fast costs 125 MiB/s x $0.04 more, more than the $4 it saves."""
    vid = volume(ec2, size=200, kind="gp2", tags={"env": "dev"})
    h = make_harness([kind_decision(vid, "resize")], phase="autonomous")
    outcome = h.guard.process_alert(Alert(alert_id="v-8", resource_id=vid))
    assert outcome.status == "rejected"
    assert "gp3_not_cheaper" in outcome.rules
    assert volume_state(ec2, vid)["VolumeType"] == "gp2"  # type: ignore[index]


def test_a_gp3_volume_is_not_changed(make_harness: HarnessFactory, ec2: Any) -> None:
    vid = volume(ec2, kind="gp3", tags={"env": "dev"})
    h = make_harness([kind_decision(vid, "resize")], phase="autonomous")
    outcome = h.guard.process_alert(Alert(alert_id="v-5", resource_id=vid))
    assert outcome.status == "rejected"
    assert "volume_not_gp2" in outcome.rules


def test_a_critical_volume_is_never_touched(make_harness: HarnessFactory, ec2: Any) -> None:
    vid = volume(ec2, tags={"criticality": "critical"})
    h = make_harness([kind_decision(vid, "delete")], phase="autonomous")
    later(h)
    outcome = h.guard.process_alert(Alert(alert_id="v-6", resource_id=vid))
    assert outcome.status == "rejected"
    assert "critical_tag" in outcome.rules


def test_a_free_address_is_released_after_approval_and_cannot_be_undone(make_harness: HarnessFactory, ec2: Any) -> None:
    alloc = address(ec2, {"env": "dev"})
    h = make_harness([kind_decision(alloc, "release")], phase="autonomous")
    waiting = h.guard.process_alert(Alert(alert_id="e-1", resource_id=alloc))
    assert waiting.status == "awaiting_review"
    assert "irreversible_action" in waiting.rules
    done = approve(h, waiting.thread_id)
    assert done.status == "executed", done.reason
    assert done.savings_usd_per_month == 3.65  # $0.005 an hour
    assert ec2.describe_addresses()["Addresses"] == [] or alloc not in {
        a["AllocationId"] for a in ec2.describe_addresses()["Addresses"]
    }
    assert [e.step for e in h.store.ledger_rows(done.thread_id)] == ["release"]
    with pytest.raises(UndoRefused, match="released"):
        h.guard.undo(done.thread_id, APPROVER)


def test_an_associated_address_is_never_released(make_harness: HarnessFactory, ec2: Any) -> None:
    iid = launch(ec2, "t3.small", {"env": "dev"})
    alloc = address(ec2, {"env": "dev"})
    ec2.associate_address(AllocationId=alloc, InstanceId=iid)
    h = make_harness([kind_decision(alloc, "release")], phase="autonomous")
    outcome = h.guard.process_alert(Alert(alert_id="e-2", resource_id=alloc))
    assert outcome.status == "rejected"
    assert "address_associated" in outcome.rules
    assert alloc in {a["AllocationId"] for a in ec2.describe_addresses()["Addresses"]}


def test_an_address_associated_after_approval_is_refused_at_execution(make_harness: HarnessFactory, ec2: Any) -> None:
    """moto would release it; AWS would refuse: costguard refuses first, on fresh facts."""
    iid = launch(ec2, "t3.small", {"env": "dev"})
    alloc = address(ec2, {"env": "dev"})
    h = make_harness([kind_decision(alloc, "release")], phase="autonomous")
    waiting = h.guard.process_alert(Alert(alert_id="e-3", resource_id=alloc))
    assert waiting.status == "awaiting_review"
    ec2.associate_address(AllocationId=alloc, InstanceId=iid)
    done = approve(h, waiting.thread_id)
    assert done.status == "failed"
    assert "address_associated" in done.rules
    assert alloc in {a["AllocationId"] for a in ec2.describe_addresses()["Addresses"]}
    assert all(e.step != "release" for e in h.store.ledger_rows(done.thread_id))


def test_an_instance_action_on_a_volume_is_not_offered_and_refused(make_harness: HarnessFactory, ec2: Any) -> None:
    vid = volume(ec2, tags={"env": "dev"})
    h = make_harness([kind_decision(vid, "shutdown")], phase="autonomous")
    later(h)
    outcome = h.guard.process_alert(Alert(alert_id="v-7", resource_id=vid))
    assert outcome.status == "rejected"
    assert "action_not_valid_for_volume" in outcome.rules
    prompt = str(h.model.calls[0][-1].content)  # what the model was asked: about a volume, with its actions
    assert "EBS volume" in prompt
    assert '"delete"' in prompt


def test_the_decision_schema_offers_each_kind_only_its_actions() -> None:
    from costguard.tools.llm.model import decision_schema

    vol = decision_schema(Alert(alert_id="x", resource_id="vol-0123456789abcdef0"))
    assert vol["properties"]["action"]["enum"] == ["delete", "resize", "monitor", "investigate"]
    assert vol["properties"]["parameters"]["properties"] == {
        "resource_id": {"type": "string", "enum": ["vol-0123456789abcdef0"]}
    }
    eip = decision_schema(Alert(alert_id="x", resource_id="eipalloc-0123456789abcdef0"))
    assert eip["properties"]["action"]["enum"] == ["release", "monitor", "investigate"]
    inst = decision_schema(Alert(alert_id="x", instance_id="i-0123456789abcdef0"))
    assert inst == decision_schema("i-0123456789abcdef0")  # an instance's schema is the public contract, unchanged
    assert inst["properties"]["action"]["enum"] == ["shutdown", "resize", "monitor", "investigate"]


# --- RDS DB instances ----------------------------------------------------------------------------


def rds_client(ec2: Any) -> Any:
    return client_like(ec2, "rds")


def database(
    ec2: Any,
    name: str,
    tags: dict[str, str],
    *,
    cpu: float = 1.0,
    connections: float = 0.0,
    multi_az: bool = False,
    protection: bool = False,
) -> str:
    return create_database(
        ec2, name, tags, cpu=cpu, connections=connections, MultiAZ=multi_az, DeletionProtection=protection
    )


def db_status(ec2: Any, name: str) -> str:
    return str(rds_client(ec2).describe_db_instances(DBInstanceIdentifier=name)["DBInstances"][0]["DBInstanceStatus"])


def db_alert(name: str, alert_id: str) -> Alert:
    return Alert(alert_id=alert_id, resource_id=name, resource_type="db_instance")


def test_an_idle_dev_database_is_snapshotted_then_stopped_and_undo_starts_it(
    make_harness: HarnessFactory, ec2: Any
) -> None:
    name = database(ec2, f"dev-pg-{datetime.now(UTC):%H%M%S%f}", {"env": "dev"})
    h = make_harness([kind_decision(name, "shutdown")], phase="autonomous")
    done = h.guard.process_alert(db_alert(name, "d-1"))
    assert done.status == "executed", done.reason
    assert done.savings_usd_per_month == round(0.072 * 730, 2)
    assert "after 7 days" in done.reason
    assert db_status(ec2, name) == "stopped"
    (snap,) = done.snapshot_ids
    found = rds_client(ec2).describe_db_snapshots(DBSnapshotIdentifier=snap)["DBSnapshots"]
    assert found[0]["DBInstanceIdentifier"] == name
    assert sorted(e.step for e in h.store.ledger_rows(done.thread_id)) == ["shutdown", "snapshot"]
    assert h.guard.process_alert(db_alert(name, "d-1")).status == "executed"  # again: nothing new
    assert (
        len(rds_client(ec2).describe_db_snapshots(DBInstanceIdentifier=name, SnapshotType="manual")["DBSnapshots"]) == 1
    )
    undone = h.guard.undo(done.thread_id, APPROVER)
    assert undone.status == "rolled_back"
    assert db_status(ec2, name) == "available"


@pytest.mark.parametrize(
    ("tags", "options", "rule"),
    [
        ({"Environment": "Production"}, {}, "production_database"),
        ({"env": "dev"}, {"protection": True}, "deletion_protection"),
        ({"env": "dev"}, {"multi_az": True}, "multi_az"),
        ({"team": "data", "tier": "critical"}, {}, "critical_tag"),
    ],
)
def test_a_protected_database_is_never_stopped(
    make_harness: HarnessFactory, ec2: Any, tags: dict[str, str], options: dict[str, bool], rule: str
) -> None:
    name = database(ec2, f"db-{rule.replace('_', '-')}-{datetime.now(UTC):%H%M%S%f}", tags, **options)
    h = make_harness([kind_decision(name, "shutdown")], phase="autonomous")
    outcome = h.guard.process_alert(db_alert(name, "d-2"))
    assert outcome.status == "rejected"
    assert rule in outcome.rules
    assert db_status(ec2, name) == "available"


def test_a_database_dry_run_is_simulated_without_a_mutating_call(make_harness: HarnessFactory, ec2: Any) -> None:
    name = database(ec2, f"dev-dry-{datetime.now(UTC):%H%M%S%f}", {"env": "dev"})
    h = make_harness([kind_decision(name, "shutdown")], phase="autonomous", dry_run=True)
    outcome = h.guard.process_alert(db_alert(name, "d-3"))
    assert outcome.status == "dry_run"
    assert "simulated" in outcome.reason
    assert db_status(ec2, name) == "available"
    assert rds_client(ec2).describe_db_snapshots(DBInstanceIdentifier=name, SnapshotType="manual")["DBSnapshots"] == []


def test_a_busy_database_goes_to_a_person(make_harness: HarnessFactory, ec2: Any) -> None:
    name = database(ec2, f"dev-busy-{datetime.now(UTC):%H%M%S%f}", {"env": "dev"}, cpu=40.0, connections=12)
    h = make_harness([kind_decision(name, "shutdown")], phase="autonomous")
    outcome = h.guard.process_alert(db_alert(name, "d-4"))
    assert outcome.status == "awaiting_review"
    assert "instance_busy" in outcome.rules


def test_the_model_is_offered_only_the_actions_the_facts_leave_open() -> None:
    from costguard.nodes.analyze import offered_actions
    from costguard.state import CostState, Facts
    from costguard.tools.llm.model import decision_schema

    def offered(**facts: Any) -> tuple[str, ...] | None:
        state: CostState = {"facts": Facts(region="us-east-1", exists=True, **facts)}
        return offered_actions(state)

    vol = {"resource_id": "vol-0123abcd", "resource_type": "volume"}
    assert offered(**vol, state="in-use", attached_to=("i-0123abcd",), volume_type="gp2") == ("resize",)
    assert offered(**vol, state="available", attached_to=(), volume_type="gp3") == ("delete",)
    assert offered(**vol, state="available", attached_to=(), volume_type="gp2") == ("delete", "resize")
    assert offered(**vol, state="in-use", attached_to=None, volume_type="gp3") == ()
    eip = {"resource_id": "eipalloc-0123abcd", "resource_type": "address"}
    assert offered(**eip, association_id="eipassoc-1") is None  # offered: the rail refuses it, visibly
    assert offered(resource_id="i-0123abcd") is None  # an instance keeps the public contract's schema
    alert = Alert(alert_id="x", resource_id="vol-0123abcd")
    assert decision_schema(alert, ("resize",))["properties"]["action"]["enum"] == ["resize", "monitor", "investigate"]


def test_an_instance_plan_keeps_the_digest_an_earlier_version_gave_it() -> None:
    """Old checkpoints hold plans under the earlier field names: loaded, they hash as before (approvals, ledgers)."""
    from costguard.state import Plan, canonical_json, sha256_hex

    old = {
        "alert_id": "a",
        "thread_id": "alert:a",
        "instance_id": "i-0123456789abcdef0",
        "region": "us-east-1",
        "action": "resize",
        "current_instance_type": "m5.2xlarge",
        "target_instance_type": "m5.large",
        "savings_usd_per_month": 210.24,
        "requires_approval": True,
        "approval_reasons": ["savings_over_threshold"],
        "phase": "reversible",
        "policy_hash": "0123456789abcdef",
        "created_at": "2026-12-01T00:00:00Z",
        "expires_at": "2026-12-04T00:00:00Z",
    }
    plan = Plan.model_validate(old)
    assert (plan.resource_id, plan.current_type, plan.target_type) == ("i-0123456789abcdef0", "m5.2xlarge", "m5.large")
    dumped = plan.model_dump(mode="json")
    legacy = {
        {
            "resource_id": "instance_id",
            "current_type": "current_instance_type",
            "target_type": "target_instance_type",
        }.get(k, k): v
        for k, v in dumped.items()
        if k != "resource_type"
    }
    assert plan.digest == sha256_hex(canonical_json(legacy))
    volume_plan = plan.model_copy(update={"resource_type": "volume"})
    assert volume_plan.digest != plan.digest


def test_undo_restores_a_deleted_volume_from_what_the_snapshot_step_kept(
    make_harness: HarnessFactory, ec2: Any, cloud: Any
) -> None:
    """A kill between the delete and its confirmation: the re-run finds the volume gone and only says so; undo then
    takes the zone, type and tags from the snapshot step's record."""
    vid = volume(ec2, size=20, tags={"env": "dev", "Name": "kept"})
    h = make_harness([kind_decision(vid, "delete")], phase="autonomous", irreversible_autonomous_max_usd_per_month=50)
    later(h)
    done = h.guard.process_alert(Alert(alert_id="v-9", resource_id=vid))
    assert done.status == "executed", done.reason
    plan = h.guard.snapshot(done.thread_id).values["plan"]
    snapshot_step = next(e for e in h.store.ledger_rows(done.thread_id) if e.step == "snapshot")
    assert snapshot_step.result is not None
    acted = {**snapshot_step.result, "detail": f"reconciled: {vid} already deleted"}  # what a re-run records
    kind = cloud.kind("volume")
    restored = kind.undo(plan, kind.describe(vid, "us-east-1"), acted, f"undo-{vid}", was_running=False)
    assert "restored" in restored
    made = ec2.describe_volumes(Filters=[{"Name": "tag:costguard:restored-from", "Values": [vid]}])["Volumes"]
    assert [v["AvailabilityZone"] for v in made] == [ZONE]
    assert {"Key": "Name", "Value": "kept"} in made[0]["Tags"]


def test_an_autonomous_plan_made_under_another_policy_does_not_run(make_harness: HarnessFactory, ec2: Any) -> None:
    """A crash (or a wait for a resource) between validate and execute, and the policy changed meanwhile: the
    plan's autonomous approval was the old policy's, so nothing is done."""
    from langgraph.runtime import Runtime

    from costguard.nodes.execute import execute
    from costguard.state import Approval

    iid = launch(ec2, "t3.small", {"env": "dev"})
    h = make_harness([], phase="autonomous")
    deps = h.guard.deps
    facts = deps.cloud.describe(iid, "us-east-1")
    from costguard.policy import make_plan

    plan = make_plan(
        alert=Alert(alert_id="p-1", instance_id=iid),
        facts=facts,
        action="shutdown",
        target=None,
        savings=15.18,
        reasons=(),
        thread_id="alert:p-1",
        policy=deps.policy.model_copy(update={"busy_cpu_pct": 99.0}),  # made under another policy
        now=h.clock(),
    )
    approval = Approval(digest=plan.digest, authorized_by="policy:autonomous", approved_at=h.clock(), mode="autonomous")
    update = execute({"plan": plan, "approval": approval, "facts": facts}, Runtime(context=deps))
    assert update["result"].status == "rejected"
    assert update["result"].rules == ("policy_changed",)
    assert state_of(ec2, iid) == "running"
    same = make_plan(
        alert=Alert(alert_id="p-2", instance_id=iid),
        facts=facts,
        action="shutdown",
        target=None,
        savings=15.18,
        reasons=(),
        thread_id="alert:p-2",
        policy=deps.policy,
        now=h.clock(),
    )
    ok = Approval(digest=same.digest, authorized_by="policy:autonomous", approved_at=h.clock(), mode="autonomous")
    assert execute({"plan": same, "approval": ok, "facts": facts}, Runtime(context=deps))["result"].status == "executed"
