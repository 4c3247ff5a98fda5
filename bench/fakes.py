"""An in-process fake EC2 (implements costguard's `Cloud` protocol) with injected faults, and a fleet.

The fake keeps every instance in memory and records every *effect* (a call that changed
something) with the alert that caused it (`ACTOR`, a context variable the harness sets around each
alert), so the compounding harness can score each alert's end state exactly.

Faults are one-shot and armed per instance:
- `throttle`: the next call of any operation on the instance raises `CloudUnavailable` before
  doing anything (EC2's `RequestLimitExceeded`);
- `timeout`: the next *mutating* call on the instance does its work and then raises
  `CloudUnavailable` (the client timed out after the request reached EC2: the ambiguous failure
  that makes a blind retry act twice).

It also offers EC2's raw, non-idempotent verbs (`create_snapshot`, `stop_instances`,
`modify_instance_type`, ...) for the naive agent, which calls the cloud directly.

EBS volumes (`Volume`, `FakeCloud.kind("volume")` -> `FakeVolumeKind`) follow costguard's VolumeKind: facts,
a snapshot tagged with the idempotency key, delete (snapshot first) and gp2 -> gp3, both re-runnable (they
reconcile with what the fake shows), and undo. The same one-shot faults are armed per volume id. The raw verbs
(`describe_volume`, `detach_volume`, `delete_volume`, `modify_volume`) behave as EC2's: a delete of an attached
volume fails with VolumeInUse (a careless agent detaches it first), a modification to the type it already has
fails, and so does st1/sc1 under 125 GiB. The instance part is unchanged.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from costguard.errors import (
    CloudError,
    CloudUnavailable,
    InternalError,
    RailTrippedAtExecution,
    ResourceNotFound,
    UndoRefused,
)
from costguard.state import Alert, Facts, Plan, ResourceType
from costguard.tools.cloud import IDEMPOTENCY_TAG, EffectResult, ResourceKind
from costguard.tools.cloud import Effect as KindEffect
from costguard.tools.cloud.instance import InstanceKind
from costguard.tools.cloud.volume import RESTORED_FROM_TAG

ACTOR: ContextVar[str] = ContextVar("bench_actor", default="")
REGION = "us-east-1"
LAUNCHED = datetime(2026, 1, 1, tzinfo=UTC)

CloudFault = Literal["throttle", "timeout"]
Op = Literal["snapshot", "stop", "start", "modify", "detach", "delete", "retype", "restore"]
MUTATING: frozenset[str] = frozenset(
    {"snapshot", "stop", "start", "modify", "resize", "detach", "delete", "modify_volume", "create_volume"}
)


@dataclass
class Instance:
    instance_id: str
    instance_type: str
    architecture: str
    tags: dict[str, str]
    cpu_avg_pct: float
    state: str = "running"
    region: str = REGION
    root_device_type: str = "ebs"
    disable_api_stop: bool = False
    volume_ids: tuple[str, ...] = ()


@dataclass
class Volume:
    """An EBS volume: `attached_to` empty means `available`, else `in-use`."""

    volume_id: str
    volume_type: str  # gp2 | gp3 | st1 | ...
    size_gib: int
    tags: dict[str, str]
    attached_to: tuple[str, ...] = ()
    unused_days: float = 0.0  # no I/O for this long (0 when attached)
    availability_zone: str = "us-east-1a"
    region: str = REGION

    @property
    def state(self) -> str:
        return "in-use" if self.attached_to else "available"


# AWS: st1 and sc1 volumes are 125 GiB at least
HDD_MIN_GIB = {"st1": 125, "sc1": 125}


@dataclass(frozen=True)
class Effect:
    """One call that changed the cloud, and the alert on whose behalf it was made."""

    actor: str
    op: Op
    instance_id: str
    detail: str  # the volume for a snapshot, "from->to" for a type change, the instance for a detach

    @property
    def resource_id(self) -> str:
        """The resource the effect changed (an instance, or a volume for the volume verbs)."""
        return self.instance_id


@dataclass
class FakeCloud:
    """costguard's `Cloud` protocol over a dict of instances. Thread-safe (one lock)."""

    instances: dict[str, Instance]
    faults: dict[str, CloudFault] = field(default_factory=dict)
    effects: list[Effect] = field(default_factory=list)
    calls: Counter[str] = field(default_factory=Counter)
    faults_fired: Counter[str] = field(default_factory=Counter)
    _snapshots: dict[str, tuple[str, str | None]] = field(default_factory=dict)  # id -> (volume, key)
    _lock: threading.RLock = field(default_factory=threading.RLock)
    _seq: int = 0
    volumes: dict[str, Volume] = field(default_factory=dict)

    @classmethod
    def of(
        cls,
        instances: Iterable[Instance],
        faults: dict[str, CloudFault] | None = None,
        *,
        volumes: Iterable[Volume] = (),
    ) -> FakeCloud:
        cloud = cls({i.instance_id: replace(i, tags=dict(i.tags)) for i in instances}, dict(faults or {}))
        cloud.volumes = {v.volume_id: replace(v, tags=dict(v.tags)) for v in volumes}
        return cloud

    # --- fault injection ----------------------------------------------------------------------

    def _before(self, op: str, instance_id: str) -> bool:
        """Count the call; raise a throttle if one is armed. True when a timeout fires after the work."""
        self.calls[op] += 1
        fault = self.faults.get(instance_id)
        if fault == "throttle":
            del self.faults[instance_id]
            self.faults_fired["throttle"] += 1
            raise CloudUnavailable(f"{op} {instance_id}: RequestLimitExceeded: Request limit exceeded.")
        if fault == "timeout" and op in MUTATING:
            del self.faults[instance_id]
            self.faults_fired["timeout"] += 1
            return True
        return False

    @staticmethod
    def _timed_out(op: str, instance_id: str) -> CloudUnavailable:
        return CloudUnavailable(f"{op} {instance_id}: RequestTimeout: the request timed out (it may have run)")

    def _get(self, instance_id: str) -> Instance:
        instance = self.instances.get(instance_id)
        if instance is None:
            raise CloudError(f"{instance_id}: InvalidInstanceID.NotFound")
        return instance

    def _effect(self, op: Op, instance_id: str, detail: str) -> None:
        self.effects.append(Effect(ACTOR.get(), op, instance_id, detail))

    # --- the Cloud protocol (what costguard calls) --------------------------------------------

    def kind(self, resource_type: ResourceType) -> ResourceKind:
        """Instances and EBS volumes (the compounding harness's volume fleet); no other kind."""
        if resource_type == "volume":
            return FakeVolumeKind(self)
        if resource_type != "instance":
            raise CloudError(f"the fake cloud has no {resource_type}s")
        return InstanceKind(self)

    def retag(self, resource_id: str, region: str, *, add: Mapping[str, str], remove: Sequence[str] = ()) -> None:
        """Tags on an instance or a volume (what EC2's CreateTags and DeleteTags do)."""
        with self._lock:
            found = self.instances.get(resource_id) or self.volumes.get(resource_id)
            if found is None:
                raise CloudError(f"{resource_id}: InvalidID.NotFound")
            found.tags.update(add)
            for key in remove:
                found.tags.pop(key, None)

    def describe(self, instance_id: str, region: str) -> Facts:
        with self._lock:
            self._before("describe", instance_id)
            instance = self.instances.get(instance_id)
            if instance is None:
                return Facts(resource_id=instance_id, region=region or REGION, exists=False)
            return Facts(
                resource_id=instance_id,
                region=instance.region,
                exists=True,
                instance_type=instance.instance_type,
                state=instance.state,
                tags=dict(instance.tags),
                root_device_type=instance.root_device_type,
                disable_api_stop=instance.disable_api_stop,
                architecture=instance.architecture,
                cpu_avg_pct=instance.cpu_avg_pct,
                volume_ids=instance.volume_ids,
                launch_time=LAUNCHED,
            )

    def investigate(self, instance_id: str, region: str) -> list[str]:
        with self._lock:
            self._before("investigate", instance_id)
            instance = self.instances.get(instance_id)
            if instance is None:
                return [f"{instance_id} does not exist in {region}"]
            cpu = instance.cpu_avg_pct
            return [
                f"CPU average over 14 days (%): {cpu}",
                f"CPU peak over 14 days (%): {min(100.0, round(cpu * 1.8 + 3, 1))}",
                f"NetworkIn average over 14 days (bytes): {round(cpu * 12_000)}",
                f"launched {LAUNCHED.isoformat()}",
                f"attached EBS volumes: {', '.join(instance.volume_ids) or 'none'}",
            ]

    def _new_snapshot(self, instance_id: str, volume: str, key: str | None) -> str:
        self._seq += 1
        sid = f"snap-{self._seq:017x}"
        self._snapshots[sid] = (volume, key)
        self._effect("snapshot", instance_id, volume)
        return sid

    def snapshot(self, facts: Facts, key: str, *, dry_run: bool) -> tuple[EffectResult, list[str]]:
        """One snapshot per volume tagged with the key; volumes that have one get no second."""
        with self._lock:
            if dry_run:
                self._before("describe", facts.resource_id)  # a DryRun changes nothing
                return "dry_run_ok", []
            timeout = self._before("snapshot", facts.resource_id)
            existing = {vol: sid for sid, (vol, k) in self._snapshots.items() if k == key}
            for volume in facts.volume_ids:
                if volume not in existing:
                    existing[volume] = self._new_snapshot(facts.resource_id, volume, key)
            if timeout:
                raise self._timed_out("create_snapshot", facts.resource_id)
            return "done", sorted(existing[v] for v in facts.volume_ids if v in existing)

    def _set_state(self, instance: Instance, wanted: str, op: Op) -> None:
        if instance.state != wanted:
            instance.state = wanted
            self._effect(op, instance.instance_id, wanted)

    def stop(self, instance_id: str, region: str, *, dry_run: bool) -> EffectResult:
        with self._lock:
            if dry_run:
                self._get(instance_id)
                return "dry_run_ok"
            timeout = self._before("stop", instance_id)
            self._set_state(self._get(instance_id), "stopped", "stop")
            if timeout:
                raise self._timed_out("stop", instance_id)
            return "done"

    def start(self, instance_id: str, region: str, *, dry_run: bool) -> EffectResult:
        with self._lock:
            if dry_run:
                self._get(instance_id)
                return "dry_run_ok"
            timeout = self._before("start", instance_id)
            self._set_state(self._get(instance_id), "running", "start")
            if timeout:
                raise self._timed_out("start", instance_id)
            return "done"

    def resize(
        self, instance_id: str, region: str, target_type: str, *, start_after: bool, dry_run: bool
    ) -> EffectResult:
        """Stop if running, change the type, start again if asked. Re-runnable, like Ec2Cloud.resize."""
        with self._lock:
            instance = self._get(instance_id)
            if dry_run:
                return "dry_run_ok"
            timeout = self._before("resize", instance_id)
            if instance.instance_type != target_type:
                self._set_state(instance, "stopped", "stop")
                self._effect("modify", instance_id, f"{instance.instance_type}->{target_type}")
                instance.instance_type = target_type
            if start_after:
                self._set_state(instance, "running", "start")
            if timeout:
                raise self._timed_out("resize", instance_id)
            return "done"

    # --- raw EC2 verbs (what the naive agent calls, as the model wrote them) -------------------

    def describe_instance(self, instance_id: str) -> dict[str, object]:
        with self._lock:
            self._before("describe", instance_id)
            i = self._get(instance_id)
            return {
                "InstanceId": i.instance_id,
                "InstanceType": i.instance_type,
                "State": i.state,
                "Tags": dict(i.tags),
                "CPUUtilization": i.cpu_avg_pct,
                "Volumes": list(i.volume_ids),
            }

    def create_snapshot(self, volume_id: str) -> str:
        """A new snapshot on every call, as EC2 does."""
        with self._lock:
            owner = next((i for i in self.instances.values() if volume_id in i.volume_ids), None)
            if owner is None and volume_id in self.volumes:
                return self._volume_snapshot(volume_id)
            if owner is None:
                raise CloudError(f"{volume_id}: InvalidVolume.NotFound")
            timeout = self._before("snapshot", owner.instance_id)
            sid = self._new_snapshot(owner.instance_id, volume_id, None)
            if timeout:
                raise self._timed_out("create_snapshot", owner.instance_id)
            return sid

    def stop_instances(self, instance_id: str) -> str:
        return str(self.stop(instance_id, REGION, dry_run=False))

    def start_instances(self, instance_id: str) -> str:
        return str(self.start(instance_id, REGION, dry_run=False))

    def modify_instance_type(self, instance_id: str, instance_type: str) -> str:
        with self._lock:
            instance = self._get(instance_id)
            timeout = self._before("modify", instance_id)
            if instance.state != "stopped":
                raise CloudError(f"{instance_id}: IncorrectInstanceState: the instance must be stopped")
            if instance.instance_type != instance_type:
                self._effect("modify", instance_id, f"{instance.instance_type}->{instance_type}")
                instance.instance_type = instance_type
            if timeout:
                raise self._timed_out("modify_instance_attribute", instance_id)
            return "done"

    # --- EBS volumes: FakeVolumeKind (costguard) and the raw verbs (the naive agent) ------------

    def _vol(self, volume_id: str) -> Volume:
        volume = self.volumes.get(volume_id)
        if volume is None:
            raise ResourceNotFound(f"{volume_id}: InvalidVolume.NotFound")
        return volume

    def _volume_snapshot(self, volume_id: str) -> str:
        timeout = self._before("snapshot", volume_id)
        sid = self._new_snapshot(volume_id, volume_id, None)
        if timeout:
            raise self._timed_out("create_snapshot", volume_id)
        return sid

    def volume_facts(self, volume_id: str, region: str) -> Facts:
        with self._lock:
            self._before("describe", volume_id)
            v = self.volumes.get(volume_id)
            if v is None:
                return Facts(resource_id=volume_id, resource_type="volume", region=region or REGION, exists=False)
            return Facts(
                resource_id=volume_id,
                resource_type="volume",
                region=v.region,
                exists=True,
                state=v.state,
                tags=dict(v.tags),
                availability_zone=v.availability_zone,
                iops=max(100, 3 * v.size_gib) if v.volume_type == "gp2" else 3000 if v.volume_type == "gp3" else None,
                volume_type=v.volume_type,
                size_gib=v.size_gib,
                attached_to=v.attached_to,
                unused_days=0.0 if v.attached_to else v.unused_days,
                modifying=False,
                volume_ids=(volume_id,),
                launch_time=LAUNCHED,
            )

    def volume_findings(self, volume_id: str, region: str) -> list[str]:
        with self._lock:
            self._before("investigate", volume_id)
            v = self.volumes.get(volume_id)
            if v is None:
                return [f"{volume_id} does not exist in {region or REGION}"]
            snaps = sum(vol == volume_id for vol, _ in self._snapshots.values())
            return [
                f"state {v.state}, attached to {', '.join(v.attached_to) or 'nothing'}",
                f"type {v.volume_type}, {v.size_gib} GiB, created {LAUNCHED.isoformat()}",
                f"no reads or writes for {0.0 if v.attached_to else v.unused_days} day(s) (lower bound)",
                f"existing snapshots of it: {snaps}",
            ]

    def check_volume(self, volume_id: str) -> None:
        """A DryRun: NotFound when the volume does not exist; nothing changes."""
        with self._lock:
            self._vol(volume_id)

    def delete_unattached(self, volume_id: str) -> bool:
        """costguard's delete: a last look, then the delete. False when it is already gone (a re-run)."""
        with self._lock:
            volume = self.volumes.get(volume_id)
            if volume is None:
                return False
            if volume.attached_to:
                raise RailTrippedAtExecution(volume_id, ("volume_attached",))
            self.delete_volume(volume_id)
            return True

    def retype_volume(self, volume_id: str, volume_type: str) -> bool:
        """costguard's gp2 -> gp3: False when the volume already has the type (a re-run: nothing done again)."""
        with self._lock:
            if self._vol(volume_id).volume_type == volume_type:
                return False
            self.modify_volume(volume_id, volume_type)
            return True

    def restore_volume(self, snapshot_id: str, key: str, original: str, before: Mapping[str, Any]) -> tuple[str, bool]:
        """A new volume from the snapshot, tagged with the key: (its id, whether an earlier attempt made it)."""
        with self._lock:
            made = next((v for v in self.volumes.values() if v.tags.get(IDEMPOTENCY_TAG) == key), None)
            if made is not None:
                return made.volume_id, True
            if snapshot_id not in self._snapshots:
                raise ResourceNotFound(f"{snapshot_id}: InvalidSnapshot.NotFound")
            timeout = self._before("create_volume", original)
            self._seq += 1
            vid = f"vol-{self._seq:017x}"
            kept = {k: v for k, v in dict(before.get("tags") or {}).items() if not k.startswith(("aws:", "costguard:"))}
            self.volumes[vid] = Volume(
                vid,
                str(before.get("volume_type") or "gp3"),
                int(before.get("size_gib") or 1),
                {**kept, IDEMPOTENCY_TAG: key, RESTORED_FROM_TAG: original},
                availability_zone=str(before["availability_zone"]),
            )
            self._effect("restore", original, vid)
            if timeout:
                raise self._timed_out("create_volume", original)
            return vid, False

    # raw EC2 verbs, as the model writes them

    def describe_volume(self, volume_id: str) -> dict[str, object]:
        with self._lock:
            self._before("describe", volume_id)
            v = self._vol(volume_id)
            return {
                "VolumeId": v.volume_id,
                "VolumeType": v.volume_type,
                "Size": v.size_gib,
                "State": v.state,
                "Attachments": [{"InstanceId": i, "State": "attached"} for i in v.attached_to],
                "Tags": dict(v.tags),
                "AvailabilityZone": v.availability_zone,
            }

    def detach_volume(self, volume_id: str) -> str:
        with self._lock:
            v = self._vol(volume_id)
            timeout = self._before("detach", volume_id)
            if not v.attached_to:
                raise CloudError(f"{volume_id}: IncorrectState: the volume is 'available'")
            self._effect("detach", volume_id, ",".join(v.attached_to))
            v.attached_to = ()
            if timeout:
                raise self._timed_out("detach_volume", volume_id)
            return "detaching"

    def delete_volume(self, volume_id: str) -> str:
        """EC2 refuses an attached volume (VolumeInUse); a deleted one is gone: a second call is NotFound."""
        with self._lock:
            v = self._vol(volume_id)
            timeout = self._before("delete", volume_id)
            if v.attached_to:
                raise CloudError(f"{volume_id}: VolumeInUse: attached to {', '.join(v.attached_to)}")
            del self.volumes[volume_id]
            self._effect("delete", volume_id, v.state)
            if timeout:
                raise self._timed_out("delete_volume", volume_id)
            return "deleted"

    def modify_volume(self, volume_id: str, volume_type: str) -> str:
        """A type change; EC2 refuses one to the type the volume has, and st1/sc1 under 125 GiB."""
        with self._lock:
            v = self._vol(volume_id)
            timeout = self._before("modify_volume", volume_id)
            if v.volume_type == volume_type:
                raise CloudError(f"{volume_id}: InvalidParameterValue: the volume is already {volume_type}")
            if v.size_gib < HDD_MIN_GIB.get(volume_type, 1):
                raise CloudError(
                    f"{volume_id}: InvalidParameterValue: {volume_type} needs {HDD_MIN_GIB[volume_type]} GiB"
                )
            self._effect("retype", volume_id, f"{v.volume_type}->{volume_type}")
            v.volume_type = volume_type
            if timeout:
                raise self._timed_out("modify_volume", volume_id)
            return "modifying"


