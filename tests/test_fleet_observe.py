"""The demo fleet (seeded into moto idempotently) and the observe phase's read-only scan."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest

from costguard.app.batch import parse_alert_line
from costguard.app.scan import IDLE_KIND, UNKNOWN_KIND, scan, write_jsonl
from costguard.policy import Policy, is_critical, is_database, is_production
from costguard.sandbox.fleet import DEMO_TAG, FLEET, FleetInstance, all_tags, by_name, seed_fleet
from costguard.state import Alert
from costguard.tools.cloud import Ec2Cloud
from costguard.tools.pricing import load_price_list
from tests.conftest import REGION

IDLE = {
    "idle-dev-small",
    "idle-dev-large",
    "oversized-api",
    "prod-db",
    "nightly-etl",
    "batch-worker",
    "ephemeral-cache",
}
UNKNOWN = {"legacy-ledger"}
MONTHLY = {  # the shipped price list's hourly price x 730
    "idle-dev-small": 15.18,
    "idle-dev-large": 280.32,
    "oversized-api": 560.64,
    "prod-db": 367.92,
    "nightly-etl": 248.2,
    "batch-worker": 70.08,
    "legacy-ledger": 30.37,
    "ephemeral-cache": 113.88,
}
READ_ONLY_PREFIXES = ("Describe", "Get", "List")


@pytest.fixture
def fresh_moto(aws_env: str) -> str:
    """The session's moto server, emptied: tests that count instances start from nothing."""
    httpx.post(f"{aws_env}/moto-api/reset", timeout=10).raise_for_status()
    return aws_env


@pytest.fixture
def now() -> datetime:
    return datetime.now(UTC)


@pytest.fixture
def fleet(fresh_moto: str, session: boto3.Session, now: datetime) -> list[FleetInstance]:
    return seed_fleet(session, endpoint_url=fresh_moto, region=REGION, now=now)


def _instances(ec2: Any) -> list[dict[str, Any]]:
    pages = ec2.get_paginator("describe_instances").paginate()
    return [i for page in pages for r in page["Reservations"] for i in r["Instances"]]


def _datapoints(session: boto3.Session, url: str, instance_id: str, metric: str, now: datetime) -> int:
    cloudwatch = session.client("cloudwatch", endpoint_url=url, region_name=REGION)
    reply = cloudwatch.get_metric_statistics(
        Namespace="AWS/EC2",
        MetricName=metric,
        Dimensions=[{"Name": "InstanceId", "Value": instance_id}],
        StartTime=now.replace(year=now.year - 1),
        EndTime=now.replace(year=now.year + 1),
        Period=86400 * 366,
        Statistics=["SampleCount"],
    )
    return int(sum(p.get("SampleCount", 0) for p in reply["Datapoints"]))


# --- the fleet -----------------------------------------------------------------------------


def test_seeding_twice_is_idempotent(
    fleet: list[FleetInstance], fresh_moto: str, session: boto3.Session, ec2: Any, now: datetime
) -> None:
    again = seed_fleet(session, endpoint_url=fresh_moto, region=REGION, now=now)

    assert [(i.name, i.instance_id) for i in again] == [(i.name, i.instance_id) for i in fleet]
    assert len(_instances(ec2)) == len(FLEET) == 9
    idle_small = by_name(fleet)["idle-dev-small"].instance_id
    assert _datapoints(session, fresh_moto, idle_small, "CPUUtilization", now) == 24
    assert _datapoints(session, fresh_moto, idle_small, "NetworkIn", now) == 6


def test_every_instance_has_its_promised_type_and_tags(fleet: list[FleetInstance], ec2: Any) -> None:
    described = {i["InstanceId"]: i for i in _instances(ec2)}
    specs = {spec.name: spec for spec in FLEET}

    assert [i.name for i in fleet] == [spec.name for spec in FLEET]
    for instance in fleet:
        actual = described[instance.instance_id]
        tags = {t["Key"]: t["Value"] for t in actual["Tags"]}
        assert actual["InstanceType"] == instance.instance_type == specs[instance.name].instance_type
        assert actual["State"]["Name"] == "running"
        assert tags == all_tags(specs[instance.name]) == dict(instance.tags)
        assert tags[DEMO_TAG] == tags["Name"] == instance.name
        assert instance.story
        assert instance.expected


def test_the_fleet_matches_the_story(fleet: list[FleetInstance], ec2: Any) -> None:
    fleet_by_name = by_name(fleet)
    types = {name: i.instance_type for name, i in fleet_by_name.items()}
    assert types == {
        "idle-dev-small": "t3.small",
        "idle-dev-large": "m5.2xlarge",
        "oversized-api": "m5.4xlarge",
        "prod-db": "r5.2xlarge",
        "nightly-etl": "c5.2xlarge",
        "batch-worker": "m5.large",
        "legacy-ledger": "t3.medium",
        "ephemeral-cache": "i3.large",
        "busy-web": "m5.large",
    }
    tags = {name: dict(i.tags) for name, i in fleet_by_name.items()}
    assert tags["idle-dev-small"]["env"] == "dev"
    assert tags["oversized-api"]["role"] == "api"
    assert tags["prod-db"]["Environment"] == "production"
    assert tags["prod-db"]["Role"] == "postgres"
    assert tags["nightly-etl"]["Criticality"] == "CRITICAL"
    assert tags["batch-worker"]["tier"] == " critical "
    assert tags["legacy-ledger"]["critical"] == "true"
    assert (tags["busy-web"]["env"], tags["busy-web"]["role"]) == ("prod", "web")

    cache = fleet_by_name["ephemeral-cache"].instance_id
    attr = ec2.describe_instance_attribute(InstanceId=cache, Attribute="disableApiStop")
    assert attr["DisableApiStop"]["Value"] is True
    assert "DisableApiStop=True" in fleet_by_name["ephemeral-cache"].story


