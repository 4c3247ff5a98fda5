"""A grace period before an autonomous action, end to end on the emulator: the plan is scheduled (the resource
tagged, its owner told once), acts at its due time after a check on fresh facts, and is called off by its owner
(the mark removed, the opt-out tag added) or refused when the resource became protected meanwhile."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from prometheus_client import generate_latest

from costguard.app.metrics import collect
from costguard.app.sourcing import SourceRunner
from costguard.app.watch import Watcher, WatchOptions, registry_for
from costguard.app.wiring import build_costguard, build_deps
from costguard.errors import ReviewError
from costguard.policy import AutonomyPolicy, Policy
from costguard.policy.grace import MARK_TAG
from costguard.sandbox.scripted_model import ScriptedChatModel
from costguard.settings import Settings
from costguard.state import Alert, Outcome, ReviewResponse
from costguard.tools.cloud import Ec2Cloud
from costguard.tools.queue import SqsQueue
from costguard.tools.store.agreements import record_vote
from tests.aws_routes import Routes
from tests.conftest import (
    APPROVER,
    REGION,
    Clock,
    Harness,
    cli_env,
    client_like,
    decision,
    launch,
    put_cpu,
    put_db_metrics,
    snapshots_of,
    state_of,
)
from tests.test_kinds_graph import database, db_alert, db_status, kind_decision

HarnessFactory = Callable[..., Harness]
GRACE = {"grace_period_hours": 24, "opt_out_tag": "keep-me"}
OWNER = "alice@example.com"


def tags_of(ec2: Any, instance_id: str) -> dict[str, str]:
    reply = ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": [instance_id]}])
    return {t["Key"]: t["Value"] for t in reply["Tags"]}


def notices(h: Harness, kind: str = "owner_notice") -> list[dict[str, Any]]:
    if not h.alerts_sink.exists():
        return []
    sent = [json.loads(line) for line in h.alerts_sink.read_text().splitlines() if line.strip()]
    return [n for n in sent if n["kind"] == kind]


def events(h: Harness, thread_id: str) -> Counter[str]:
    return Counter(r.event for r in h.store.audit_rows(thread_id))


def until_due(h: Harness, ec2: Any, iid: str, *, hours: float = 24, cpu: float = 2.0) -> None:
    """Move the clock on to the due time; CloudWatch has kept measuring the instance meanwhile."""
    h.clock.advance(hours=hours)
    put_cpu(ec2, [iid], cpu, at=h.clock.now)


def scheduled_instance(make_harness: HarnessFactory, ec2: Any, **tags: str) -> tuple[Harness, str, Any]:
    iid = launch(ec2, "t3.small", {"env": "dev", "Owner": OWNER, **tags})
    h = make_harness([decision(iid)], phase="autonomous", autonomy=GRACE)
    outcome = h.guard.process_alert(Alert(alert_id="g-1", instance_id=iid))
    return h, iid, outcome


def test_an_autonomous_plan_waits_out_its_grace_period_then_acts(make_harness: HarnessFactory, ec2: Any) -> None:
    h, iid, waiting = scheduled_instance(make_harness, ec2)
    due = h.clock.now + timedelta(hours=24)
    assert waiting.status == "scheduled", waiting.reason
    assert waiting.due_at == due
    assert f"owner {OWNER} notified" in waiting.reason
    assert tags_of(ec2, iid)[MARK_TAG] == f"shutdown@{due:%Y-%m-%dT%H:%M:%SZ}"
    assert state_of(ec2, iid) == "running"
    assert snapshots_of(ec2, iid) == []
    (notice,) = notices(h)
    assert notice["owner"] == OWNER
    assert notice["detail"]["resource_id"] == iid
    assert "remove the tag costguard:planned or add the tag keep-me" in notice["text"]
    assert h.guard.unfinished() == []
    assert [o.thread_id for o in h.guard.scheduled()] == [waiting.thread_id]

    # the same alert again, an early resume, a run before the due time: still waiting, nobody told twice
    assert h.guard.process_alert(Alert(alert_id="g-1", instance_id=iid)).status == "scheduled"
    h.clock.advance(hours=12)
    assert h.guard.run_due() == []
    assert h.guard.resume_due(waiting.thread_id).status == "scheduled"
    assert h.guard.resume_due(waiting.thread_id).status == "scheduled"
    assert state_of(ec2, iid) == "running"
    plan = h.guard.snapshot(waiting.thread_id).values["plan"]
    approve = ReviewResponse(decision="approve", reviewer=APPROVER, digest=plan.digest)
    with pytest.raises(ReviewError, match="scheduled"):
        h.guard.review(waiting.thread_id, approve)

    until_due(h, ec2, iid, hours=12)
    (done,) = h.guard.run_due()
    assert done.status == "executed", done.reason
    assert "authorized by policy:autonomous" in done.reason
    assert state_of(ec2, iid) == "stopped"
    assert len(snapshots_of(ec2, iid)) == 1
    assert len(notices(h)) == 1
    assert (h.store.thread(done.thread_id) or {}).get("status") == "executed"
    assert h.guard.scheduled() == []
    assert h.guard.run_due() == []
    seen = events(h, done.thread_id)
    assert (seen["scheduled"], seen["schedule_due"], seen["shutdown"], seen["outcome"]) == (1, 1, 1, 1)
    assert h.store.verify().ok


def test_removing_the_mark_cancels_the_plan(make_harness: HarnessFactory, ec2: Any) -> None:
    h, iid, waiting = scheduled_instance(make_harness, ec2)
    ec2.delete_tags(Resources=[iid], Tags=[{"Key": MARK_TAG}])
    h.clock.advance(hours=24, seconds=1)
    (cancelled,) = h.guard.run_due()
    assert cancelled.status == "cancelled"
    assert cancelled.rules == ("mark_removed",)
    assert "was removed" in cancelled.reason
    assert state_of(ec2, iid) == "running"
    assert snapshots_of(ec2, iid) == []
    assert events(h, waiting.thread_id)["schedule_cancelled"] == 1
    assert h.store.ledger_rows(waiting.thread_id) == []


def test_the_opt_out_tag_cancels_the_plan_and_the_mark_goes(make_harness: HarnessFactory, ec2: Any) -> None:
    h, iid, _ = scheduled_instance(make_harness, ec2)
    ec2.create_tags(Resources=[iid], Tags=[{"Key": "keep-me", "Value": "yes"}])
    h.clock.advance(hours=25)
    (cancelled,) = h.guard.run_due()
    assert (cancelled.status, cancelled.rules) == ("cancelled", ("opted_out",))
    assert state_of(ec2, iid) == "running"
    assert MARK_TAG not in tags_of(ec2, iid)
    assert tags_of(ec2, iid)["keep-me"] == "yes"


def test_a_resource_protected_meanwhile_is_refused_at_its_due_time(make_harness: HarnessFactory, ec2: Any) -> None:
    h, iid, waiting = scheduled_instance(make_harness, ec2)
    ec2.create_tags(Resources=[iid], Tags=[{"Key": "Criticality", "Value": "Critical"}])
    h.clock.advance(hours=24)
    (refused,) = h.guard.run_due()
    assert refused.status == "rejected"
    assert "critical_tag" in refused.rules
    assert state_of(ec2, iid) == "running"
    assert snapshots_of(ec2, iid) == []
    assert MARK_TAG not in tags_of(ec2, iid)
    assert events(h, waiting.thread_id)["schedule_refused"] == 1
    assert notices(h, "critical") == []  # an expected ending of a grace period, not an incident


@pytest.mark.parametrize("change", ["tagged production", "busy again"])
def test_fresh_facts_that_need_a_person_send_the_plan_to_review_at_its_due_time(
    make_harness: HarnessFactory, ec2: Any, change: str
) -> None:
    """What validate would send to a person now (tagged production, CPU busy again) does not act alone at its due
    time: it waits for a review (the mark removed, the reviewers told), and a person's approval then acts."""
    h, iid, waiting = scheduled_instance(make_harness, ec2)
    if change == "tagged production":
        ec2.create_tags(Resources=[iid], Tags=[{"Key": "env", "Value": "production"}])
        until_due(h, ec2, iid)
        rule = "production_instance"
    else:
        until_due(h, ec2, iid, cpu=85.0)
        rule = "instance_busy"
    (handed,) = h.guard.run_due()
    assert handed.status == "awaiting_review", handed.reason
    assert rule in handed.rules
    assert state_of(ec2, iid) == "running"
    assert MARK_TAG not in tags_of(ec2, iid)
    assert events(h, waiting.thread_id)["schedule_to_review"] == 1
    assert len(notices(h, "review_waiting")) == 1
    assert h.guard.scheduled() == []
    assert h.guard.run_due() == []
    (pending,) = h.guard.pending()
    assert rule in pending.plan.approval_reasons
    approve = ReviewResponse(decision="approve", reviewer=APPROVER, digest=pending.plan.digest)
    done = h.guard.review(waiting.thread_id, approve)
    assert done.status == "executed", done.reason
    assert f"authorized by {APPROVER}" in done.reason
    assert state_of(ec2, iid) == "stopped"
    assert h.store.verify().ok


