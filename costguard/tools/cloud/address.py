"""The Elastic IP kind: an address associated with nothing is released. Irreversible: there is no undo.

The association is read again just before the release: moto releases an associated address without an error,
AWS refuses (in a VPC); costguard refuses first, in both.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from costguard.errors import InternalError, RailTrippedAtExecution, ResourceNotFound, UndoRefused
from costguard.state import Facts, Plan, ResourceType
from costguard.tools.cloud.base import Effect, EffectResult
from costguard.tools.cloud.errors import dry_run_call, mapped_errors, read_retry

if TYPE_CHECKING:
    from costguard.tools.cloud.ec2 import Ec2Cloud


class AddressKind:
    resource_type: ResourceType = "address"
    snapshot_first: frozenset[str] = frozenset()

    def __init__(self, cloud: Ec2Cloud) -> None:
        self._cloud = cloud

    @read_retry
    def _address(self, allocation_id: str, region: str) -> dict[str, Any] | None:
        try:
            with mapped_errors(f"describe_addresses {allocation_id}"):
                reply = self._cloud.ec2(region).describe_addresses(AllocationIds=[allocation_id])
        except ResourceNotFound:
            return None
        found = reply.get("Addresses", [])
        return dict(found[0]) if found else None

    def describe(self, resource_id: str, region: str) -> Facts:
        region = self._cloud.region(region)
        address = self._address(resource_id, region)
        if address is None:
            return Facts(resource_id=resource_id, resource_type="address", region=region, exists=False)
        association = str(address.get("AssociationId") or "")
        holder = address.get("InstanceId") or address.get("NetworkInterfaceId")
        return Facts(
            resource_id=resource_id,
            resource_type="address",
            region=region,
            exists=True,
            state="associated" if association else "unassociated",
            tags={t["Key"]: t.get("Value", "") for t in address.get("Tags", [])},
            public_ip=address.get("PublicIp"),
            association_id=association,
            attached_to=(str(holder),) if association and holder else (),
        )

    def investigate(self, resource_id: str, region: str) -> list[str]:
        facts = self.describe(resource_id, region)
        if not facts.exists:
            return [f"{resource_id} does not exist in {facts.region}"]
        holder = ", ".join(facts.attached_to or ()) or "nothing"
        return [f"public IP {facts.public_ip}, {facts.state}, associated with {holder}"]

    def snapshot(self, facts: Facts, key: str, *, dry_run: bool) -> tuple[EffectResult, list[str]]:
        return ("dry_run_ok" if dry_run else "done"), []  # an address has nothing to snapshot

    def act(self, plan: Plan, fresh: Facts, key: str, *, dry_run: bool, start_after: bool) -> Effect:
        if plan.action != "release":
            raise InternalError(f"an address plan cannot {plan.action}")
        ec2, alloc = self._cloud.ec2(plan.region), plan.resource_id
        now = self._address(alloc, plan.region)
        if now is None:
            return Effect(f"reconciled: {alloc} already released", {"public_ip": fresh.public_ip})
        if now.get("AssociationId"):
            raise RailTrippedAtExecution(alloc, ("address_associated",))
        if dry_run:
            dry_run_call(lambda: ec2.release_address(AllocationId=alloc, DryRun=True), f"release_address {alloc}")
            return Effect(f"DryRun release of {alloc} accepted")
        with mapped_errors(f"release_address {alloc}"):
            ec2.release_address(AllocationId=alloc)
        return Effect(f"released {alloc} ({now.get('PublicIp')})", {"public_ip": now.get("PublicIp")})

    def undo(self, plan: Plan, fresh: Facts, acted: Mapping[str, Any], key: str, *, was_running: bool) -> str:
        raise UndoRefused(
            f"{plan.resource_id} ({acted.get('public_ip', 'its address')}) was released: AWS may already have given "
            "the address to someone else; a new allocation gets a different IP"
        )

    def retag(self, resource_id: str, region: str, *, add: Mapping[str, str], remove: Sequence[str] = ()) -> None:
        self._cloud.retag(resource_id, region, add=add, remove=remove)
