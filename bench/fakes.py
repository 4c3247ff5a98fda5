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
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Iterable
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Literal

from costguard.errors import CloudError, CloudUnavailable
from costguard.state import Alert, Facts, ResourceType
from costguard.tools.cloud import EffectResult, ResourceKind
from costguard.tools.cloud.instance import InstanceKind

ACTOR: ContextVar[str] = ContextVar("bench_actor", default="")
REGION = "us-east-1"
LAUNCHED = datetime(2026, 1, 1, tzinfo=UTC)

CloudFault = Literal["throttle", "timeout"]
Op = Literal["snapshot", "stop", "start", "modify"]
MUTATING: frozenset[str] = frozenset({"snapshot", "stop", "start", "modify", "resize"})


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


@dataclass(frozen=True)
class Effect:
    """One call that changed the cloud, and the alert on whose behalf it was made."""

    actor: str
    op: Op
    instance_id: str
    detail: str  # the volume for a snapshot, "from->to" for a type change


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

    @classmethod
    def of(cls, instances: Iterable[Instance], faults: dict[str, CloudFault] | None = None) -> FakeCloud:
        return cls({i.instance_id: replace(i, tags=dict(i.tags)) for i in instances}, dict(faults or {}))

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
        """Instances only: the benchmarks' fleet has no other kind."""
        if resource_type != "instance":
            raise CloudError(f"the fake cloud has no {resource_type}s")
        return InstanceKind(self)

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