def test_autonomy_revoked_during_the_grace_period_sends_the_plan_to_review(
    make_harness: HarnessFactory, ec2: Any
) -> None:
    iid = launch(ec2, "t3.small", {"env": "dev", "owner": OWNER})
    earn = {"required": True, "min_reviews": 1, "min_agreement_lower_bound": 0.0}
    h = make_harness([decision(iid)], phase="autonomous", autonomy={**GRACE, **earn})
    cls = "instance:shutdown:<=100"
    record_vote(h.store, thread_id="earlier", digest="d-0", plan_class=cls, vote="agree", reviewer=APPROVER)
    waiting = h.guard.process_alert(Alert(alert_id="g-rv", instance_id=iid))
    assert waiting.status == "scheduled", waiting.reason
    record_vote(h.store, thread_id="other", digest="d-1", plan_class=cls, vote="reject", reviewer=APPROVER)
    until_due(h, ec2, iid)
    (handed,) = h.guard.run_due()
    assert (handed.status, handed.rules) == ("awaiting_review", ("autonomy_not_earned",))
    assert state_of(ec2, iid) == "running"


def test_a_policy_changed_during_the_grace_period_refuses_the_plan(make_harness: HarnessFactory, ec2: Any) -> None:
    h, iid, waiting = scheduled_instance(make_harness, ec2)
    policy = h.guard.deps.policy
    h.guard.deps = replace(h.guard.deps, policy=policy.model_copy(update={"approval_threshold_usd_per_month": 50.0}))
    until_due(h, ec2, iid)
    (refused,) = h.guard.run_due()
    assert (refused.status, refused.rules) == ("rejected", ("policy_changed",))
    assert policy.digest in refused.reason
    assert state_of(ec2, iid) == "running"
    assert MARK_TAG not in tags_of(ec2, iid)
    assert events(h, waiting.thread_id)["schedule_refused"] == 1


