"""`costguard watch` against moto's server: SNS → SQS and EventBridge → SQS carrying AWS's own message formats.

moto carries both routes but produces none of the messages (no anomaly detection, no budgets, no alarm actions):
the tests publish them, shaped as AWS documents them (tests/fixtures/aws).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import generate_latest

from costguard.app.sourcing import Handled, SourceRunner
from costguard.app.watch import Watcher, WatchOptions, registry_for
from costguard.app.wiring import build_costguard
from costguard.policy import Policy
from costguard.sandbox.scripted_model import ScriptedChatModel
from costguard.settings import Settings
from costguard.tools.cloud import Ec2Cloud
from costguard.tools.queue import Message, SqsQueue
from costguard.tools.store.sources import source as source_of
from tests.aws_routes import FIXTURES, Routes, alarm_for, queue_is_empty
from tests.conftest import (
    APPROVER,
    REGION,
    Harness,
    cli_env,
    create_database,
    decision,
    launch,
    snapshots_of,
    state_of,
)
from tests.test_cli import costguard, json_lines
from tests.test_kinds_graph import db_status


def anomaly_event(usage_type: str) -> dict[str, Any]:
    """AWS's EventBridge `Anomaly Detected` event (documented example) with one root cause in our Region."""
    event: dict[str, Any] = json.loads((FIXTURES / "cost-anomaly.eventbridge.json").read_text())
    event["detail"]["rootCauses"] = [
        {"service": "Amazon Elastic Compute Cloud - Compute", "region": REGION, "usageType": usage_type}
    ]
    return event


def put_event(routes: Routes, event: dict[str, Any]) -> None:
    entry = {"Source": event["source"], "DetailType": event["detail-type"], "Detail": json.dumps(event["detail"])}
    assert routes.events.put_events(Entries=[entry])["FailedEntryCount"] == 0


def scripted_shutdowns() -> ScriptedChatModel:
    return ScriptedChatModel(script=[decision("{{instance_id}}", confidence=0.95)], cycle=True)


def scripted_natural() -> ScriptedChatModel:
    """Each kind's natural action (shutdown, stop, delete, release) for whatever resource the alert names."""
    natural = {
        "action": "{{action}}",
        "confidence": 0.95,
        "reasoning": "idle",
        "parameters": "{{parameters}}",
        "requires_approval": False,
    }
    return ScriptedChatModel(script=[natural], cycle=True)


def run_watcher(
    tmp_path: Path, aws_env: str, routes: Routes, model: ScriptedChatModel | None = None, **options: Any
) -> tuple[Watcher, list[Handled]]:
    settings = Settings(COSTGUARD_DB=tmp_path / "cg.db", AWS_ENDPOINT_URL=aws_env, AWS_DEFAULT_REGION=REGION)
    policy = Policy(phase="autonomous", approvers=(APPROVER,))
    guard = build_costguard(settings, policy, model=model or scripted_shutdowns())
    assert isinstance(guard.deps.cloud, Ec2Cloud)
    runner = SourceRunner(guard, guard.deps.cloud, guard.deps.prices, default_region=REGION)
    done: list[Handled] = []
    queue = SqsQueue(routes.queue_url, region=REGION, endpoint_url=aws_env)
    watcher = Watcher(runner, queue, WatchOptions(once=True, **options), on_done=done.append)
    watcher.run(threading.Event())
    return watcher, done


