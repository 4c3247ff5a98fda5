"""Scope alerts fan out: an anomaly or a budget names spend, not a resource; a read-only scan of that scope finds
the resources to look at, each then a thread of its own, linked to the source alert.

The scan is the `observe` scan restricted to the scope: the Regions it names (else costguard's own), the EC2
compute service (any other service has no resource kind costguard handles yet: nothing to look at), and the
instance type a `BoxUsage` usage type names. Nothing here acts: every candidate goes through the whole graph.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from costguard.app.scan import scan
from costguard.app.sources import ScopeAlert, thread_key
from costguard.state import ALERT_ID_MAX, Alert
from costguard.tools.cloud import Ec2Cloud
from costguard.tools.pricing import PriceList

# Cost Explorer's service names for EC2 instances' own spend (the SERVICE dimension), and the short forms
EC2_SERVICES = frozenset(
    {"amazon elastic compute cloud - compute", "amazon elastic compute cloud", "amazonec2", "ec2", "ec2 - other"}
)
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


def expand(source: ScopeAlert, cloud: Ec2Cloud, prices: PriceList, *, default_region: str, now: datetime) -> FanOut:
    """The candidates of every scope of the alert, each once (several scopes may name the same Region)."""
    wanted: dict[str, set[str | None]] = {}  # Region -> instance types (None: any)
    skipped: list[str] = []
    for scope in source.scopes:
        if scope.service is not None and scope.service.strip().lower() not in EC2_SERVICES:
            skipped.append(scope.service)
            continue
        wanted.setdefault(scope.region or default_region, set()).add(instance_type_of(scope.usage_type))
    alerts: dict[str, Alert] = {}
    for region, types in sorted(wanted.items()):
        only = None if None in types else frozenset(t for t in types if t is not None)
        for found in scan(cloud, prices, region=region, now=now, instance_types=only):
            child = found.model_copy(
                update={
                    "alert_id": child_alert_id(source.source_id, found.resource_id),
                    "kind": source.source_kind,
                    "summary": f"{source.summary} | {found.summary}"[:4000],
                }
            )
            alerts.setdefault(child.alert_id, child)
    regions = ", ".join(sorted(wanted)) or "none"
    note = f"scanned {regions}: {len(alerts)} candidate(s)"
    if skipped:
        note += f"; no resource kind handled for {', '.join(sorted(set(skipped)))}"
    return FanOut(list(alerts.values()), note)