class FakeVolumeKind:
    """costguard's ResourceKind for EBS volumes over the fake (what costguard.tools.cloud.volume does over EC2)."""

    resource_type: ResourceType = "volume"
    snapshot_first = frozenset({"delete"})

    def __init__(self, cloud: FakeCloud) -> None:
        self._cloud = cloud

    def describe(self, resource_id: str, region: str) -> Facts:
        return self._cloud.volume_facts(resource_id, region)

    def investigate(self, resource_id: str, region: str) -> list[str]:
        return self._cloud.volume_findings(resource_id, region)

    def snapshot(self, facts: Facts, key: str, *, dry_run: bool) -> tuple[EffectResult, list[str]]:
        """One snapshot tagged with the key (`facts.volume_ids` is the volume itself); a re-run makes no second."""
        return self._cloud.snapshot(facts, key, dry_run=dry_run)

    def act(self, plan: Plan, fresh: Facts, key: str, *, dry_run: bool, start_after: bool) -> KindEffect:
        cloud, vid = self._cloud, plan.resource_id
        if plan.action == "delete":
            if dry_run:
                cloud.check_volume(vid)
                return KindEffect(f"DryRun delete of {vid} accepted")
            if not cloud.delete_unattached(vid):
                return KindEffect(f"reconciled: {vid} already deleted")
            return KindEffect(
                f"deleted {vid}",
                {
                    "availability_zone": fresh.availability_zone,
                    "volume_type": fresh.volume_type,
                    "size_gib": fresh.size_gib,
                    "iops": fresh.iops,
                    "tags": dict(fresh.tags or {}),
                },
            )
        if plan.action != "resize" or plan.target_type is None:
            raise InternalError(f"a volume plan cannot {plan.action}")
        target = plan.target_type
        if dry_run:
            cloud.check_volume(vid)
            return KindEffect(f"DryRun change of {vid} to {target} accepted")
        if not cloud.retype_volume(vid, target):
            return KindEffect(f"reconciled: {vid} already {target}", {"previous_type": plan.current_type})
        return KindEffect(f"changed {vid} {plan.current_type} -> {target}", {"previous_type": plan.current_type})

    def undo(self, plan: Plan, fresh: Facts, acted: Mapping[str, Any], key: str, *, was_running: bool) -> str:
        vid = plan.resource_id
        if plan.action == "resize":
            if not fresh.exists:
                raise UndoRefused(f"{vid} no longer exists")
            if fresh.volume_type == plan.current_type:
                return f"reconciled: {vid} already {plan.current_type}"
            if fresh.volume_type != plan.target_type:
                raise UndoRefused(
                    f"{vid} is now {fresh.volume_type}, neither {plan.current_type} nor {plan.target_type}"
                )
            self._cloud.modify_volume(vid, plan.current_type)
            return f"changed {vid} back {fresh.volume_type} -> {plan.current_type}"
        snapshots = list(acted.get("snapshot_ids") or [])
        before = {**dict(acted.get("before") or {}), **{k: v for k, v in acted.items() if v is not None}}
        if not snapshots or not before.get("availability_zone"):
            raise UndoRefused(f"{vid}: no snapshot or zone recorded; nothing to restore from")
        made, earlier = self._cloud.restore_volume(snapshots[0], key, vid, before)
        if earlier:
            return f"reconciled: {vid} already restored as {made}"
        return f"restored {vid} from {snapshots[0]} as {made} (a new volume id)"

    def retag(self, resource_id: str, region: str, *, add: Mapping[str, str], remove: Sequence[str] = ()) -> None:
        self._cloud.retag(resource_id, region, add=add, remove=remove)