def test_a_later_alert_for_a_scheduled_resource_tells_nobody_again_and_keeps_the_due_time(
    make_harness: HarnessFactory, ec2: Any
) -> None:
    """A daily scan (or a second AWS alert) while the plan waits: no new mark (which would push the due time on and
    cancel the first plan), no second notice; the first plan acts at its due time, once."""
    iid = launch(ec2, "t3.small", {"env": "dev", "Owner": OWNER})
    h = make_harness([decision(iid), decision(iid)], phase="autonomous", autonomy=GRACE)
    first = h.guard.process_alert(Alert(alert_id="day-1", instance_id=iid))
    assert first.status == "scheduled", first.reason
    mark = tags_of(ec2, iid)[MARK_TAG]
    until_due(h, ec2, iid, hours=6)
    again = h.guard.process_alert(Alert(alert_id="day-2", instance_id=iid))
    assert again.thread_id != first.thread_id
    assert (again.status, again.rules) == ("monitoring", ("already_scheduled",)), again.reason
    assert mark in again.reason
    assert tags_of(ec2, iid)[MARK_TAG] == mark
    assert len(notices(h)) == 1
    assert events(h, again.thread_id)["schedule_exists"] == 1
    assert [o.thread_id for o in h.guard.scheduled()] == [first.thread_id]

    until_due(h, ec2, iid, hours=18)
    (done,) = h.guard.run_due()
    assert (done.thread_id, done.status) == (first.thread_id, "executed"), done.reason
    assert state_of(ec2, iid) == "stopped"
    assert len(snapshots_of(ec2, iid)) == 1