@pytest.mark.parametrize("name", ["nightly-etl", "batch-worker", "legacy-ledger"])
def test_each_critical_spelling_alone_is_critical(name: str) -> None:
    """The spelled tag by itself protects the instance (not only the names containing "critical")."""
    spec = next(s for s in FLEET if s.name == name)
    assert is_critical(spec.tags, Policy())


def test_only_prod_db_is_a_production_database() -> None:
    policy = Policy()
    protected = {s.name for s in FLEET if is_production(all_tags(s), policy) and is_database(all_tags(s), policy)}
    assert protected == {"prod-db"}


# --- observe -------------------------------------------------------------------------------


def _scan(cloud: Ec2Cloud, now: datetime) -> list[Alert]:
    return scan(cloud, load_price_list(), region=REGION, now=now)


def test_scan_alerts_on_idle_and_unknown_instances_only(
    fleet: list[FleetInstance], cloud: Ec2Cloud, now: datetime
) -> None:
    names = {i.instance_id: i.name for i in fleet}
    alerts = _scan(cloud, now)
    by_instance = {names[a.resource_id]: a for a in alerts}

    assert len(alerts) == len(by_instance) == 8
    assert set(by_instance) == IDLE | UNKNOWN
    assert "busy-web" not in by_instance
    for name, alert in by_instance.items():
        assert alert.kind == (UNKNOWN_KIND if name in UNKNOWN else IDLE_KIND)
        assert alert.monthly_cost_usd == MONTHLY[name]
        assert alert.region == REGION
        assert alert.observed_at == now
        assert alert.resource_id in alert.summary
        assert f"Name={name!r}" in alert.summary
        assert "\n" not in alert.summary
    assert by_instance["idle-dev-small"].alert_id == f"idle-{by_instance['idle-dev-small'].instance_id}-{now:%Y%m%d}"
    assert "t3.small" in by_instance["idle-dev-small"].summary
    assert "average CPU 1.0%" in by_instance["idle-dev-small"].summary
    assert "average CPU 8.0%" in by_instance["oversized-api"].summary
    assert "unknown" in by_instance["legacy-ledger"].summary


def test_scan_is_deterministic_per_day(fleet: list[FleetInstance], cloud: Ec2Cloud, now: datetime) -> None:
    first = _scan(cloud, now)
    second = _scan(cloud, now)
    assert [a.alert_id for a in first] == [a.alert_id for a in second]
    assert len({a.alert_id for a in first}) == len(first)


def test_scan_threshold_is_a_parameter(fleet: list[FleetInstance], cloud: Ec2Cloud, now: datetime) -> None:
    names = {i.instance_id: i.name for i in fleet}
    alerts = scan(cloud, load_price_list(), region=REGION, now=now, cpu_idle_threshold_pct=2.5)
    assert {names[a.resource_id] for a in alerts} == {
        "idle-dev-small",
        "idle-dev-large",
        "nightly-etl",
        "batch-worker",
        "legacy-ledger",
        "ephemeral-cache",
    }


def test_scan_skips_stopped_instances(fleet: list[FleetInstance], cloud: Ec2Cloud, ec2: Any, now: datetime) -> None:
    stopped = by_name(fleet)["idle-dev-small"].instance_id
    ec2.stop_instances(InstanceIds=[stopped])
    assert stopped not in {a.instance_id for a in _scan(cloud, now)}


@pytest.fixture
def recorded_calls(cloud: Ec2Cloud) -> Iterator[list[str]]:
    """Every API operation the cloud's EC2 and CloudWatch clients send."""
    calls: list[str] = []

    def record(model: Any, **_: Any) -> None:
        calls.append(str(model.name))

    clients = [cloud.ec2(REGION), cloud.cloudwatch(REGION)]
    for client in clients:
        client.meta.events.register("before-call", record)
    yield calls
    for client in clients:
        client.meta.events.unregister("before-call", record)


def test_scan_changes_nothing(
    fleet: list[FleetInstance], cloud: Ec2Cloud, ec2: Any, now: datetime, recorded_calls: list[str]
) -> None:
    snapshots_before = ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]
    before = {i["InstanceId"]: (i["State"]["Name"], i["InstanceType"]) for i in _instances(ec2)}

    assert _scan(cloud, now)

    after = {i["InstanceId"]: (i["State"]["Name"], i["InstanceType"]) for i in _instances(ec2)}
    assert after == before
    assert all(state == "running" for state, _ in after.values())
    assert ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"] == snapshots_before
    assert recorded_calls
    assert all(name.startswith(READ_ONLY_PREFIXES) for name in recorded_calls), recorded_calls


def test_write_jsonl_round_trips_through_the_parser(
    fleet: list[FleetInstance], cloud: Ec2Cloud, now: datetime, tmp_path: Path
) -> None:
    alerts = _scan(cloud, now)
    path = tmp_path / "alerts.jsonl"

    assert write_jsonl(alerts, path) == len(alerts)

    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == len(alerts)
    parsed = [parse_alert_line(line, number) for number, line in enumerate(lines, start=1)]
    assert parsed == alerts
    assert not list(tmp_path.glob(".*.tmp"))


def test_write_jsonl_omits_unknown_fields(tmp_path: Path) -> None:
    alert = Alert(alert_id="a", instance_id="i-0123456789abcdef0", kind=UNKNOWN_KIND)
    path = tmp_path / "one.jsonl"
    write_jsonl([alert], path)
    line = path.read_text(encoding="utf-8")
    assert "monthly_cost_usd" not in line
    assert parse_alert_line(line, 1) == alert