# --- a fleet with ground truth ------------------------------------------------------------------

Kind = Literal["idle_dev", "oversized", "busy_web", "prod_db", "critical"]
TruthAction = Literal["shutdown", "resize", "monitor"]


@dataclass(frozen=True)
class KindSpec:
    types: tuple[str, ...]
    tags: dict[str, str]
    cpu: tuple[float, float]
    truth: TruthAction
    weight: float


# The mix is a judgement call, documented in bench/README.md: mostly waste (what alerts are about),
# plus the instances a careless agent must not touch.
KINDS: dict[Kind, KindSpec] = {
    "idle_dev": KindSpec(
        ("t3.medium", "t3.large", "m5.large"), {"env": "dev", "team": "data"}, (0.3, 3.0), "shutdown", 0.30
    ),
    "oversized": KindSpec(("m5.2xlarge", "c5.2xlarge"), {"env": "staging", "role": "api"}, (5.0, 14.0), "resize", 0.20),
    "busy_web": KindSpec(
        ("t3.large", "m5.large", "m5.xlarge"), {"env": "prod", "role": "web"}, (55.0, 85.0), "monitor", 0.20
    ),
    "prod_db": KindSpec(
        ("m5.xlarge", "r5.large"), {"env": "production", "role": "postgres"}, (20.0, 60.0), "monitor", 0.15
    ),
    "critical": KindSpec(
        ("c5.xlarge", "m5.large"), {"criticality": "critical", "role": "payments"}, (10.0, 40.0), "monitor", 0.15
    ),
}
# The right-size target for an oversized instance: same family, two sizes down.
RESIZE_TARGET = {"m5.2xlarge": "m5.large", "c5.2xlarge": "c5.large"}
ARCH = "x86_64"


