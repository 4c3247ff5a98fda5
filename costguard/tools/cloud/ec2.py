"""EC2 and CloudWatch through boto3: the only module that talks to the cloud.

Reads return typed facts; effects take an idempotency key that is written as a tag on what they create, so
a re-run after a crash can find what an earlier attempt already did. botocore's own retries are off (a
retried CreateSnapshot whose first answer was lost would make a second snapshot): reads are retried here,
effects only as whole ledgered steps.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

import boto3
import botocore.config

from costguard.errors import CloudError, CloudUnavailable, ResourceNotFound
from costguard.state import Facts, ResourceType
from costguard.tools.cloud.base import IDEMPOTENCY_TAG, ORIGINAL_TYPE_TAG, EffectResult, ResourceKind
from costguard.tools.cloud.errors import dry_run_call, mapped_errors, read_retry

if TYPE_CHECKING:
    from mypy_boto3_cloudwatch import CloudWatchClient
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_ec2.type_defs import TagSpecificationTypeDef, TagTypeDef


class Ec2Cloud:
    """boto3 EC2 + CloudWatch. The session is injected; clients are made per region, lazily."""

    def __init__(
        self,
        session: boto3.Session | None = None,
        *,
        default_region: str | None = None,
        endpoint_url: str | None = None,
        poll_interval_s: float = 0.5,
        wait_timeout_s: float = 600.0,
        cpu_window_hours: int = 24,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self._session = session or boto3.Session()
        self._default_region = default_region or self._session.region_name or "us-east-1"
        self._endpoint_url = endpoint_url
        self._poll = poll_interval_s
        self._wait_timeout = wait_timeout_s
        self._cpu_window = timedelta(hours=cpu_window_hours)
        self._clock = clock or (lambda: datetime.now(UTC))
        self._config = botocore.config.Config(
            # no retries inside botocore: a retried CreateSnapshot whose first answer was lost would
            # make a second snapshot; costguard retries whole steps, idempotently, and counts them
            retries={"total_max_attempts": 1, "mode": "standard"},
            connect_timeout=5,
            read_timeout=30,
        )
        self._clients: dict[tuple[str, str], Any] = {}

    def region(self, region: str | None) -> str:
        return region or self._default_region

    def ec2(self, region: str | None = None) -> EC2Client:
        return self._client("ec2", self.region(region))  # type: ignore[no-any-return]

    def rds(self, region: str | None = None) -> Any:
        """The RDS client (no type stubs are installed for it)."""
        return self._client("rds", self.region(region))

    @property
    def clock(self) -> Callable[[], datetime]:
        return self._clock

    def wait(self, what: str, done: Callable[[], bool]) -> None:
        """Poll until done() (the cloud's poll interval and wait timeout); CloudUnavailable when it never is."""
        deadline = time.monotonic() + self._wait_timeout
        while not done():
            if time.monotonic() > deadline:
                raise CloudUnavailable(f"timed out waiting for {what}")
            time.sleep(self._poll)

    def cloudwatch(self, region: str | None = None) -> CloudWatchClient:
        return self._client("cloudwatch", self.region(region))  # type: ignore[no-any-return]

    def _client(self, service: str, region: str) -> Any:
        key = (service, region)
        if key not in self._clients:
            kwargs: dict[str, Any] = {"region_name": region, "config": self._config}
            if self._endpoint_url:
                kwargs["endpoint_url"] = self._endpoint_url
            self._clients[key] = self._session.client(service, **kwargs)  # type: ignore[call-overload]
        return self._clients[key]

    def kind(self, resource_type: ResourceType) -> ResourceKind:
        """The module for a resource kind, sharing this cloud's session and clients."""
        from costguard.tools.cloud.kinds import kind_for

        return kind_for(self, resource_type)

    # --- reads -----------------------------------------------------------------------------

    @read_retry
    def _instance(self, instance_id: str, region: str) -> dict[str, Any] | None:
        try:
            with mapped_errors(f"describe {instance_id}"):
                reply = self.ec2(region).describe_instances(InstanceIds=[instance_id])
        except ResourceNotFound:
            return None
        for reservation in reply.get("Reservations", []):
            for instance in reservation.get("Instances", []):
                return dict(instance)
        return None

    def describe(self, instance_id: str, region: str) -> Facts:
        region = self.region(region)
        instance = self._instance(instance_id, region)
        if instance is None:
            return Facts(resource_id=instance_id, region=region, exists=False)
        gaps: list[str] = []
        tags: dict[str, str] | None = {t["Key"]: t.get("Value", "") for t in instance.get("Tags", [])}
        disable_api_stop: bool | None
        try:
            with mapped_errors(f"describe_instance_attribute {instance_id}"):
                attr = self.ec2(region).describe_instance_attribute(InstanceId=instance_id, Attribute="disableApiStop")
            disable_api_stop = bool(attr.get("DisableApiStop", {}).get("Value", False))
        except CloudError:  # not permission (critical), throttling or 5xx (retried)
            disable_api_stop = None  # unknown: the rails treat it as protected
            gaps.append("disable_api_stop")
        cpu = self._cpu_average(instance_id, region, self._cpu_window)
        if cpu is None:
            gaps.append("cpu_utilization")
        volumes = tuple(
            m["Ebs"]["VolumeId"]
            for m in instance.get("BlockDeviceMappings", [])
            if "Ebs" in m and "VolumeId" in m["Ebs"]
        )
        return Facts(
            resource_id=instance_id,
            region=region,
            exists=True,
            instance_type=instance.get("InstanceType"),
            state=instance.get("State", {}).get("Name"),
            tags=tags,
            root_device_type=instance.get("RootDeviceType"),
            disable_api_stop=disable_api_stop,
            architecture=instance.get("Architecture"),
            cpu_avg_pct=cpu,
            volume_ids=volumes,
            launch_time=instance.get("LaunchTime"),
            gaps=tuple(gaps),
        )

    def metric(
        self,
        namespace: str,
        name: str,
        instance_id: str,
        region: str,
        window: timedelta,
        stat: str,
        dimension: str = "InstanceId",
    ) -> float | None:
        """One figure over the window (the peak for Maximum, else the mean of the points); None without data."""
        points = self.metric_points(namespace, name, dimension, instance_id, region, window, stat)
        if points is None or not points:
            return None
        values = [v for _, v in points]
        return round(max(values) if stat == "Maximum" else sum(values) / len(values), 3)

    @read_retry
    def metric_points(
        self, namespace: str, name: str, dimension: str, value: str, region: str, window: timedelta, stat: str
    ) -> list[tuple[datetime, float]] | None:
        """CloudWatch data points over the window, oldest first; None when they could not be read."""
        end = self._clock()
        period = 3600 if window > timedelta(hours=6) else 300
        try:
            with mapped_errors(f"get_metric_statistics {name}"):
                reply = self.cloudwatch(region).get_metric_statistics(
                    Namespace=namespace,
                    MetricName=name,
                    Dimensions=[{"Name": dimension, "Value": value}],
                    StartTime=end - window,
                    EndTime=end,
                    Period=period,
                    Statistics=[stat],  # type: ignore[list-item]
                )
        except CloudError:
            return None  # a missing datum is minor: the rails treat it as unknown (a permission failure is not)
        points = [
            (p["Timestamp"], float(p[stat]))  # type: ignore[literal-required]
            for p in reply.get("Datapoints", [])
            if stat in p and "Timestamp" in p
        ]
        return sorted(points)

    def _cpu_average(self, instance_id: str, region: str, window: timedelta) -> float | None:
        return self.metric("AWS/EC2", "CPUUtilization", instance_id, region, window, "Average")

    def investigate(self, instance_id: str, region: str) -> list[str]:
        """A read-only deeper look, as short findings the model can read."""
        region = self.region(region)
        instance = self._instance(instance_id, region)
        if instance is None:
            return [f"{instance_id} does not exist in {region}"]
        findings: list[str] = []
        window = timedelta(days=14)
        for label, name, stat in (
            ("CPU average over 14 days (%)", "CPUUtilization", "Average"),
            ("CPU peak over 14 days (%)", "CPUUtilization", "Maximum"),
            ("NetworkIn average over 14 days (bytes)", "NetworkIn", "Average"),
            ("NetworkOut average over 14 days (bytes)", "NetworkOut", "Average"),
            ("DiskReadOps average over 14 days", "DiskReadOps", "Average"),
            ("DiskWriteOps average over 14 days", "DiskWriteOps", "Average"),
        ):
            value = self.metric("AWS/EC2", name, instance_id, region, window, stat)
            findings.append(f"{label}: {'no data' if value is None else value}")
        launched = instance.get("LaunchTime")
        if isinstance(launched, datetime):
            days = (self._clock() - launched).total_seconds() / 86400
            findings.append(f"launched {launched.isoformat()} ({days:.1f} days ago)")
        volumes = [m["Ebs"]["VolumeId"] for m in instance.get("BlockDeviceMappings", []) if "Ebs" in m]
        findings.append(f"attached EBS volumes: {', '.join(volumes) or 'none'}")
        reason = instance.get("StateTransitionReason") or "none recorded"
        findings.append(f"last state change: {reason}")
        return findings

    # --- effects ---------------------------------------------------------------------------

    @read_retry
    def _snapshots_by_volume(self, key: str, region: str) -> dict[str, str]:
        with mapped_errors("describe_snapshots"):
            reply = self.ec2(region).describe_snapshots(
                OwnerIds=["self"], Filters=[{"Name": f"tag:{IDEMPOTENCY_TAG}", "Values": [key]}]
            )
        return {s["VolumeId"]: s["SnapshotId"] for s in reply.get("Snapshots", [])}

    def snapshot(self, facts: Facts, key: str, *, dry_run: bool) -> tuple[EffectResult, list[str]]:
        """One snapshot per attached EBS volume, tagged with the idempotency key.

        Re-runnable: volumes that already have a snapshot carrying the key get no second one.
        """
        ec2 = self.ec2(facts.region)
        if dry_run:
            if not facts.volume_ids:
                return "dry_run_ok", []
            volume = facts.volume_ids[0]
            return (
                dry_run_call(
                    lambda: ec2.create_snapshot(VolumeId=volume, DryRun=True),
                    f"create_snapshot {volume}",
                ),
                [],
            )
        tags: list[TagTypeDef] = [
            {"Key": IDEMPOTENCY_TAG, "Value": key},
            {"Key": "costguard:instance-id", "Value": facts.resource_id},
            {"Key": ORIGINAL_TYPE_TAG, "Value": facts.instance_type or "unknown"},
        ]
        spec: TagSpecificationTypeDef = {"ResourceType": "snapshot", "Tags": tags}
        existing = self._snapshots_by_volume(key, facts.region)
        for volume in facts.volume_ids:
            if volume in existing:
                continue
            with mapped_errors(f"create_snapshot {volume}"):
                reply = ec2.create_snapshot(
                    VolumeId=volume,
                    Description=f"costguard before change of {facts.resource_id}",
                    TagSpecifications=[spec],
                )
            existing[volume] = reply["SnapshotId"]
        return "done", sorted(existing.values())

    def _state(self, instance_id: str, region: str) -> str | None:
        instance = self._instance(instance_id, region)
        return None if instance is None else instance.get("State", {}).get("Name")

    def _wait_for(self, instance_id: str, region: str, wanted: str) -> None:
        deadline = time.monotonic() + self._wait_timeout
        while True:
            state = self._state(instance_id, region)
            if state == wanted:
                return
            if time.monotonic() > deadline:
                raise CloudUnavailable(f"{instance_id} did not reach {wanted!r} (last seen {state!r})")
            time.sleep(self._poll)

    def stop(self, instance_id: str, region: str, *, dry_run: bool) -> EffectResult:
        return self._switch("stop", instance_id, region, dry_run=dry_run)

    def start(self, instance_id: str, region: str, *, dry_run: bool) -> EffectResult:
        return self._switch("start", instance_id, region, dry_run=dry_run)

    def _switch(self, verb: Literal["stop", "start"], instance_id: str, region: str, *, dry_run: bool) -> EffectResult:
        """Stop or start, then wait for the state it leads to (DryRun: only ask whether it would be allowed)."""
        ec2 = self.ec2(region)
        call = ec2.stop_instances if verb == "stop" else ec2.start_instances
        if dry_run:
            return dry_run_call(lambda: call(InstanceIds=[instance_id], DryRun=True), f"{verb} {instance_id}")
        with mapped_errors(f"{verb} {instance_id}"):
            call(InstanceIds=[instance_id])
        self._wait_for(instance_id, region, "stopped" if verb == "stop" else "running")
        return "done"

    def retag(self, resource_id: str, region: str, *, add: Mapping[str, str], remove: Sequence[str] = ()) -> None:
        """Tags on any EC2 resource (an instance, a volume, an address's allocation): set `add`, delete `remove`."""
        ec2 = self.ec2(region)
        if add:
            with mapped_errors(f"create_tags {resource_id}"):
                ec2.create_tags(Resources=[resource_id], Tags=[{"Key": k, "Value": v} for k, v in add.items()])
        if remove:
            with mapped_errors(f"delete_tags {resource_id}"):
                ec2.delete_tags(Resources=[resource_id], Tags=[{"Key": k} for k in remove])

    def resize(
        self, instance_id: str, region: str, target_type: str, *, start_after: bool, dry_run: bool
    ) -> EffectResult:
        """Stop (if running), change the type, start again if it was running. Re-runnable."""
        ec2 = self.ec2(region)
        if dry_run:
            return dry_run_call(
                lambda: ec2.modify_instance_attribute(
                    InstanceId=instance_id, InstanceType={"Value": target_type}, DryRun=True
                ),
                f"resize {instance_id}",
            )
        instance = self._instance(instance_id, region)
        if instance is None:
            raise CloudError(f"resize {instance_id}: the instance no longer exists")
        if instance.get("InstanceType") != target_type:
            if instance.get("State", {}).get("Name") != "stopped":
                self.stop(instance_id, region, dry_run=False)
            with mapped_errors(f"modify_instance_attribute {instance_id}"):
                ec2.modify_instance_attribute(InstanceId=instance_id, InstanceType={"Value": target_type})
        if start_after and self._state(instance_id, region) != "running":
            self.start(instance_id, region, dry_run=False)
        return "done"
