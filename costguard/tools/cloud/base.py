"""What costguard needs from a cloud, as typed interfaces.

`Cloud` is the EC2 instance part (`Ec2Cloud` with boto3, an in-memory fake in the benchmarks) and the door to
every resource kind: `cloud.kind("volume")` is that kind's module behind `ResourceKind` (read facts, act with a
dry run, reconcile after a crash, undo where possible).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from costguard.state import Facts, Plan, ResourceType

IDEMPOTENCY_TAG = "costguard:idempotency-key"
ORIGINAL_TYPE_TAG = "costguard:original-instance-type"
EffectResult = Literal["done", "dry_run_ok"]


@dataclass(frozen=True)
class Effect:
    """What an action did: a line for the audit, and what undo needs later (kept in the ledger)."""

    detail: str
    result: Mapping[str, Any] = field(default_factory=dict)


class ResourceKind(Protocol):
    """One kind of resource: facts, the effect of a plan (re-runnable: it reconciles), and its undo."""

    resource_type: ResourceType
    snapshot_first: frozenset[str]  # the actions that take a snapshot before they act

    def describe(self, resource_id: str, region: str) -> Facts: ...

    def investigate(self, resource_id: str, region: str) -> list[str]: ...

    def snapshot(self, facts: Facts, key: str, *, dry_run: bool) -> tuple[EffectResult, list[str]]: ...

    def act(self, plan: Plan, fresh: Facts, key: str, *, dry_run: bool, start_after: bool) -> Effect:
        """Carry the plan out (or, with dry_run, ask the cloud whether it would be allowed: nothing changes).

        Re-runnable: when the resource is already in the state the plan leads to, say so and do nothing again."""
        ...

    def undo(self, plan: Plan, fresh: Facts, acted: Mapping[str, Any], key: str, *, was_running: bool) -> str:
        """Put back what `act` did (re-runnable); UndoRefused when it cannot be."""
        ...

    def retag(self, resource_id: str, region: str, *, add: Mapping[str, str], remove: Sequence[str] = ()) -> None:
        """Set the `add` tags and delete the `remove` keys on the resource (both idempotent)."""
        ...


class Cloud(Protocol):
    """What costguard needs from a cloud: EC2 instances, and the other kinds through `kind`."""

    def describe(self, instance_id: str, region: str) -> Facts: ...

    def investigate(self, instance_id: str, region: str) -> list[str]: ...

    def snapshot(self, facts: Facts, key: str, *, dry_run: bool) -> tuple[EffectResult, list[str]]: ...

    def stop(self, instance_id: str, region: str, *, dry_run: bool) -> EffectResult: ...

    def start(self, instance_id: str, region: str, *, dry_run: bool) -> EffectResult: ...

    def resize(
        self, instance_id: str, region: str, target_type: str, *, start_after: bool, dry_run: bool
    ) -> EffectResult: ...

    def retag(self, resource_id: str, region: str, *, add: Mapping[str, str], remove: Sequence[str] = ()) -> None: ...

    def kind(self, resource_type: ResourceType) -> ResourceKind: ...