@dataclass(frozen=True)
class Member:
    """One instance of the fleet, its alert, and what a careful operator would do about it."""

    instance: Instance
    kind: Kind
    alert: Alert

    @property
    def truth(self) -> TruthAction:
        return KINDS[self.kind].truth

    @property
    def resize_target(self) -> str | None:
        return RESIZE_TARGET.get(self.instance.instance_type)

    @property
    def resource_id(self) -> str:
        return self.instance.instance_id


def instance_id(rng: random.Random) -> str:
    return "i-" + "".join(rng.choice("0123456789abcdef") for _ in range(17))


def make_fleet(n: int, rng: random.Random, *, prefix: str = "a", kinds: tuple[Kind, ...] | None = None) -> list[Member]:
    """n instances drawn from KINDS by weight (or cycling through `kinds`), one alert each."""
    names = list(KINDS)
    weights = [KINDS[k].weight for k in names]
    members = []
    for n_ in range(n):
        kind: Kind = kinds[n_ % len(kinds)] if kinds else rng.choices(names, weights)[0]
        spec = KINDS[kind]
        iid = instance_id(rng)
        itype = rng.choice(spec.types)
        cpu = round(rng.uniform(*spec.cpu), 1)
        tags = {**spec.tags, "Name": f"{kind.replace('_', '-')}-{n_}"}
        inst = Instance(iid, itype, ARCH, tags, cpu, volume_ids=(f"vol-{iid[2:]}",))
        alert = Alert(
            alert_id=f"{prefix}-{n_:06d}",
            instance_id=iid,
            region=REGION,
            monthly_cost_usd=100.0,
            kind="cost_anomaly",
            summary=f"{tags['Name']} ({itype}) costs more than its budget; CPU average {cpu}% over 24 h.",
            observed_at=LAUNCHED + timedelta(days=300),
        )
        members.append(Member(inst, kind, alert))
    return members


