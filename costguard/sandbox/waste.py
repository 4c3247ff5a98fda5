"""The demo fleet's other kinds of waste, seeded into moto next to its instances, idempotently.

Each resource carries the tag `costguard-demo: <name>`; a second call finds it by that tag. The story each tells:
an unattached volume (snapshot then delete, a person approves), a gp2 volume (to gp3, reversible), a free Elastic IP
(release, a person approves) and one associated with a running instance (never released), an idle development
database (snapshot then stop) and a production one (never stopped).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3

from costguard.sandbox.fleet import DEMO_TAG, FleetInstance

ZONE_SUFFIX = "a"


@dataclass(frozen=True)
class FleetResource:
    """One seeded demo resource of a kind other than an instance."""

    name: str
    resource_id: str
    resource_type: str
    story: str
    expected: str
    tags: Mapping[str, str] = field(default_factory=dict, compare=False)


def _tags(name: str, tags: Mapping[str, str]) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in {"Name": name, **tags, DEMO_TAG: name}.items()]


def _found(items: Sequence[Mapping[str, Any]], tag_key: str = "Tags") -> dict[str, Mapping[str, Any]]:
    named: dict[str, Mapping[str, Any]] = {}
    for item in items:
        for tag in item.get(tag_key, []):
            if tag.get("Key") == DEMO_TAG:
                named.setdefault(str(tag.get("Value")), item)
    return named


def seed_waste(
    session: boto3.Session,
    *,
    endpoint_url: str | None,
    fleet: Sequence[FleetInstance],
    region: str = "us-east-1",
    now: datetime | None = None,
) -> list[FleetResource]:
    """Create the volumes, addresses and databases of the demo (or find them), with their CloudWatch data."""
    now = now or datetime.now(UTC)
    # untyped clients: these are the emulator's, seeded with plain dicts
    ec2: Any = session.client("ec2", endpoint_url=endpoint_url, region_name=region)
    rds: Any = session.client("rds", endpoint_url=endpoint_url, region_name=region)
    cloudwatch: Any = session.client("cloudwatch", endpoint_url=endpoint_url, region_name=region)
    busy = next((i.instance_id for i in fleet if i.name == "busy-web"), None)
    zone = f"{region}{ZONE_SUFFIX}"
    made: list[FleetResource] = []

    volumes = _found(ec2.describe_volumes(Filters=[{"Name": "tag-key", "Values": [DEMO_TAG]}])["Volumes"])
    for name, size, kind, tags, story, expected in (
        (
            "orphan-volume",
            200,
            "gp3",
            {"env": "dev"},
            "A 200 GiB volume left behind by a deleted instance, attached to nothing: ~$16/month for nothing.",
            "delete after a snapshot, a person approves (irreversible)",
        ),
        (
            "web-data-gp2",
            500,
            "gp2",
            {"env": "prod", "role": "web"},
            "500 GiB of gp2 under the busy web server: gp3 at the same speed costs $5/month less.",
            "change to gp3 (reversible, under the threshold)",
        ),
    ):
        volume = volumes.get(name) or ec2.create_volume(
            AvailabilityZone=zone,
            Size=size,
            VolumeType=kind,
            TagSpecifications=[{"ResourceType": "volume", "Tags": _tags(name, tags)}],
        )
        vid = str(volume["VolumeId"])
        if name == "web-data-gp2" and busy and not volume.get("Attachments"):
            ec2.attach_volume(VolumeId=vid, InstanceId=busy, Device="/dev/sdf")
        made.append(FleetResource(name, vid, "volume", story, expected, dict(tags)))

    addresses = _found(ec2.describe_addresses()["Addresses"])
    for name, associate, story, expected in (
        (
            "idle-eip",
            False,
            "An Elastic IP held but associated with nothing: $3.65/month.",
            "release, a person approves",
        ),
        ("web-eip", True, "The busy web server's public address.", "refused: address_associated"),
    ):
        address = addresses.get(name)
        if address is None:
            address = ec2.allocate_address(Domain="vpc")
            ec2.create_tags(
                Resources=[address["AllocationId"]], Tags=_tags(name, {"env": "prod" if associate else "dev"})
            )
        alloc = str(address["AllocationId"])
        if associate and busy and not address.get("AssociationId"):
            ec2.associate_address(AllocationId=alloc, InstanceId=busy)
        made.append(FleetResource(name, alloc, "address", story, expected))

    known = {d["DBInstanceIdentifier"] for d in rds.describe_db_instances()["DBInstances"]}
    for name, engine, db_class, tags, cpu, connections, story, expected in (
        (
            "dev-reports-db",
            "postgres",
            "db.t3.medium",
            {"env": "dev"},
            1.5,
            0.0,
            "A development PostgreSQL left running overnight: no connections, ~1% CPU, $53/month.",
            "stop after a snapshot (reversible; RDS restarts it after 7 days)",
        ),
        (
            "orders-db",
            "mysql",
            "db.m5.large",
            {"Environment": "production"},
            2.0,
            0.0,
            "The production orders database, quiet tonight: a production database is never stopped.",
            "refused: production_database",
        ),
    ):
        if name not in known:
            rds.create_db_instance(
                DBInstanceIdentifier=name,
                DBInstanceClass=db_class,
                Engine=engine,
                MasterUsername="demo",
                MasterUserPassword="demo-password-1",
                AllocatedStorage=20,
                MultiAZ=False,
                DeletionProtection=False,
                Tags=_tags(name, tags),
            )
        _db_metrics(cloudwatch, name, cpu, connections, now)
        made.append(FleetResource(name, name, "db_instance", story, expected, dict(tags)))
    return made


def _db_metrics(cloudwatch: Any, name: str, cpu: float, connections: float, now: datetime) -> None:
    """A day of hourly CPU and connection counts, put only once (the last 24 hours hold none yet)."""
    dims = [{"Name": "DBInstanceIdentifier", "Value": name}]
    seen = cloudwatch.get_metric_statistics(
        Namespace="AWS/RDS",
        MetricName="CPUUtilization",
        Dimensions=dims,
        StartTime=now - timedelta(hours=24),
        EndTime=now,
        Period=3600,
        Statistics=["Average"],
    )["Datapoints"]
    if seen:
        return
    data = [
        {"MetricName": metric, "Dimensions": dims, "Timestamp": now - timedelta(hours=h), "Value": value}
        for h in range(1, 24)
        for metric, value in (("CPUUtilization", cpu), ("DatabaseConnections", connections))
    ]
    for start in range(0, len(data), 20):
        cloudwatch.put_metric_data(Namespace="AWS/RDS", MetricData=data[start : start + 20])
