"""The RDS DB instance kind: an idle, unprotected database is snapshotted, then stopped; undo starts it again.

RDS has no DryRun parameter: costguard's dry run of a database is its own (it describes, says "simulated", and
never calls a mutating API). RDS starts a stopped instance again by itself after 7 days: the outcome says so, and
a later scan finds it idle again. Idle = no connections and low CPU over the window (CloudWatch, AWS/RDS).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from costguard.errors import CloudError, InternalError, ResourceNotFound, UndoRefused
from costguard.state import Facts, Plan, ResourceType
from costguard.tools.cloud.base import IDEMPOTENCY_TAG, Effect, EffectResult
from costguard.tools.cloud.errors import mapped_errors, read_retry

if TYPE_CHECKING:
    from costguard.tools.cloud.ec2 import Ec2Cloud

WINDOW = timedelta(hours=24)
RESTART_NOTE = "RDS starts a stopped instance again after 7 days; a later scan will stop it again if still idle"
_STOPPED = ("stopped", "stopping")


def snapshot_name(key: str) -> str:
    """A DB snapshot identifier from the idempotency key: the same key, the same name (a letter first, ≤ 63)."""
    return "costguard-" + hashlib.sha256(key.encode()).hexdigest()[:40]


class DbInstanceKind:
    resource_type: ResourceType = "db_instance"
    snapshot_first = frozenset({"shutdown"})

    def __init__(self, cloud: Ec2Cloud) -> None:
        self._cloud = cloud

    @read_retry
    def _db(self, identifier: str, region: str) -> dict[str, Any] | None:
        try:
            with mapped_errors(f"describe_db_instances {identifier}"):
                reply = self._cloud.rds(region).describe_db_instances(DBInstanceIdentifier=identifier)
        except ResourceNotFound:
            return None
        found = reply.get("DBInstances", [])
        return dict(found[0]) if found else None

    def describe(self, resource_id: str, region: str) -> Facts:
        region = self._cloud.region(region)
        db = self._db(resource_id, region)
        if db is None:
            return Facts(resource_id=resource_id, resource_type="db_instance", region=region, exists=False)
        cpu = self._cloud.metric(
            "AWS/RDS", "CPUUtilization", resource_id, region, WINDOW, "Average", "DBInstanceIdentifier"
        )
        conns = self._cloud.metric(
            "AWS/RDS", "DatabaseConnections", resource_id, region, WINDOW, "Maximum", "DBInstanceIdentifier"
        )
        gaps = [name for name, value in (("cpu_utilization", cpu), ("database_connections", conns)) if value is None]
        replicas = db.get("ReadReplicaDBInstanceIdentifiers") or []
        source = db.get("ReadReplicaSourceDBInstanceIdentifier")
        return Facts(
            resource_id=resource_id,
            resource_type="db_instance",
            region=region,
            exists=True,
            instance_type=db.get("DBInstanceClass"),
            state=db.get("DBInstanceStatus"),
            tags={t["Key"]: t.get("Value", "") for t in db.get("TagList", [])},
            engine=db.get("Engine"),
            multi_az=db.get("MultiAZ"),
            deletion_protection=db.get("DeletionProtection"),
            replication=bool(replicas or source),
            cpu_avg_pct=cpu,
            connections_max=conns,
            launch_time=db.get("InstanceCreateTime"),
            gaps=tuple(gaps),
        )

    def investigate(self, resource_id: str, region: str) -> list[str]:
        facts = self.describe(resource_id, region)
        if not facts.exists:
            return [f"{resource_id} does not exist in {facts.region}"]
        region = facts.region
        week = timedelta(days=7)
        cpu = self._cloud.metric(
            "AWS/RDS", "CPUUtilization", resource_id, region, week, "Maximum", "DBInstanceIdentifier"
        )
        conns = self._cloud.metric(
            "AWS/RDS", "DatabaseConnections", resource_id, region, week, "Maximum", "DBInstanceIdentifier"
        )
        return [
            f"{facts.engine} {facts.instance_type}, {facts.state}, Multi-AZ {facts.multi_az}, "
            f"deletion protection {facts.deletion_protection}, replication {facts.replication}",
            f"CPU peak over 7 days (%): {'no data' if cpu is None else cpu}",
            f"most connections over 7 days: {'no data' if conns is None else conns}",
        ]

    def snapshot(self, facts: Facts, key: str, *, dry_run: bool) -> tuple[EffectResult, list[str]]:
        """One DB snapshot named after the key (a re-run finds it), waited for: RDS stops only an `available` DB."""
        if dry_run:
            return "dry_run_ok", []  # simulated: RDS has no DryRun
        rds, name = self._cloud.rds(facts.region), snapshot_name(key)
        if not self._snapshot_exists(name, facts.region):
            with mapped_errors(f"create_db_snapshot {facts.resource_id}"):
                rds.create_db_snapshot(
                    DBSnapshotIdentifier=name,
                    DBInstanceIdentifier=facts.resource_id,
                    Tags=[{"Key": IDEMPOTENCY_TAG, "Value": key}],
                )
        self._cloud.wait(f"DB snapshot {name}", lambda: self._snapshot_status(name, facts.region) == "available")
        return "done", [name]

    def _snapshot_status(self, name: str, region: str) -> str | None:
        try:
            with mapped_errors(f"describe_db_snapshots {name}"):
                found = self._cloud.rds(region).describe_db_snapshots(DBSnapshotIdentifier=name)["DBSnapshots"]
        except CloudError as exc:
            if "DBSnapshotNotFound" in str(exc):
                return None
            raise
        return str(found[0].get("Status")) if found else None

    def _snapshot_exists(self, name: str, region: str) -> bool:
        return self._snapshot_status(name, region) is not None

    def act(self, plan: Plan, fresh: Facts, key: str, *, dry_run: bool, start_after: bool) -> Effect:
        if plan.action != "shutdown":
            raise InternalError(f"a DB instance plan cannot {plan.action}")
        ident = plan.resource_id
        if dry_run:
            return Effect(f"simulated: would stop {ident} (RDS has no DryRun; no mutating call was made)")
        if fresh.state in _STOPPED:
            return Effect(
                f"reconciled: {ident} already {fresh.state}", {"previous_state": "available", "note": RESTART_NOTE}
            )
        with mapped_errors(f"stop_db_instance {ident}"):
            self._cloud.rds(plan.region).stop_db_instance(DBInstanceIdentifier=ident)
        return Effect(f"stopped {ident}", {"previous_state": "available", "note": RESTART_NOTE})

    def undo(self, plan: Plan, fresh: Facts, acted: Mapping[str, Any], key: str, *, was_running: bool) -> str:
        ident = plan.resource_id
        if not fresh.exists:
            raise UndoRefused(f"{ident} no longer exists; its snapshot remains for a restore")
        if fresh.state in ("available", "starting"):
            return f"reconciled: {ident} already {fresh.state}"
        if fresh.state != "stopped":
            raise UndoRefused(f"{ident} is {fresh.state!r}, not stopped: left alone")
        with mapped_errors(f"start_db_instance {ident}"):
            self._cloud.rds(plan.region).start_db_instance(DBInstanceIdentifier=ident)
        return f"started {ident}"

    def retag(self, resource_id: str, region: str, *, add: Mapping[str, str], remove: Sequence[str] = ()) -> None:
        """RDS tags by the instance's ARN (read from its description: the partition and account are AWS's)."""
        region = self._cloud.region(region)
        db = self._db(resource_id, region)
        if db is None:
            raise ResourceNotFound(f"retag {resource_id}: no such DB instance in {region}")
        rds, arn = self._cloud.rds(region), db["DBInstanceArn"]
        if add:
            with mapped_errors(f"add_tags_to_resource {resource_id}"):
                rds.add_tags_to_resource(ResourceName=arn, Tags=[{"Key": k, "Value": v} for k, v in add.items()])
        if remove:
            with mapped_errors(f"remove_tags_from_resource {resource_id}"):
                rds.remove_tags_from_resource(ResourceName=arn, TagKeys=list(remove))