@pytest.mark.slow
def test_every_format_by_both_routes_duplicates_and_garbage(
    tmp_path: Path, aws_env: str, routes: Routes, ec2: Any
) -> None:
    idle = launch(ec2, "t3.small", {"env": "dev"})  # cheap: autonomous
    prod_db = launch(ec2, "r5.large", {"Environment": "production", "Role": "postgres"})  # protected
    pricey = launch(ec2, "m5.2xlarge", {"env": "dev"})  # over $100/month: a person approves

    alarm = alarm_for(idle)
    routes.sns.publish(TopicArn=routes.topic_arn, Message=alarm)
    routes.sns.publish(TopicArn=routes.topic_arn, Message=alarm)  # a duplicate publish: another MessageId
    routes.sns.publish(TopicArn=routes.topic_arn, Message=alarm_for(prod_db, state="OK"))
    put_event(routes, anomaly_event("USE1-BoxUsage:m5.2xlarge"))  # scoped to the pricey instance's type
    routes.sqs.send_message(QueueUrl=routes.queue_url, MessageBody="{not json")
    routes.sqs.send_message(QueueUrl=routes.queue_url, MessageBody=json.dumps({"hello": "world"}))
    own = {"alert_id": "own-1", "instance_id": prod_db, "region": REGION, "monthly_cost_usd": 91.98}
    routes.sqs.send_message(QueueUrl=routes.queue_url, MessageBody=json.dumps(own))

    watcher, done = run_watcher(tmp_path, aws_env, routes, concurrency=1)

    assert queue_is_empty(routes)
    by_kind: dict[str, list[Handled]] = {}
    for handled in done:
        by_kind.setdefault(handled.source.source_kind, []).append(handled)
    assert watcher.stats.received == 7 == watcher.stats.deleted
    assert watcher.stats.invalid == 2
    assert watcher.stats.ignored == 1

    alarms = [h for h in by_kind["cloudwatch_alarm"] if h.source.status == "handled"]
    assert len(alarms) == 2  # the same alarm twice: one source id, one thread
    assert alarms[0].source.source_id == alarms[1].source.source_id
    assert alarms[0].source.children == alarms[1].source.children
    assert [o.status for h in alarms for o in h.outcomes] == ["executed", "executed"]
    (ignored,) = [h for h in by_kind["cloudwatch_alarm"] if h.source.status == "ignored"]
    assert "not ALARM" in ignored.source.reason

    (anomaly,) = by_kind["cost_anomaly"]
    assert [o.instance_id for o in anomaly.outcomes] == [pricey]
    assert [o.status for o in anomaly.outcomes] == ["awaiting_review"]
    assert anomaly.source.by_status == {"awaiting_review": 1}
    (own_alert,) = by_kind["costguard"]
    assert own_alert.outcomes[0].status == "rejected"
    assert "production_database" in own_alert.outcomes[0].rules

    invalid = sorted(h.source.reason for h in by_kind["unknown"])
    assert invalid[0].startswith("not valid JSON") or "JSON" in invalid[0]
    assert all(h.source.status == "invalid_input" for h in by_kind["unknown"])

    assert state_of(ec2, idle) == "stopped"
    assert len(snapshots_of(ec2, idle)) == 1  # twice delivered, once done
    assert state_of(ec2, prod_db) == "running"
    assert state_of(ec2, pricey) == "running"
    store = watcher.runner.guard.deps.store
    assert store.verify().ok
    recorded = source_of(store, alarms[0].source.source_id)
    assert recorded is not None
    assert recorded.status == "handled"
    exposed = generate_latest(registry_for(watcher.stats)).decode()
    assert 'costguard_watch_messages_total{what="received"} 7.0' in exposed
    assert 'costguard_watch_messages_total{what="invalid"} 2.0' in exposed
    assert "costguard_watch_in_flight 0.0" in exposed


@pytest.mark.slow
def test_a_budget_fans_out_over_the_region_one_thread_per_instance(
    tmp_path: Path, aws_env: str, routes: Routes, ec2: Any
) -> None:
    dev = [launch(ec2, "t3.small", {"env": "dev"}) for _ in range(3)]
    critical = launch(ec2, "t3.small", {"Criticality": "critical"})
    busy = launch(ec2, "t3.small", {"env": "dev"}, cpu=80.0)  # not idle: not a candidate
    budget = (FIXTURES / "budgets.raw.txt").read_text()
    routes.sns.publish(TopicArn=routes.topic_arn, Message=budget, Subject="AWS Budgets: monthly-ec2 has exceeded")

    _, done = run_watcher(tmp_path, aws_env, routes)
    (handled,) = done
    assert handled.source.source_kind == "aws_budgets"
    assert sorted(o.instance_id or "" for o in handled.outcomes) == sorted([*dev, critical])
    assert handled.source.by_status == {"executed": 3, "rejected": 1}
    assert handled.source.savings_realised_usd_per_month > 0
    assert all(o.thread_id.startswith("alert:aws_budgets") for o in handled.outcomes)
    assert state_of(ec2, busy) == "running"
    assert state_of(ec2, critical) == "running"
    assert all(state_of(ec2, i) == "stopped" for i in dev)

    # a later notification (its own MessageId), delivered twice (an SNS retry keeps the MessageId): one source,
    # whose scan no longer finds the stopped instances; nothing is done again
    body = handled_body(routes, budget)
    routes.sqs.send_message(QueueUrl=routes.queue_url, MessageBody=body)
    routes.sqs.send_message(QueueUrl=routes.queue_url, MessageBody=body)
    _, again = run_watcher(tmp_path, aws_env, routes)
    assert len(again) == 2
    assert again[0].source.source_id == again[1].source.source_id != handled.source.source_id
    assert [o.instance_id for h in again for o in h.outcomes] == [critical, critical]
    assert again[0].source.children == again[1].source.children
    assert all(len(snapshots_of(ec2, i)) == 1 for i in dev)
    assert queue_is_empty(routes)


