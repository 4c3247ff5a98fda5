"""What costguard needs from a cloud, as a typed interface; `Ec2Cloud` (boto3) is the implementation."""

from __future__ import annotations

from typing import Literal, Protocol

from costguard.state import Facts

IDEMPOTENCY_TAG = "costguard:idempotency-key"
ORIGINAL_TYPE_TAG = "costguard:original-instance-type"
EffectResult = Literal["done", "dry_run_ok"]


class Cloud(Protocol):
    """What costguard needs from a cloud. `Ec2Cloud` is the boto3 implementation."""

    def describe(self, instance_id: str, region: str) -> Facts: ...

    def investigate(self, instance_id: str, region: str) -> list[str]: ...

    def snapshot(self, facts: Facts, key: str, *, dry_run: bool) -> tuple[EffectResult, list[str]]: ...

    def stop(self, instance_id: str, region: str, *, dry_run: bool) -> EffectResult: ...

    def start(self, instance_id: str, region: str, *, dry_run: bool) -> EffectResult: ...

    def resize(
        self, instance_id: str, region: str, target_type: str, *, start_after: bool, dry_run: bool
    ) -> EffectResult: ...