def test_a_mark_left_from_an_earlier_action_does_not_stop_a_new_schedule(
    make_harness: HarnessFactory, ec2: Any
) -> None:
    """A mark whose due time has passed (the mark stays after acting) is history, not a plan waiting."""
    iid = launch(ec2, "t3.small", {"env": "dev", "Owner": OWNER, MARK_TAG: "shutdown@2020-01-01T00:00:00Z"})
    h = make_harness([decision(iid)], phase="autonomous", autonomy=GRACE)
    waiting = h.guard.process_alert(Alert(alert_id="g-1", instance_id=iid))
    assert waiting.status == "scheduled", waiting.reason
    assert tags_of(ec2, iid)[MARK_TAG] != "shutdown@2020-01-01T00:00:00Z"
    assert len(notices(h)) == 1


def test_an_opted_out_resource_is_never_marked(make_harness: HarnessFactory, ec2: Any) -> None:
    iid = launch(ec2, "t3.small", {"env": "dev", "owner": OWNER, "keep-me": "yes"})
    h = make_harness([decision(iid)], phase="autonomous", autonomy=GRACE)
    done = h.guard.process_alert(Alert(alert_id="g-oo", instance_id=iid))
    assert (done.status, done.rules) == ("cancelled", ("opted_out",))
    assert MARK_TAG not in tags_of(ec2, iid)
    assert notices(h) == []
    assert state_of(ec2, iid) == "running"


class Killed(BaseException):
    """A process killed at this point (not an error any layer would catch)."""