def test_an_anomaly_fans_out_to_the_kinds_its_service_is_billed_for(
    tmp_path: Path, aws_env: str, routes: Routes, ec2: Any
) -> None:
    idle = launch(ec2, "t3.small", {"env": "dev"})
    free = ec2.allocate_address(Domain="vpc")["AllocationId"]
    now = datetime.now(UTC)
    db = create_database(ec2, f"fan-{now:%H%M%S}", {"env": "dev"}, stamp=now)
    event = anomaly_event("USE1-InstanceUsage:db.t3.medium")
    event["detail"]["rootCauses"] = [
        {
            "service": "Amazon Relational Database Service",
            "region": REGION,
            "usageType": "USE1-InstanceUsage:db.t3.medium",
        },
        {"service": "Amazon Simple Storage Service", "region": REGION, "usageType": "USE1-TimedStorage-ByteHrs"},
    ]
    put_event(routes, event)
    _, done = run_watcher(tmp_path, aws_env, routes, model=scripted_natural())
    (anomaly,) = done
    assert [(o.resource_id, o.status) for o in anomaly.outcomes] == [(db, "executed")], anomaly.source.reason
    assert "no resource kind handled for Amazon Simple Storage Service" in anomaly.source.reason
    assert db_status(ec2, db) in {"stopping", "stopped"}
    assert state_of(ec2, idle) == "running"  # an RDS anomaly does not look at instances, nor at addresses
    assert free in {a["AllocationId"] for a in ec2.describe_addresses()["Addresses"]}


def handled_body(routes: Routes, budget: str) -> str:
    """An SNS envelope around the budget text with a MessageId of its own (a second notification)."""
    return json.dumps(
        {
            "Type": "Notification",
            "MessageId": "0f4b3c2a-1111-2222-3333-444455556666",
            "TopicArn": routes.topic_arn,
            "Subject": "AWS Budgets: monthly-ec2 has exceeded",
            "Message": budget,
            "Timestamp": "2026-12-01T10:00:00.000Z",
            "SignatureVersion": "1",
            "Signature": "x",
            "SigningCertURL": "https://sns.us-east-1.amazonaws.com/x.pem",
            "UnsubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe",
        }
    )


@pytest.mark.slow
def test_process_takes_the_same_messages_from_a_file(tmp_path: Path, aws_env: str, routes: Routes, ec2: Any) -> None:
    idle = launch(ec2, "t3.small", {"env": "dev"})
    pricey = launch(ec2, "m5.2xlarge", {"env": "dev"})
    sns_alarm = json.loads((FIXTURES / "cloudwatch-alarm.sns.json").read_text())
    sns_alarm["Message"] = alarm_for(idle)
    anomaly = anomaly_event("USE1-BoxUsage:m5.2xlarge")
    anomaly["account"] = "123456789012"
    lines = [
        json.dumps(sns_alarm),
        json.dumps(anomaly),
        json.dumps({"Type": "Notification", "Message": "no"}),  # an SNS envelope without its fields
        json.dumps({"alert_id": "own", "instance_id": pricey, "monthly_cost_usd": 280.32}),
    ]
    alerts = tmp_path / "messages.jsonl"
    alerts.write_text("\n".join(lines) + "\n")
    script = tmp_path / "model.json"
    script.write_text(json.dumps([decision("{{instance_id}}", confidence=0.95)]))
    policy = tmp_path / "policy.toml"
    policy.write_text(f'phase = "autonomous"\napprovers = ["{APPROVER}"]\n')
    report = tmp_path / "report.json"
    proc = costguard(
        "process",
        str(alerts),
        "--json",
        "--policy",
        str(policy),
        "--scripted-model",
        str(script),
        "--report",
        str(report),
        env=cli_env(aws_env, tmp_path / "cg.db"),
    )
    assert proc.returncode == 0, proc.stderr
    outcomes = json_lines(proc.stdout)
    by_instance = {(o["instance_id"], o["alert_id"].split("/")[0].split("~")[0]): o["status"] for o in outcomes}
    assert by_instance[(idle, "cloudwatch_alarm")] == "executed"
    assert by_instance[(pricey, "own")] == "awaiting_review"
    assert by_instance[(pricey, "cost_anomaly:12345678-abcd-ef12-3456-987654321a12")] == "awaiting_review"
    (invalid,) = [o for o in outcomes if o["status"] == "invalid_input"]
    assert invalid["line"] == 3
    sources = json.loads(report.read_text())["sources"]
    assert sorted(s["source_kind"] for s in sources) == ["cloudwatch_alarm", "cost_anomaly"]
    assert state_of(ec2, idle) == "stopped"


