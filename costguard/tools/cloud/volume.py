"""The EBS volume kind: an unattached volume is snapshotted then deleted; a gp2 volume becomes gp3.

Delete is irreversible (undo makes a *new* volume from the snapshot, same zone, type and tags); gp2 -> gp3 is
reversible, but AWS allows one modification of a volume per 6 hours, so an undo soon after may be refused.
How long a volume has been unused is read from CloudWatch (the last read or write) and its creation time: a
lower bound, since AWS does not say when a volume was detached.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from costguard.errors import CloudError, InternalError, RailTrippedAtExecution, ResourceNotFound, UndoRefused
from costguard.state import Facts, Plan, ResourceType, gp3_matching_gp2
from costguard.tools.cloud.base import IDEMPOTENCY_TAG, Effect, EffectResult
from costguard.tools.cloud.errors import dry_run_call, mapped_errors, read_retry

if TYPE_CHECKING:
    from costguard.tools.cloud.ec2 import Ec2Cloud

ACTIVITY_WINDOW = timedelta(days=30)
RESTORED_FROM_TAG = "costguard:restored-from"
_ATTACHED = ("attaching", "attached", "busy")


class VolumeKind:
    resource_type: ResourceType = "volume"
    snapshot_first = frozenset({"delete"})

    def __init__(self, cloud: Ec2Cloud) -> None:
        self._cloud = cloud

    @read_retry
    def _volume(self, volume_id: str, region: str) -> dict[str, Any] | None:
        try:
            with mapped_errors(f"describe_volumes {volume_id}"):
                reply = self._cloud.ec2(region).describe_volumes(VolumeIds=[volume_id])
        except ResourceNotFound:
            return None
        found = reply.get("Volumes", [])
        return dict(found[0]) if found else None

    def _modifying(self, volume_id: str, region: str) -> bool | None:
        try:
            with mapped_errors(f"describe_volumes_modifications {volume_id}"):
                reply = self._cloud.ec2(region).describe_volumes_modifications(VolumeIds=[volume_id])
        except CloudError:
            return None
        states = {m.get("ModificationState") for m in reply.get("VolumesModifications", [])}
        return bool(states & {"modifying", "optimizing"})

    def _unused_days(self, volume_id: str, region: str, created: datetime | None, attached: bool) -> float | None:
        """Days since the last read or write (at most the activity window), or since creation if younger."""
        if attached:
            return 0.0
        now = self._cloud.clock()
        last: datetime | None = None
        for name in ("VolumeReadOps", "VolumeWriteOps"):
            points = self._cloud.metric_points("AWS/EBS", name, "VolumeId", volume_id, region, ACTIVITY_WINDOW, "Sum")
            if points is None:
                return None
            active = [t for t, v in points if v > 0]
            if active and (last is None or active[-1] > last):
                last = active[-1]
        since = last or now - ACTIVITY_WINDOW
        if created is not None and created > since:
            since = created
        return round(max(0.0, (now - since).total_seconds() / 86400), 2)

    def describe(self, resource_id: str, region: str) -> Facts:
        region = self._cloud.region(region)
        volume = self._volume(resource_id, region)
        if volume is None:
            return Facts(resource_id=resource_id, resource_type="volume", region=region, exists=False)
        attached = tuple(
            str(a.get("InstanceId", "?")) for a in volume.get("Attachments", []) if a.get("State") in _ATTACHED
        )
        created = volume.get("CreateTime")
        unused = self._unused_days(resource_id, region, created, bool(attached))
        modifying = self._modifying(resource_id, region)
        gaps = [name for name, value in (("unused_days", unused), ("modification_state", modifying)) if value is None]
        return Facts(
            resource_id=resource_id,
            resource_type="volume",
            region=region,
            exists=True,
            state=volume.get("State"),
            tags={t["Key"]: t.get("Value", "") for t in volume.get("Tags", [])},
            availability_zone=volume.get("AvailabilityZone"),
            iops=volume.get("Iops"),
            volume_type=volume.get("VolumeType"),
            size_gib=volume.get("Size"),
            attached_to=attached,
            unused_days=unused,
            modifying=modifying,
            volume_ids=(resource_id,),
            launch_time=created,
            gaps=tuple(gaps),
        )

    def investigate(self, resource_id: str, region: str) -> list[str]:
        facts = self.describe(resource_id, region)
        if not facts.exists:
            return [f"{resource_id} does not exist in {facts.region}"]
        attached = ", ".join(facts.attached_to or ()) or "nothing"
        with mapped_errors(f"describe_snapshots {resource_id}"):
            snaps = self._cloud.ec2(facts.region).describe_snapshots(
                OwnerIds=["self"], Filters=[{"Name": "volume-id", "Values": [resource_id]}]
            )
        return [
            f"state {facts.state}, attached to {attached}",
            f"type {facts.volume_type}, {facts.size_gib} GiB, created {facts.launch_time}",
            f"no reads or writes for {facts.unused_days} day(s) (lower bound)",
            f"existing snapshots of it: {len(snaps.get('Snapshots', []))}",
        ]

    def snapshot(self, facts: Facts, key: str, *, dry_run: bool) -> tuple[EffectResult, list[str]]:
        """The snapshot before a delete, waited for until `completed`: a failed one stops the delete (CloudError)."""
        done, ids = self._cloud.snapshot(facts, key, dry_run=dry_run)
        if dry_run or not ids:
            return done, ids
        ec2 = self._cloud.ec2(facts.region)

        def completed() -> bool:
            with mapped_errors(f"describe_snapshots {', '.join(ids)}"):
                states = {s.get("State") for s in ec2.describe_snapshots(SnapshotIds=ids)["Snapshots"]}
            if "error" in states:
                raise CloudError(f"snapshot(s) {', '.join(ids)} of {facts.resource_id} failed: nothing deleted")
            return states == {"completed"}

        self._cloud.wait(f"snapshot(s) {', '.join(ids)}", completed)
        return done, ids

    def act(self, plan: Plan, fresh: Facts, key: str, *, dry_run: bool, start_after: bool) -> Effect:
        ec2, vid = self._cloud.ec2(plan.region), plan.resource_id
        if plan.action == "delete":
            if dry_run:
                dry_run_call(lambda: ec2.delete_volume(VolumeId=vid, DryRun=True), f"delete_volume {vid}")
                return Effect(f"DryRun delete of {vid} accepted")
            now = self._volume(vid, plan.region)
            if now is None or now.get("State") in ("deleting", "deleted"):
                # a re-run after the delete: what undo needs was kept with the snapshot step (see execute)
                return Effect(f"reconciled: {vid} already deleted")
            if any(a.get("State") in _ATTACHED for a in now.get("Attachments", [])):
                raise RailTrippedAtExecution(vid, ("volume_attached",))
            with mapped_errors(f"delete_volume {vid}"):
                ec2.delete_volume(VolumeId=vid)
            return Effect(f"deleted {vid}", _restore_facts(fresh))
        if plan.action != "resize" or plan.target_type is None:
            raise InternalError(f"a volume plan cannot {plan.action}")
        target = plan.target_type
        iops, throughput = gp3_matching_gp2(fresh.size_gib or 0)  # as fast as the gp2 volume was
        if dry_run:
            dry_run_call(
                lambda: ec2.modify_volume(
                    VolumeId=vid,
                    VolumeType=target,  # type: ignore[arg-type]
                    Iops=iops,
                    Throughput=throughput,
                    DryRun=True,
                ),
                f"modify_volume {vid}",
            )
            return Effect(f"DryRun change of {vid} to {target} accepted")
        if fresh.volume_type == target:
            return Effect(f"reconciled: {vid} already {target}", {"previous_type": plan.current_type})
        with mapped_errors(f"modify_volume {vid}"):
            ec2.modify_volume(VolumeId=vid, VolumeType=target, Iops=iops, Throughput=throughput)  # type: ignore[arg-type]
        return Effect(
            f"changed {vid} {plan.current_type} -> {target} at {iops} IOPS, {throughput} MiB/s "
            "(AWS allows the next change in 6 hours)",
            {"previous_type": plan.current_type},
        )

    def undo(self, plan: Plan, fresh: Facts, acted: Mapping[str, Any], key: str, *, was_running: bool) -> str:
        if plan.action == "resize":
            return self._type_back(plan, fresh)
        return self._restore(plan, acted, key)

    def _type_back(self, plan: Plan, fresh: Facts) -> str:
        vid = plan.resource_id
        if not fresh.exists:
            raise UndoRefused(f"{vid} no longer exists")
        if fresh.volume_type == plan.current_type:
            return f"reconciled: {vid} already {plan.current_type}"
        if fresh.volume_type != plan.target_type:
            raise UndoRefused(f"{vid} is now {fresh.volume_type}, neither {plan.current_type} nor {plan.target_type}")
        if fresh.modifying:
            raise UndoRefused(f"{vid} is still being modified; AWS allows one change per 6 hours: try again later")
        try:
            with mapped_errors(f"modify_volume {vid}"):
                self._cloud.ec2(plan.region).modify_volume(VolumeId=vid, VolumeType=plan.current_type)  # type: ignore[arg-type]
        except CloudError as exc:
            raise UndoRefused(
                f"{vid} cannot go back to {plan.current_type} yet ({exc}); AWS allows one change per 6 hours"
            ) from exc
        return f"changed {vid} back {fresh.volume_type} -> {plan.current_type}"

    def _restore(self, plan: Plan, acted: Mapping[str, Any], key: str) -> str:
        """A new volume from the snapshot taken before the delete, in the same zone, of the same type, same tags."""
        snapshots = list(acted.get("snapshot_ids") or [])
        before = {**dict(acted.get("before") or {}), **{k: v for k, v in acted.items() if v is not None}}
        zone = before.get("availability_zone")
        if not snapshots or not zone:
            raise UndoRefused(f"{plan.resource_id}: no snapshot or zone recorded; nothing to restore from")
        ec2 = self._cloud.ec2(plan.region)
        with mapped_errors("describe_volumes (restored)"):
            done = ec2.describe_volumes(Filters=[{"Name": f"tag:{IDEMPOTENCY_TAG}", "Values": [key]}])
        if done.get("Volumes"):
            return f"reconciled: {plan.resource_id} already restored as {done['Volumes'][0]['VolumeId']}"
        kept = dict(before.get("tags") or {}).items()
        tags = [{"Key": k, "Value": v} for k, v in kept if not k.startswith(("aws:", "costguard:"))]
        tags += [{"Key": IDEMPOTENCY_TAG, "Value": key}, {"Key": RESTORED_FROM_TAG, "Value": plan.resource_id}]
        kind = str(before.get("volume_type") or "gp3")
        extra: dict[str, Any] = {"Iops": int(before["iops"])} if kind in ("io1", "io2") and before.get("iops") else {}
        with mapped_errors(f"create_volume from {snapshots[0]}"):
            made = ec2.create_volume(
                SnapshotId=snapshots[0],
                AvailabilityZone=str(zone),
                VolumeType=kind,  # type: ignore[arg-type]
                TagSpecifications=[{"ResourceType": "volume", "Tags": tags}],  # type: ignore[list-item,misc]
                **extra,
            )
        return f"restored {plan.resource_id} from {snapshots[0]} as {made['VolumeId']} in {zone} (a new volume id)"

    def retag(self, resource_id: str, region: str, *, add: Mapping[str, str], remove: Sequence[str] = ()) -> None:
        self._cloud.retag(resource_id, region, add=add, remove=remove)


def _restore_facts(fresh: Facts) -> dict[str, Any]:
    """What undo needs to make the volume again."""
    return {
        "availability_zone": fresh.availability_zone,
        "volume_type": fresh.volume_type,
        "size_gib": fresh.size_gib,
        "iops": fresh.iops,
        "tags": dict(fresh.tags or {}),
    }