def test_a_kill_after_the_due_decision_repeats_it(
    make_harness: HarnessFactory, ec2: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Refused at its due time (tagged critical meanwhile); killed right after removing its own mark: the next run
    repeats the recorded refusal, it does not read the missing mark as the owner calling the plan off."""
    h, iid, waiting = scheduled_instance(make_harness, ec2)
    ec2.create_tags(Resources=[iid], Tags=[{"Key": "Criticality", "Value": "Critical"}])
    until_due(h, ec2, iid)
    cloud = h.guard.deps.cloud
    assert isinstance(cloud, Ec2Cloud)
    kind = cloud.kind("instance")
    retag = kind.retag

    def removed_then_killed(*args: Any, **kwargs: Any) -> None:
        retag(*args, **kwargs)
        raise Killed

    monkeypatch.setattr(type(kind), "retag", lambda self, *a, **k: removed_then_killed(*a, **k))
    with pytest.raises(Killed):
        h.guard.run_due()
    monkeypatch.undo()
    assert MARK_TAG not in tags_of(ec2, iid)
    (refused,) = h.guard.run_due()  # left `running`: taken up again
    assert refused.status == "rejected", refused.reason
    assert "critical_tag" in refused.rules
    seen = events(h, waiting.thread_id)
    assert (seen["schedule_refused"], seen["schedule_cancelled"]) == (1, 0)


def test_a_due_run_failing_on_an_unreachable_cloud_is_tried_again(make_harness: HarnessFactory, ec2: Any) -> None:
    h, iid, waiting = scheduled_instance(make_harness, ec2)
    reachable = h.guard.deps
    session = boto3.Session(aws_access_key_id="x", aws_secret_access_key="x", region_name=REGION)
    down = Ec2Cloud(session, default_region=REGION, endpoint_url="http://127.0.0.1:1", clock=h.clock)
    h.guard.deps = replace(reachable, cloud=down)
    until_due(h, ec2, iid)
    (failed,) = h.guard.run_due()
    assert (failed.status, failed.error_class) == ("failed", "CloudUnavailable")
    h.guard.deps = reachable
    (done,) = h.guard.run_due()
    assert done.status == "executed", done.reason
    assert state_of(ec2, iid) == "stopped"
    assert events(h, waiting.thread_id)["schedule_due"] == 1


def test_execute_honours_an_opt_out_added_after_the_due_check(
    make_harness: HarnessFactory, ec2: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Re-validated at its due time, killed before acting, resumed after the owner opted out: nothing is done."""
    h, iid, waiting = scheduled_instance(make_harness, ec2)
    until_due(h, ec2, iid)

    def killed(*args: Any, **kwargs: Any) -> None:
        raise Killed

    monkeypatch.setattr(h.store, "acted_on", killed)
    with pytest.raises(Killed):
        h.guard.run_due()
    monkeypatch.undo()
    ec2.create_tags(Resources=[iid], Tags=[{"Key": "keep-me", "Value": "yes"}])
    (kept,) = h.guard.run_due()
    assert (kept.status, kept.rules) == ("cancelled", ("opted_out",))
    assert state_of(ec2, iid) == "running"
    assert snapshots_of(ec2, iid) == []
    assert h.store.ledger_rows(waiting.thread_id) == []


def test_without_an_owner_tag_the_notice_goes_to_the_webhook_unaddressed(
    make_harness: HarnessFactory, ec2: Any
) -> None:
    iid = launch(ec2, "t3.small", {"env": "dev"})
    h = make_harness([decision(iid)], phase="autonomous", autonomy=GRACE)
    waiting = h.guard.process_alert(Alert(alert_id="g-2", instance_id=iid))
    assert waiting.status == "scheduled"
    (notice,) = notices(h)
    assert notice["owner"] is None
    assert "(no owner tag)" in notice["text"]


def test_a_person_approved_plan_and_a_dry_run_do_not_wait(make_harness: HarnessFactory, ec2: Any) -> None:
    iid = launch(ec2, "m5.4xlarge", {"env": "dev", "owner": OWNER})  # > $100/month: a person approves it
    h = make_harness([decision(iid)], phase="autonomous", autonomy=GRACE)
    waiting = h.guard.process_alert(Alert(alert_id="g-3", instance_id=iid))
    assert waiting.status == "awaiting_review"
    plan = h.guard.snapshot(waiting.thread_id).values["plan"]
    done = h.guard.review(waiting.thread_id, ReviewResponse(decision="approve", reviewer=APPROVER, digest=plan.digest))
    assert done.status == "executed"
    assert notices(h) == []

    other = launch(ec2, "t3.small", {"env": "dev", "owner": OWNER})
    dry = make_harness([decision(other)], phase="autonomous", autonomy=GRACE, dry_run=True)
    assert dry.guard.process_alert(Alert(alert_id="g-4", instance_id=other)).status == "dry_run"
    assert MARK_TAG not in tags_of(ec2, other)


def test_a_database_is_marked_through_rds_tags_and_stopped_when_due(make_harness: HarnessFactory, ec2: Any) -> None:
    name = database(ec2, f"grace-pg-{datetime.now(UTC):%H%M%S%f}", {"env": "dev", "contact": "data-team"})
    h = make_harness([kind_decision(name, "shutdown")], phase="autonomous", autonomy=GRACE)
    waiting = h.guard.process_alert(db_alert(name, "g-5"))
    assert waiting.status == "scheduled", waiting.reason
    rds = client_like(ec2, "rds")
    arn = rds.describe_db_instances(DBInstanceIdentifier=name)["DBInstances"][0]["DBInstanceArn"]
    tags = {t["Key"]: t["Value"] for t in rds.list_tags_for_resource(ResourceName=arn)["TagList"]}
    assert tags[MARK_TAG].startswith("shutdown@")
    assert notices(h)[0]["owner"] == "data-team"
    h.clock.advance(hours=24)
    put_db_metrics(ec2, name, cpu=1.0, connections=0.0, at=h.clock.now)
    (done,) = h.guard.run_due()
    assert done.status == "executed", done.reason
    assert db_status(ec2, name) == "stopped"


@dataclass
class CliCase:
    """One idle instance, its alert file, a scripted model, a policy with a grace period of `grace_s` seconds."""

    instance_id: str
    alerts: Path
    db: Path
    env: dict[str, str]
    args: tuple[str, ...]  # --policy and --scripted-model

    def run(self, *args: str, crash: str | None = None) -> subprocess.CompletedProcess[str]:
        env = dict(self.env, COSTGUARD_CRASHPOINTS=crash) if crash else self.env
        return subprocess.run(
            [sys.executable, "-m", "costguard.run", *args, "--json", *self.args],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    def lines(self, *args: str) -> list[dict[str, Any]]:
        done = self.run(*args)
        assert done.returncode == 0, done.stderr[-2000:]
        return [json.loads(line) for line in done.stdout.splitlines() if line.strip()]


def cli_case(tmp_path: Path, aws_env: str, ec2: Any, alert_id: str, grace_s: float) -> CliCase:
    iid = launch(ec2, "t3.small", {"env": "dev", "owner": OWNER})
    alerts = tmp_path / "alerts.jsonl"
    alerts.write_text(json.dumps({"alert_id": alert_id, "instance_id": iid}) + "\n")
    model = tmp_path / "model.json"
    model.write_text(json.dumps([decision("{{instance_id}}")]))
    policy = tmp_path / "policy.toml"
    grace = f"[autonomy]\ngrace_period_hours = {grace_s / 3600}\n"
    policy.write_text(f'phase = "autonomous"\napprovers = ["{APPROVER}"]\n{grace}')
    db = tmp_path / "cg.db"
    return CliCase(iid, alerts, db, cli_env(aws_env, db), ("--policy", str(policy), "--scripted-model", str(model)))


def test_the_cli_lists_scheduled_plans_and_runs_the_due_ones(tmp_path: Path, aws_env: str, ec2: Any) -> None:
    """`process` schedules, `scheduled` lists, `scheduled --run-due` acts once the (here: 2 s) grace period is over;
    `metrics` counts the action as taken without a person, per class."""
    case = cli_case(tmp_path, aws_env, ec2, "g-cli", 2)
    (waiting,) = case.lines("process", str(case.alerts))
    assert waiting["status"] == "scheduled"
    (listed,) = case.lines("scheduled")
    assert (listed["thread_id"], listed["resource_id"]) == (waiting["thread_id"], case.instance_id)
    time.sleep(max(0.0, (datetime.fromisoformat(listed["due_at"]) - datetime.now(UTC)).total_seconds()) + 0.2)
    (done,) = case.lines("scheduled", "--run-due")
    assert done["status"] == "executed", done["reason"]
    assert state_of(ec2, case.instance_id) == "stopped"
    assert case.lines("scheduled") == []
    business = collect(case.db)["business"]
    assert (business["acted_without_human"], business["autonomy_rate"]) == (1, 1.0)
    assert business["statuses"] == {"executed": 1}


def test_the_earned_autonomy_example_runs_as_documented(tmp_path: Path, aws_env: str, ec2: Any) -> None:
    """examples/earned_autonomy.py (the README's worked example): 20 approvals earn the class autonomy, the next two
    plans are scheduled and their owner told; at the due time one acts, the opted-out one is cancelled."""
    script = Path(__file__).resolve().parents[1] / "examples" / "earned_autonomy.py"
    proc = subprocess.run(
        [sys.executable, str(script), "--grace-seconds", "2", "--db", str(tmp_path / "example.db")],
        env=dict(os.environ, AWS_ENDPOINT_URL=aws_env),
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    out = proc.stdout
    assert "alert idle-1: awaiting_review (autonomy_not_earned); alice@example.com approves: executed" in out
    assert "autonomy: instance:shutdown:<=100: 20 reviews, 100% agreeing, 95 % lower bound 0.839 -> earned" in out
    assert (
        len(re.findall(r"^alert idle-2[12]: scheduled: scheduled for .* owner bob@example.com notified", out, re.M))
        == 2
    )
    assert len(re.findall(r"^webhook -> :hourglass: costguard: bob@example.com: shutdown of i-", out, re.M)) == 2
    acted = re.search(r"^due: idle-21: executed: (i-[0-9a-f]{17}) stopped after snapshot\(s\) snap-", out, re.M)
    assert acted, out
    kept = re.search(r"^due: idle-22: cancelled: (i-[0-9a-f]{17}) carries the opt-out tag", out, re.M)
    assert kept, out
    assert state_of(ec2, acted.group(1)) == "stopped"
    assert state_of(ec2, kept.group(1)) == "running"
    for event in ("scheduled", "schedule_due", "snapshot_created", "shutdown", "schedule_cancelled"):
        assert re.search(rf"^  \d\d:\d\d:\d\d costguard:\w+ +{event} ", out, re.M), event
    assert re.search(r"^audit chain verifies: True \(\d+ records\)$", out, re.M), out


def test_the_watcher_acts_on_plans_whose_grace_period_is_over(
    tmp_path: Path, aws_env: str, routes: Routes, ec2: Any
) -> None:
    iid = launch(ec2, "t3.small", {"env": "dev", "owner": OWNER})
    settings = Settings(COSTGUARD_DB=tmp_path / "cg.db", AWS_ENDPOINT_URL=aws_env, AWS_DEFAULT_REGION=REGION)
    policy = Policy(phase="autonomous", approvers=(APPROVER,), autonomy=AutonomyPolicy(grace_period_hours=24))
    clock = Clock()
    model = ScriptedChatModel(script=[decision(iid)])
    guard = build_costguard(settings, policy, deps=build_deps(settings, policy, model=model, clock=clock))
    assert guard.process_alert(Alert(alert_id="g-w", instance_id=iid)).status == "scheduled"
    assert isinstance(guard.deps.cloud, Ec2Cloud)
    runner = SourceRunner(guard, guard.deps.cloud, guard.deps.prices, default_region=REGION)
    queue = SqsQueue(routes.queue_url, region=REGION, endpoint_url=aws_env)
    due: list[Outcome] = []

    def watch() -> Watcher:
        watcher = Watcher(runner, queue, WatchOptions(once=True), on_due=due.append)
        watcher.run(threading.Event())
        return watcher

    assert watch().stats.due == 0  # not yet
    assert state_of(ec2, iid) == "running"
    clock.advance(hours=24)
    put_cpu(ec2, [iid], 2.0, at=clock.now)
    watcher = watch()
    assert watcher.stats.due == 1
    assert [(o.alert_id, o.status) for o in due] == [("g-w", "executed")]
    assert state_of(ec2, iid) == "stopped"
    assert "costguard_watch_due_total 1.0" in generate_latest(registry_for(watcher.stats)).decode()


def test_the_watcher_goes_on_past_a_due_thread_that_fails_and_stops_between_threads(
    tmp_path: Path, aws_env: str, routes: Routes, ec2: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = [launch(ec2, "t3.small", {"env": "dev", "owner": OWNER}) for _ in range(2)]
    settings = Settings(COSTGUARD_DB=tmp_path / "cg.db", AWS_ENDPOINT_URL=aws_env, AWS_DEFAULT_REGION=REGION)
    policy = Policy(phase="autonomous", approvers=(APPROVER,), autonomy=AutonomyPolicy(grace_period_hours=24))
    clock = Clock()
    model = ScriptedChatModel(script=[decision(i) for i in ids])
    guard = build_costguard(settings, policy, deps=build_deps(settings, policy, model=model, clock=clock))
    waiting = [guard.process_alert(Alert(alert_id=f"g-w{n}", instance_id=i)) for n, i in enumerate(ids)]
    assert [w.status for w in waiting] == ["scheduled", "scheduled"]
    assert isinstance(guard.deps.cloud, Ec2Cloud)
    runner = SourceRunner(guard, guard.deps.cloud, guard.deps.prices, default_region=REGION)
    queue = SqsQueue(routes.queue_url, region=REGION, endpoint_url=aws_env)
    clock.advance(hours=24)
    put_cpu(ec2, ids, 2.0, at=clock.now)
    resume_due = guard.resume_due
    broken = waiting[0].thread_id

    def first_one_breaks(thread_id: str) -> Outcome:
        if thread_id == broken:
            raise RuntimeError("pool timeout")  # not a CostguardError: it used to end the watcher
        return resume_due(thread_id)

    monkeypatch.setattr(guard, "resume_due", first_one_breaks)
    due: list[Outcome] = []
    stopped = threading.Event()
    stopped.set()
    Watcher(runner, queue, WatchOptions(once=True), on_due=due.append)._maybe_run_due(stopped)
    assert due == []  # asked to stop: no due thread is started
    watcher = Watcher(runner, queue, WatchOptions(once=True), on_due=due.append)
    watcher.run(threading.Event())
    assert [(o.alert_id, o.status) for o in due] == [("g-w1", "executed")]
    assert watcher.stats.due == 1
    assert [state_of(ec2, i) for i in ids] == ["running", "stopped"]
    monkeypatch.undo()
    assert [(o.alert_id, o.status) for o in guard.run_due()] == [("g-w0", "executed")]


@pytest.mark.parametrize("crashpoint", ["after_intent=1", "after_effect=1"])
def test_a_due_run_killed_inside_execute_is_taken_up_by_the_next_and_acts_once(
    tmp_path: Path, aws_env: str, ec2: Any, crashpoint: str
) -> None:
    """`scheduled --run-due` SIGKILLed between a ledger intent and the cloud call, or between the call and its
    confirmation: the thread is left `running`; the next `scheduled --run-due` goes on with it. One snapshot, one
    stop, each effect confirmed and audited once."""
    case = cli_case(tmp_path, aws_env, ec2, "g-kill", 1)
    iid = case.instance_id
    assert case.lines("process", str(case.alerts))[0]["status"] == "scheduled"
    time.sleep(1.2)
    killed = case.run("scheduled", "--run-due", crash=crashpoint)
    assert killed.returncode == -9, killed.stderr[-2000:]
    assert case.lines("scheduled") == []  # left `running`, not `scheduled`
    (again,) = case.lines("scheduled", "--run-due")
    assert again["status"] == "executed"
    assert state_of(ec2, iid) == "stopped"
    assert len(snapshots_of(ec2, iid)) == 1
    assert case.lines("scheduled", "--run-due") == []  # nothing left
    with sqlite3.connect(case.db) as conn:
        ledger = conn.execute("SELECT step, confirmed_at FROM cg_ledger").fetchall()
        audit = Counter(e for (e,) in conn.execute("SELECT event FROM cg_audit"))
        status = conn.execute("SELECT status FROM cg_threads").fetchall()
    assert sorted(step for step, _ in ledger) == ["shutdown", "snapshot"]
    assert all(confirmed for _, confirmed in ledger)
    assert (audit["snapshot_created"], audit["shutdown"], audit["scheduled"]) == (1, 1, 1)
    assert status == [("executed",)]


def test_a_process_killed_after_the_owner_notice_tells_nobody_twice(tmp_path: Path, aws_env: str, ec2: Any) -> None:
    """SIGKILLed right after the owner was told, before the pause was saved; run again a second later: the plan
    made before the kill goes on (its checkpoint before `grace` is durable), so no second notice, one record."""
    case = cli_case(tmp_path, aws_env, ec2, "g-told", 3600)
    killed = case.run("process", str(case.alerts), crash="after_owner_notice=1")
    assert killed.returncode == -9, killed.stderr[-2000:]
    time.sleep(1.1)  # a plan made again now would have another creation time, due time and digest
    (waiting,) = case.lines("process", str(case.alerts))
    assert waiting["status"] == "scheduled"
    sink = case.db.with_name(case.db.stem + "-alerts.jsonl")
    sent = [json.loads(line) for line in sink.read_text().splitlines() if line.strip()]
    assert [n["kind"] for n in sent] == ["owner_notice"]
    assert datetime.fromisoformat(sent[0]["detail"]["due_at"]) == datetime.fromisoformat(waiting["due_at"])
    with sqlite3.connect(case.db) as conn:
        audit = Counter(e for (e,) in conn.execute("SELECT event FROM cg_audit"))
    assert audit["scheduled"] == 1
