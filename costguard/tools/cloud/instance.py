"""The EC2 instance kind: snapshot + stop, snapshot + resize; undo = start, resize back.

Built on the `Cloud` instance verbs, so any implementation of them (boto3, the benchmarks' fake) gets the
same reconciliation: an instance already stopped is not stopped again, one already of the target type is not
modified again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from costguard.errors import InternalError, UndoRefused
from costguard.state import Facts, Plan, ResourceType
from costguard.tools.cloud.base import Cloud, Effect, EffectResult


class InstanceKind:
    resource_type: ResourceType = "instance"
    snapshot_first = frozenset({"shutdown", "resize"})

    def __init__(self, cloud: Cloud) -> None:
        self._cloud = cloud

    def describe(self, resource_id: str, region: str) -> Facts:
        return self._cloud.describe(resource_id, region)

    def investigate(self, resource_id: str, region: str) -> list[str]:
        return self._cloud.investigate(resource_id, region)

    def snapshot(self, facts: Facts, key: str, *, dry_run: bool) -> tuple[EffectResult, list[str]]:
        return self._cloud.snapshot(facts, key, dry_run=dry_run)

    def act(self, plan: Plan, fresh: Facts, key: str, *, dry_run: bool, start_after: bool) -> Effect:
        cloud, iid, region = self._cloud, plan.resource_id, plan.region
        if plan.action == "shutdown":
            if dry_run:
                cloud.stop(iid, region, dry_run=True)
                return Effect(f"DryRun stop of {iid} accepted")
            if fresh.state in ("stopped", "stopping"):
                detail = f"reconciled: {iid} already {fresh.state}"
                if fresh.state == "stopping":
                    cloud.stop(iid, region, dry_run=False)
            else:
                cloud.stop(iid, region, dry_run=False)
                detail = f"stopped {iid}"
            return Effect(detail, {"previous_state": "running", "instance_type": plan.current_type})
        if plan.action != "resize" or plan.target_type is None:
            raise InternalError(f"an instance plan cannot {plan.action} (target {plan.target_type!r})")
        target = plan.target_type
        if dry_run:
            cloud.resize(iid, region, target, start_after=False, dry_run=True)
            return Effect(f"DryRun resize of {iid} accepted")
        cloud.resize(iid, region, target, start_after=start_after, dry_run=False)
        return Effect(
            f"resized {iid} {plan.current_type} -> {target}",
            {"previous_type": plan.current_type, "target_type": target},
        )

    def undo(self, plan: Plan, fresh: Facts, acted: Mapping[str, Any], key: str, *, was_running: bool) -> str:
        """Start a stopped instance again; resize back to the original type (started again if it was running)."""
        cloud, iid, region = self._cloud, plan.resource_id, plan.region
        if not fresh.exists:
            raise UndoRefused(f"{iid} no longer exists; snapshots remain for a manual restore")
        if plan.action == "shutdown":
            if fresh.state == "running":
                return f"reconciled: {iid} already running"
            if fresh.state in ("stopped", "stopping"):
                cloud.start(iid, region, dry_run=False)
                return f"started {iid}"
            raise UndoRefused(f"{iid} is {fresh.state!r}, not stopped: left alone")
        original = plan.current_type
        if fresh.instance_type == original:
            if was_running and fresh.state != "running":
                cloud.start(iid, region, dry_run=False)
            return f"reconciled: {iid} already {original}"
        if fresh.instance_type != plan.target_type:
            raise UndoRefused(f"{iid} is now {fresh.instance_type}, neither {original} nor {plan.target_type}")
        cloud.resize(iid, region, original, start_after=was_running, dry_run=False)
        return f"resized {iid} back {plan.target_type} -> {original}"

    def retag(self, resource_id: str, region: str, *, add: Mapping[str, str], remove: Sequence[str] = ()) -> None:
        self._cloud.retag(resource_id, region, add=add, remove=remove)
