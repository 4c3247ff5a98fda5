"""Scope alerts fan out: an anomaly or a budget names spend, not a resource; a read-only scan of that scope finds
the resources to look at, each then a thread of its own, linked to the source alert.

The scan is the `observe` scan restricted to the scope: the Regions it names (else costguard's own), the kinds whose
spend the service carries (Cost Explorer's SERVICE names: EC2 compute → instances; EC2 - Other → instances, EBS
volumes and Elastic IPs; Amazon Virtual Private Cloud → Elastic IPs, whose public IPv4 charge it carries since
2024; Amazon Relational Database Service → databases; no service → every kind), and the instance type a `BoxUsage`
usage type names (then instances only). Nothing here acts: every candidate goes through the whole graph.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from costguard.app.scan_region import ADDRESSES, DATABASES, EVERY_KIND, GP2, INSTANCES, UNATTACHED, scan_region
from costguard.app.sources import Scope, ScopeAlert, thread_key
from costguard.policy import Policy
from costguard.state import ALERT_ID_MAX, Alert
from costguard.tools.cloud import Ec2Cloud
from costguard.tools.pricing import PriceList

# Cost Explorer's service names (the SERVICE dimension), and the short forms, with the kinds they are billed for
_COMPUTE = frozenset({INSTANCES})
SERVICE_KINDS: dict[str, frozenset[str]] = {
    **dict.fromkeys(
        ("amazon elastic compute cloud - compute", "amazon elastic compute cloud", "amazonec2", "ec2"), _COMPUTE
    ),
    "ec2 - other": frozenset({INSTANCES, UNATTACHED, GP2, ADDRESSES}),
    **dict.fromkeys(("amazon elastic block store", "ebs"), frozenset({UNATTACHED, GP2})),
    **dict.fromkeys(("amazon virtual private cloud", "amazonvpc", "vpc"), frozenset({ADDRESSES})),
    **dict.fromkeys(("amazon relational database service", "amazonrds", "rds"), frozenset({DATABASES})),
}
EC2_SERVICES = frozenset(name for name, kinds in SERVICE_KINDS.items() if INSTANCES in kinds)
_BOX_USAGE = re.compile(r"(?:^|-)(?:BoxUsage|SpotUsage|DedicatedUsage):([a-z0-9]+\.[a-z0-9]+)$")


@dataclass(frozen=True)
class FanOut:
    """The alerts a scope expands into, and why the scope yields no more (or nothing)."""

    alerts: list[Alert]
    note: str


def child_alert_id(source_id: str, instance_id: str) -> str:
    """One child per source and resource: a redelivered message starts the same threads."""
    return f"{thread_key(source_id)}/{instance_id}"[:ALERT_ID_MAX]


def instance_type_of(usage_type: str | None) -> str | None:
    """`USE1-BoxUsage:m5.large` → `m5.large`; None when the usage type names no instance type."""
    found = _BOX_USAGE.search(usage_type or "")
    return found.group(1) if found else None


def kinds_of(scope: Scope) -> frozenset[str] | None:
    """The kinds a scope's spend can come from; None when costguard handles none of them."""
    if instance_type_of(scope.usage_type) is not None:
        return _COMPUTE if scope.service is None or scope.service.strip().lower() in EC2_SERVICES else None
    if scope.service is None:
        return EVERY_KIND
    return SERVICE_KINDS.get(scope.service.strip().lower())


def expand(
    source: ScopeAlert,
    cloud: Ec2Cloud,
    prices: PriceList,
    *,
    default_region: str,
    now: datetime,
    policy: Policy | None = None,
) -> FanOut:
    """The candidates of every scope of the alert, each once (several scopes may name the same Region)."""
    kinds: dict[str, set[str]] = {}  # Region -> kinds
    types: dict[str, set[str | None]] = {}  # Region -> instance types (None: any)
    skipped: list[str] = []
    for scope in source.scopes:
        found = kinds_of(scope)
        if found is None:
            skipped.append(scope.service or scope.usage_type or "?")
            continue
        region = scope.region or default_region
        kinds.setdefault(region, set()).update(found)
        if INSTANCES in found:
            types.setdefault(region, set()).add(instance_type_of(scope.usage_type))
    alerts: dict[str, Alert] = {}
    unreadable: list[str] = []
    for region, wanted in sorted(kinds.items()):
        asked = types.get(region, {None})
        only = None if None in asked else frozenset(t for t in asked if t is not None)
        scanned = scan_region(
            cloud, prices, region=region, now=now, policy=policy, kinds=frozenset(wanted), instance_types=only
        )
        unreadable += [f"{kind} in {region} ({why})" for kind, why in scanned.unreadable.items()]
        for found_alert in scanned.alerts:
            child = found_alert.model_copy(
                update={
                    "alert_id": child_alert_id(source.source_id, found_alert.resource_id),
                    "kind": source.source_kind,
                    "summary": f"{source.summary} | {found_alert.summary}"[:4000],
                }
            )
            alerts.setdefault(child.alert_id, child)
    regions = ", ".join(sorted(kinds)) or "none"
    note = f"scanned {regions}: {len(alerts)} candidate(s)"
    if unreadable:
        note += "; not read: " + "; ".join(unreadable)
    if skipped:
        note += f"; no resource kind handled for {', '.join(sorted(set(skipped)))}"
    return FanOut(list(alerts.values()), note)
