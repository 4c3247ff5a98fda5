"""Which kinds a scope alert's slice of spend is scanned for: by Cost Explorer's service name and usage type."""

from __future__ import annotations

import pytest

from costguard.app.fanout import kinds_of
from costguard.app.scan_region import ADDRESSES, DATABASES, EVERY_KIND, GP2, INSTANCES, UNATTACHED
from costguard.app.sources import Scope


@pytest.mark.parametrize(
    ("service", "usage_type", "kinds"),
    [
        (None, None, EVERY_KIND),  # a budget over everything
        (None, "USE1-BoxUsage:m5.large", {INSTANCES}),  # the usage type names an instance type
        ("Amazon Elastic Compute Cloud - Compute", "USE1-BoxUsage:m5.large", {INSTANCES}),
        ("Amazon Elastic Compute Cloud - Compute", None, {INSTANCES}),
        ("EC2 - Other", "USE1-EBS:VolumeUsage.gp2", {INSTANCES, UNATTACHED, GP2, ADDRESSES}),
        ("Amazon Elastic Block Store", None, {UNATTACHED, GP2}),
        ("Amazon Virtual Private Cloud", "USE1-PublicIPv4:IdleAddress", {ADDRESSES}),
        ("  Amazon Relational Database Service ", "USE1-InstanceUsage:db.t3.medium", {DATABASES}),
        ("AmazonRDS", None, {DATABASES}),
        ("Amazon Simple Storage Service", None, None),  # nothing costguard handles
        ("Amazon Relational Database Service", "USE1-BoxUsage:m5.large", None),  # an EC2 usage type elsewhere
    ],
)
def test_the_kinds_a_scope_is_scanned_for(service: str | None, usage_type: str | None, kinds: set[str] | None) -> None:
    assert kinds_of(Scope(service=service, usage_type=usage_type)) == (None if kinds is None else frozenset(kinds))
