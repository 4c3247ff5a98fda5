"""Which module handles which resource kind, over one `Ec2Cloud` (its session, clients and clock)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from costguard.errors import CloudError
from costguard.state import ResourceType
from costguard.tools.cloud.address import AddressKind
from costguard.tools.cloud.base import ResourceKind
from costguard.tools.cloud.db_instance import DbInstanceKind
from costguard.tools.cloud.instance import InstanceKind
from costguard.tools.cloud.volume import VolumeKind

if TYPE_CHECKING:
    from costguard.tools.cloud.ec2 import Ec2Cloud


def kind_for(cloud: Ec2Cloud, resource_type: ResourceType) -> ResourceKind:
    if resource_type == "instance":
        return InstanceKind(cloud)
    if resource_type == "volume":
        return VolumeKind(cloud)
    if resource_type == "address":
        return AddressKind(cloud)
    if resource_type == "db_instance":
        return DbInstanceKind(cloud)
    raise CloudError(f"no module for resource kind {resource_type!r}")