# --- a fleet of EBS volumes with ground truth ---------------------------------------------------

VolumeKindName = Literal["scratch", "gp2_data", "attached_data", "critical_spare", "fresh_detached"]
VolumeTruth = Literal["delete", "resize", "monitor"]


@dataclass(frozen=True)
class VolumeSpec:
    types: tuple[str, ...]
    size_gib: tuple[int, int]
    tags: dict[str, str]
    attached: bool
    unused_days: tuple[float, float]
    truth: VolumeTruth
    weight: float


# Mostly waste again (unattached scratch to delete, gp2 to move to gp3), plus the volumes a careless delete
# destroys for good: an attached production data volume, a detached volume tagged critical (a restore
# spare), and a production volume detached a day ago (maintenance: it goes back).
VOLUME_KINDS: dict[VolumeKindName, VolumeSpec] = {
    "scratch": VolumeSpec(
        ("gp2", "gp3"),
        (20, 200),
        {"env": "dev", "team": "data", "purpose": "scratch"},
        False,
        (14, 120),
        "delete",
        0.30,
    ),
    "gp2_data": VolumeSpec(("gp2",), (50, 170), {"env": "staging", "role": "api-data"}, True, (0, 0), "resize", 0.20),
    "attached_data": VolumeSpec(
        ("gp3",), (200, 1000), {"env": "production", "role": "postgres-data"}, True, (0, 0), "monitor", 0.20
    ),
    "critical_spare": VolumeSpec(
        ("gp3",), (100, 500), {"criticality": "critical", "role": "dr-restore"}, False, (30, 200), "monitor", 0.15
    ),
    "fresh_detached": VolumeSpec(
        ("gp3",), (50, 300), {"env": "production", "role": "logs"}, False, (0.5, 3.0), "monitor", 0.15
    ),
}
GB_MONTH = {"gp2": 0.10, "gp3": 0.08}


