"""One read-only scan of a Region for every kind of waste costguard handles: idle instances, unattached and gp2
volumes, free Elastic IPs, idle databases. `costguard observe` and the watcher's periodic scan (`--scan-every`)
use it.

A kind that cannot be read (no `rds:DescribeDBInstances` permission, the RDS endpoint unreachable, ...) is left
out, logged and named in the result; the other kinds are still scanned.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import structlog

from costguard.app.scan import scan
from costguard.app.scan_waste import free_addresses, gp2_volumes, idle_databases, unattached_volumes
from costguard.errors import CostguardError
from costguard.policy import Policy
from costguard.state import Alert
from costguard.tools.cloud import Ec2Cloud
from costguard.tools.cloud.errors import mapped_errors
from costguard.tools.pricing import PriceList

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class RegionScan:
    """The alerts found, and the kinds that could not be read (with why)."""

    alerts: list[Alert]
    unreadable: dict[str, str]

    @property
    def note(self) -> str:
        found = f"{len(self.alerts)} alert(s)"
        if not self.unreadable:
            return found
        return f"{found}; not read: " + "; ".join(f"{kind} ({why})" for kind, why in self.unreadable.items())


INSTANCES, UNATTACHED, GP2, ADDRESSES, DATABASES = (
    "instances",
    "unattached volumes",
    "gp2 volumes",
    "Elastic IPs",
    "databases",
)
EVERY_KIND: frozenset[str] = frozenset({INSTANCES, UNATTACHED, GP2, ADDRESSES, DATABASES})


def scan_region(
    cloud: Ec2Cloud,
    prices: PriceList,
    *,
    region: str,
    now: datetime,
    policy: Policy | None = None,
    cpu_idle_threshold_pct: float = 10.0,
    kinds: frozenset[str] = EVERY_KIND,
    instance_types: frozenset[str] | None = None,
) -> RegionScan:
    """The `kinds` asked for (instances only of `instance_types`, if given), each on its own: one that fails does
    not take the others with it."""
    rules = policy or Policy()
    idle_pct = cpu_idle_threshold_pct
    parts: dict[str, Callable[[], list[Alert]]] = {
        INSTANCES: lambda: scan(
            cloud, prices, region=region, now=now, cpu_idle_threshold_pct=idle_pct, instance_types=instance_types
        ),
        UNATTACHED: lambda: unattached_volumes(cloud, prices, region=region, now=now, policy=rules),
        GP2: lambda: gp2_volumes(cloud, prices, region=region, now=now, policy=rules),
        ADDRESSES: lambda: free_addresses(cloud, prices, region=region, now=now, policy=rules),
        DATABASES: lambda: idle_databases(cloud, prices, region=region, now=now, policy=rules, cpu_idle_pct=idle_pct),
    }
    alerts: list[Alert] = []
    unreadable: dict[str, str] = {}
    for kind, part in parts.items():
        if kind not in kinds:
            continue
        try:
            with mapped_errors(f"scanning {kind} in {region}"):
                alerts += part()
        except CostguardError as exc:
            why = f"{type(exc).__name__}: {exc}"[:300]
            log.warning("scan_kind_unreadable", kind=kind, region=region, error=why)
            unreadable[kind] = why
    return RegionScan(alerts, unreadable)