@pytest.mark.slow
def test_the_observe_scan_runs_as_a_periodic_source(tmp_path: Path, aws_env: str, routes: Routes, ec2: Any) -> None:
    idle = launch(ec2, "t3.small", {"env": "dev"})
    launch(ec2, "t3.small", {"env": "dev"}, cpu=75.0)  # busy: not an alert
    watcher, done = run_watcher(tmp_path, aws_env, routes, scan_every=timedelta(hours=1))
    (scan,) = done
    assert scan.source.source_kind == "scan"
    assert [o.instance_id for o in scan.outcomes] == [idle]
    assert scan.source.by_status == {"executed": 1}
    assert watcher.stats.scans == 1
    assert watcher.stats.received == 0


def test_the_periodic_scan_finds_every_kind_of_waste(tmp_path: Path, aws_env: str, routes: Routes, ec2: Any) -> None:
    idle = launch(ec2, "t3.small", {"env": "dev"})
    orphan = ec2.create_volume(AvailabilityZone=f"{REGION}a", Size=50, VolumeType="gp3")["VolumeId"]
    free = ec2.allocate_address(Domain="vpc")["AllocationId"]
    watcher, done = run_watcher(tmp_path, aws_env, routes, model=scripted_natural(), scan_every=timedelta(hours=1))
    (scan,) = done
    found = {(o.resource_id, o.status) for o in scan.outcomes}
    # the instance stops alone; a release is irreversible: a person approves it in every phase; a volume made a
    # moment ago has not been unused for the policy's days: its delete is refused
    assert found == {(idle, "executed"), (orphan, "rejected"), (free, "awaiting_review")}, scan.source.reason
    reasons = {o.resource_id: o.reason for o in scan.outcomes}
    assert "volume_unused_too_briefly" in reasons[orphan]
    assert "irreversible_action" in reasons[free]
    assert "3 alert(s)" in scan.source.reason
    assert watcher.stats.scans == 1


class ListQueue:
    """An in-memory queue: what was received, deleted and extended, for the watcher's own bookkeeping."""

    def __init__(self, bodies: list[str]) -> None:
        self.waiting = [Message(f"m{i}", f"r{i}", body, 1) for i, body in enumerate(bodies)]
        self.deleted: list[str] = []
        self.extended: list[str] = []

    def receive(self, *, max_messages: int, wait_s: int, visibility_s: int) -> list[Message]:
        taken, self.waiting = self.waiting[:max_messages], self.waiting[max_messages:]
        return taken

    def delete(self, message: Message) -> None:
        self.deleted.append(message.message_id)

    def extend(self, message: Message, visibility_s: int) -> None:
        self.extended.append(message.message_id)


def test_a_slow_message_keeps_its_visibility_and_is_deleted_once_durable(
    make_harness: Callable[..., Harness], ec2: Any
) -> None:
    iid = launch(ec2, "t3.small", {"env": "dev"})
    h = make_harness([decision("{{instance_id}}", confidence=0.95)], phase="autonomous")
    h.model.latency_s = 2.5  # longer than half the visibility timeout below
    body = json.dumps({"alert_id": "slow", "instance_id": iid, "region": REGION})
    queue = ListQueue([body])
    runner = SourceRunner(h.guard, None, h.guard.deps.prices, default_region=REGION)
    watcher = Watcher(runner, queue, WatchOptions(once=True, visibility_s=2, wait_s=1))
    watcher.run(threading.Event())
    assert queue.deleted == ["m0"]
    assert "m0" in queue.extended  # the heartbeat kept it hidden while the model thought
    assert state_of(ec2, iid) == "stopped"
