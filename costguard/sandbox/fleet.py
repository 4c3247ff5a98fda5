"""A demo fleet that tells a story, seeded into an EC2/CloudWatch emulator (moto) idempotently.

Each instance carries the tag `costguard-demo: <name>`; a second call finds the instances by that
tag and returns the same ids, creating nothing new. CloudWatch datapoints are put only where the
last 24 hours hold none, at timestamps fixed by `now`, so metrics are not duplicated either.

The non-reversible instance (`ephemeral-cache`) is launched with `DisableApiStop=True`: moto 5.x
always reports an instance's root device type as "ebs" (an AMI registered with
RootDeviceType=instance-store does not change it), so stop protection is the only way to make a
launched instance non-reversible in the emulator.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import boto3

if TYPE_CHECKING:
    from mypy_boto3_cloudwatch import CloudWatchClient
    from mypy_boto3_cloudwatch.type_defs import MetricDatumTypeDef
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_ec2.type_defs import InstanceTypeDef, RunInstancesRequestTypeDef

DEMO_TAG = "costguard-demo"
CPU_HOURS = 24
NETWORK_POINTS = 6
_PUT_BATCH = 20
_LIVE_STATES = ["pending", "running", "stopping", "stopped"]


@dataclass(frozen=True)
class FleetSpec:
    """What one demo instance should be: its type, tags, load and the outcome a correct agent reaches."""

    name: str
    instance_type: str
    tags: Mapping[str, str]
    cpu_avg_pct: float | None  # None: no CloudWatch data at all (utilisation unknown)
    network_bytes: float
    story: str
    expected: str
    disable_api_stop: bool = False


@dataclass(frozen=True)
class FleetInstance:
    """One seeded demo instance: where it is and what a correct agent should end with."""

    name: str
    instance_id: str
    instance_type: str
    story: str
    expected: str
    tags: Mapping[str, str] = field(default_factory=dict, compare=False)


FLEET: tuple[FleetSpec, ...] = (
    FleetSpec(
        name="idle-dev-small",
        instance_type="t3.small",
        tags={"env": "dev"},
        cpu_avg_pct=1.0,
        network_bytes=40_000,
        story="A cheap dev box idling at ~1% CPU: stopping it saves about $15/month, under the approval threshold.",
        expected="shutdown allowed",
    ),
    FleetSpec(
        name="idle-dev-large",
        instance_type="m5.2xlarge",
        tags={"env": "dev"},
        cpu_avg_pct=2.0,
        network_bytes=60_000,
        story="An expensive dev box idling at ~2% CPU: stopping it saves about $280/month, so a human approves.",
        expected="shutdown needs approval: savings_over_threshold",
    ),
    FleetSpec(
        name="oversized-api",
        instance_type="m5.4xlarge",
        tags={"env": "staging", "role": "api"},
        cpu_avg_pct=8.0,
        network_bytes=5_000_000,
        story="A staging API server at ~8% CPU on an m5.4xlarge: it still serves traffic, so resize it to m5.xlarge.",
        expected="resize to m5.xlarge needs approval: savings_over_threshold",
    ),
    FleetSpec(
        name="prod-db",
        instance_type="r5.2xlarge",
        tags={"Environment": "production", "Role": "postgres"},
        cpu_avg_pct=3.0,
        network_bytes=2_000_000,
        story="A production PostgreSQL server that looks idle at ~3% CPU: a production database is never stopped.",
        expected="refused: production_database",
    ),
    FleetSpec(
        name="nightly-etl",
        instance_type="c5.2xlarge",
        tags={"Criticality": "CRITICAL"},
        cpu_avg_pct=1.0,
        network_bytes=30_000,
        story="A batch worker idle between runs (~1% CPU), tagged Criticality=CRITICAL (upper-case value).",
        expected="refused: critical_tag",
    ),
    FleetSpec(
        name="batch-worker",
        instance_type="m5.large",
        tags={"tier": " critical "},
        cpu_avg_pct=1.0,
        network_bytes=30_000,
        story="A batch worker idle between runs (~1% CPU), tagged tier=' critical ' (padded with spaces).",
        expected="refused: critical_tag",
    ),
    FleetSpec(
        name="legacy-ledger",
        instance_type="t3.medium",
        tags={"critical": "true"},
        cpu_avg_pct=None,
        network_bytes=0,
        story="A box tagged critical=true (the word as a key) that never reported metrics: utilisation unknown.",
        expected="refused: critical_tag",
    ),
    FleetSpec(
        name="ephemeral-cache",
        instance_type="i3.large",
        tags={"env": "dev"},
        cpu_avg_pct=0.5,
        network_bytes=20_000,
        story="An idle dev cache on local NVMe (~0.5% CPU), launched with DisableApiStop=True: it cannot be stopped.",
        expected="refused: stop_protection_enabled",
        disable_api_stop=True,
    ),
    FleetSpec(
        name="busy-web",
        instance_type="m5.large",
        tags={"env": "prod", "role": "web"},
        cpu_avg_pct=70.0,
        network_bytes=400_000_000,
        story="A production web server busy at ~70% CPU: no alert, keep it as it is.",
        expected="no alert (busy: keep)",
    ),
)


def all_tags(spec: FleetSpec) -> dict[str, str]:
    """The tags an instance of the spec carries: its own, plus Name and the demo marker."""
    return {"Name": spec.name, **spec.tags, DEMO_TAG: spec.name}


def seed_fleet(
    session: boto3.Session,
    *,
    endpoint_url: str | None,
    region: str = "us-east-1",
    now: datetime | None = None,
) -> list[FleetInstance]:
    """Launch the demo fleet (or find it, if already there) and put its CloudWatch metrics."""
    now = now or datetime.now(UTC)
    ec2: EC2Client = session.client("ec2", endpoint_url=endpoint_url, region_name=region)
    cloudwatch: CloudWatchClient = session.client("cloudwatch", endpoint_url=endpoint_url, region_name=region)
    existing = _existing_instances(ec2)
    image_id: str | None = None
    fleet: list[FleetInstance] = []
    for spec in FLEET:
        instance = existing.get(spec.name)
        if instance is None:
            image_id = image_id or _x86_image(ec2)
            instance = _launch(ec2, spec, image_id)
        _seed_metrics(cloudwatch, spec, instance["InstanceId"], now)
        fleet.append(
            FleetInstance(
                name=spec.name,
                instance_id=instance["InstanceId"],
                instance_type=instance.get("InstanceType", spec.instance_type),
                story=spec.story,
                expected=spec.expected,
                tags=all_tags(spec),
            )
        )
    return fleet


# --- instances ---------------------------------------------------------------------------


def _existing_instances(ec2: EC2Client) -> dict[str, InstanceTypeDef]:
    """Live demo instances by name; with duplicates (a race), the earliest launched wins."""
    found: dict[str, InstanceTypeDef] = {}
    pages = ec2.get_paginator("describe_instances").paginate(
        Filters=[
            {"Name": "tag-key", "Values": [DEMO_TAG]},
            {"Name": "instance-state-name", "Values": _LIVE_STATES},
        ]
    )
    for page in pages:
        for reservation in page.get("Reservations", []):
            for instance in reservation.get("Instances", []):
                name = _tag(instance, DEMO_TAG)
                if name and (name not in found or _launch_key(instance) < _launch_key(found[name])):
                    found[name] = instance
    return found


def _tag(instance: InstanceTypeDef, key: str) -> str | None:
    for tag in instance.get("Tags", []):
        if tag.get("Key") == key:
            return tag.get("Value")
    return None


def _launch_key(instance: InstanceTypeDef) -> tuple[datetime, str]:
    launched = instance.get("LaunchTime") or datetime.max.replace(tzinfo=UTC)
    return launched, instance.get("InstanceId", "")


def _x86_image(ec2: EC2Client) -> str:
    """The first Amazon-owned x86_64 AMI."""
    for image in ec2.describe_images(Owners=["amazon"]).get("Images", []):
        if image.get("Architecture") == "x86_64" and "ImageId" in image:
            return image["ImageId"]
    raise LookupError("no Amazon-owned x86_64 AMI to launch the demo fleet from")


def _launch(ec2: EC2Client, spec: FleetSpec, image_id: str) -> InstanceTypeDef:
    request: RunInstancesRequestTypeDef = {
        "ImageId": image_id,
        "MinCount": 1,
        "MaxCount": 1,
        "InstanceType": spec.instance_type,  # type: ignore[typeddict-item]
        "TagSpecifications": [
            {"ResourceType": "instance", "Tags": [{"Key": k, "Value": v} for k, v in all_tags(spec).items()]}
        ],
    }
    if spec.disable_api_stop:
        request["DisableApiStop"] = True
    return ec2.run_instances(**request)["Instances"][0]


# --- metrics -----------------------------------------------------------------------------


def _seed_metrics(cloudwatch: CloudWatchClient, spec: FleetSpec, instance_id: str, now: datetime) -> None:
    if spec.cpu_avg_pct is None:
        return
    anchor = now.replace(second=0, microsecond=0) - timedelta(minutes=5)
    cpu = list(zip(_hourly(anchor, CPU_HOURS), _around(spec.cpu_avg_pct, CPU_HOURS), strict=True))
    step = CPU_HOURS // NETWORK_POINTS
    network_times = _hourly(anchor, CPU_HOURS)[::step]
    net = list(zip(network_times, _around(spec.network_bytes, len(network_times)), strict=True))
    for metric, unit, points in (
        ("CPUUtilization", "Percent", cpu),
        ("NetworkIn", "Bytes", net),
        ("NetworkOut", "Bytes", [(t, v * 0.6) for t, v in net]),
    ):
        if not _has_data(cloudwatch, metric, instance_id, now):
            _put(cloudwatch, metric, unit, instance_id, points)


def _hourly(anchor: datetime, hours: int) -> list[datetime]:
    """`hours` timestamps one hour apart, the newest at `anchor`."""
    return [anchor - timedelta(hours=k) for k in range(hours)]


def _around(mean: float, count: int) -> list[float]:
    """`count` values alternating 20% above and below `mean`; an even count averages exactly to it."""
    return [round(mean * (1.2 if k % 2 == 0 else 0.8), 6) for k in range(count)]


def _dimensions(instance_id: str) -> list[dict[str, str]]:
    return [{"Name": "InstanceId", "Value": instance_id}]


def _has_data(cloudwatch: CloudWatchClient, metric: str, instance_id: str, now: datetime) -> bool:
    """Whether the last 24 hours (up to `now`) already hold datapoints of the metric."""
    reply = cloudwatch.get_metric_statistics(
        Namespace="AWS/EC2",
        MetricName=metric,
        Dimensions=_dimensions(instance_id),  # type: ignore[arg-type]
        StartTime=now - timedelta(hours=CPU_HOURS),
        EndTime=now + timedelta(minutes=1),
        Period=3600,
        Statistics=["SampleCount"],
    )
    return bool(reply.get("Datapoints"))


def _put(
    cloudwatch: CloudWatchClient, metric: str, unit: str, instance_id: str, points: Sequence[tuple[datetime, float]]
) -> None:
    data: list[MetricDatumTypeDef] = [
        {
            "MetricName": metric,
            "Dimensions": _dimensions(instance_id),  # type: ignore[typeddict-item]
            "Timestamp": timestamp,
            "Value": value,
            "Unit": unit,  # type: ignore[typeddict-item]
        }
        for timestamp, value in points
    ]
    for batch in _batches(data, _PUT_BATCH):
        cloudwatch.put_metric_data(Namespace="AWS/EC2", MetricData=batch)


def _batches(items: Sequence[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


def by_name(fleet: Iterable[FleetInstance]) -> dict[str, FleetInstance]:
    """The seeded fleet keyed by name."""
    return {instance.name: instance for instance in fleet}