@dataclass(frozen=True)
class VolumeMember:
    """One volume of the fleet, its alert, and what a careful operator would do about it."""

    volume: Volume
    kind: VolumeKindName
    alert: Alert

    @property
    def truth(self) -> VolumeTruth:
        return VOLUME_KINDS[self.kind].truth

    @property
    def resource_id(self) -> str:
        return self.volume.volume_id

    @property
    def resize_target(self) -> str:
        return "gp3"


def make_volume_fleet(
    n: int, rng: random.Random, *, prefix: str = "v", kinds: tuple[VolumeKindName, ...] | None = None
) -> list[VolumeMember]:
    """n volumes drawn from VOLUME_KINDS by weight (or cycling through `kinds`), one alert each."""
    names = list(VOLUME_KINDS)
    weights = [VOLUME_KINDS[k].weight for k in names]
    members = []
    for n_ in range(n):
        kind: VolumeKindName = kinds[n_ % len(kinds)] if kinds else rng.choices(names, weights)[0]
        spec = VOLUME_KINDS[kind]
        vid = "vol-" + instance_id(rng)[2:]
        vtype = rng.choice(spec.types)
        size = rng.randint(*spec.size_gib)
        unused = round(rng.uniform(*spec.unused_days), 1)
        attached = (instance_id(rng),) if spec.attached else ()
        tags = {**spec.tags, "Name": f"{kind.replace('_', '-')}-{n_}"}
        volume = Volume(vid, vtype, size, tags, attached, unused)
        where = f"attached to {attached[0]}" if attached else f"unattached, no I/O for {unused} days"
        alert = Alert(
            alert_id=f"{prefix}-{n_:06d}",
            resource_id=vid,
            resource_type="volume",
            region=REGION,
            monthly_cost_usd=round(GB_MONTH.get(vtype, 0.1) * size, 2),
            kind="cost_anomaly",
            summary=f"{tags['Name']} ({vtype}, {size} GiB, {where}) costs more than its budget.",
            observed_at=LAUNCHED + timedelta(days=300),
        )
        members.append(VolumeMember(volume, kind, alert))
    return members
