"""Observe, for the kinds other than instances: unattached and gp2 EBS volumes, free Elastic IPs, idle databases.

Read calls only (DescribeVolumes, DescribeVolumesModifications, DescribeAddresses, DescribeDBInstances,
GetMetricStatistics). Alert ids are deterministic per resource, kind and day, as for instances.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import structlog
from pydantic import ValidationError

from costguard.app.scan import name_tag
from costguard.policy import Policy, hourly_price
from costguard.policy.kinds import gp3_savings
from costguard.state import Alert, Facts, validation_problems
from costguard.tools.cloud import Ec2Cloud
from costguard.tools.pricing import PriceList

log = structlog.get_logger(__name__)
UNATTACHED_KIND = "unattached_volume"
GP2_KIND = "gp2_volume"
ADDRESS_KIND = "idle_address"
DATABASE_KIND = "idle_database"
_PREFIX = {UNATTACHED_KIND: "unattached", GP2_KIND: "gp2", ADDRESS_KIND: "eip", DATABASE_KIND: "idledb"}


def _volume_ids(cloud: Ec2Cloud, region: str, name: str, values: list[str]) -> Iterator[str]:
    pages = cloud.ec2(region).get_paginator("describe_volumes").paginate(Filters=[{"Name": name, "Values": values}])
    for page in pages:
        for volume in page.get("Volumes", []):
            yield volume["VolumeId"]


def scan_waste(
    cloud: Ec2Cloud,
    prices: PriceList,
    *,
    region: str,
    now: datetime,
    cpu_idle_threshold_pct: float = 10.0,
    min_gp2_savings_usd: float = 1.0,
    policy: Policy | None = None,
) -> list[Alert]:
    """Alerts for the waste that is not an idle instance; a small gp2 volume (a root disk) is not worth one."""
    policy = policy or Policy()
    return [
        *unattached_volumes(cloud, prices, region=region, now=now, policy=policy),
        *gp2_volumes(cloud, prices, region=region, now=now, policy=policy, min_savings_usd=min_gp2_savings_usd),
        *free_addresses(cloud, prices, region=region, now=now, policy=policy),
        *idle_databases(cloud, prices, region=region, now=now, policy=policy, cpu_idle_pct=cpu_idle_threshold_pct),
    ]


def unattached_volumes(
    cloud: Ec2Cloud, prices: PriceList, *, region: str, now: datetime, policy: Policy
) -> list[Alert]:
    """Volumes attached to nothing (`available`)."""
    alerts: list[Alert] = []
    volumes = cloud.kind("volume")
    for vid in _volume_ids(cloud, region, "status", ["available"]):
        facts = volumes.describe(vid, region)
        if facts.exists and facts.state == "available":
            _keep(alerts, _alert(facts, UNATTACHED_KIND, prices, policy, now, _volume_line(facts)))
    return alerts


def gp2_volumes(
    cloud: Ec2Cloud, prices: PriceList, *, region: str, now: datetime, policy: Policy, min_savings_usd: float = 1.0
) -> list[Alert]:
    """gp2 volumes in use that would cost at least `min_savings_usd` a month less as gp3."""
    alerts: list[Alert] = []
    volumes = cloud.kind("volume")
    for vid in _volume_ids(cloud, region, "volume-type", ["gp2"]):
        facts = volumes.describe(vid, region)
        if not facts.exists or facts.state != "in-use" or facts.size_gib is None:
            continue  # an unattached gp2 volume has its own alert
        saves = gp3_savings(facts, prices)
        if saves is not None and saves >= min_savings_usd:
            line = f"{_volume_line(facts)}; as gp3, as fast, it would cost ${saves:,.2f}/month less"
            _keep(alerts, _alert(facts, GP2_KIND, prices, policy, now, line))
    return alerts


def free_addresses(cloud: Ec2Cloud, prices: PriceList, *, region: str, now: datetime, policy: Policy) -> list[Alert]:
    """Elastic IPs associated with nothing."""
    alerts: list[Alert] = []
    addresses = cloud.kind("address")
    for address in cloud.ec2(region).describe_addresses().get("Addresses", []):
        if address.get("AssociationId") or "AllocationId" not in address:
            continue
        facts = addresses.describe(address["AllocationId"], region)
        if facts.exists and facts.association_id == "":
            line = f"Elastic IP {facts.public_ip} ({facts.resource_id}) in {region} is associated with nothing"
            _keep(alerts, _alert(facts, ADDRESS_KIND, prices, policy, now, line))
    return alerts


def idle_databases(
    cloud: Ec2Cloud, prices: PriceList, *, region: str, now: datetime, policy: Policy, cpu_idle_pct: float = 10.0
) -> list[Alert]:
    """Available DB instances with low CPU and no more connections than the policy allows."""
    alerts: list[Alert] = []
    databases = cloud.kind("db_instance")
    for page in cloud.rds(region).get_paginator("describe_db_instances").paginate():
        for db in page.get("DBInstances", []):
            if db.get("DBInstanceStatus") != "available":
                continue
            facts = databases.describe(db["DBInstanceIdentifier"], region)
            busy_cpu = facts.cpu_avg_pct is not None and facts.cpu_avg_pct >= cpu_idle_pct
            used = facts.connections_max is not None and facts.connections_max > policy.idle_db_max_connections
            if facts.exists and not busy_cpu and not used:
                _keep(alerts, _alert(facts, DATABASE_KIND, prices, policy, now, _db_line(facts)))
    return alerts


def _keep(alerts: list[Alert], alert: Alert | None) -> None:
    if alert is not None:
        alerts.append(alert)


def _volume_line(facts: Facts) -> str:
    attached = ", ".join(facts.attached_to or ()) or "nothing"
    unused = "unknown" if facts.unused_days is None else f"{facts.unused_days:g} day(s)"
    return (
        f"{facts.volume_type} volume {facts.resource_id} ({facts.size_gib} GiB) in {facts.region}, "
        f"Name={name_tag(facts) or '(no Name tag)'!r}: {facts.state}, attached to {attached}, no I/O for {unused}"
    )


def _db_line(facts: Facts) -> str:
    cpu = "unknown" if facts.cpu_avg_pct is None else f"{facts.cpu_avg_pct:.1f}%"
    conns = "unknown" if facts.connections_max is None else f"{facts.connections_max:g}"
    return (
        f"{facts.engine} {facts.instance_type} DB instance {facts.resource_id} in {facts.region}: "
        f"average CPU {cpu}, at most {conns} connection(s) over 24 h"
    )


def _alert(facts: Facts, kind: str, prices: PriceList, policy: Policy, now: datetime, summary: str) -> Alert | None:
    hourly = hourly_price(prices, facts, policy)
    day = now.astimezone(UTC) if now.tzinfo is not None else now
    try:
        return _make_alert(facts, kind, hourly, policy, now, day, summary)
    except ValidationError as exc:  # an id costguard cannot name: skipped, said, the scan goes on
        log.warning("scan_skipped_resource", resource_id=facts.resource_id[:100], error=validation_problems(exc))
        return None


def _make_alert(
    facts: Facts, kind: str, hourly: float | None, policy: Policy, now: datetime, day: datetime, summary: str
) -> Alert:
    return Alert(
        alert_id=f"{_PREFIX[kind]}-{facts.resource_id}-{day:%Y%m%d}",
        resource_id=facts.resource_id,
        resource_type=facts.resource_type,
        region=facts.region,
        monthly_cost_usd=None if hourly is None else round(hourly * policy.hours_per_month, 2),
        kind=kind,
        summary=summary[:4000],
        observed_at=now,
    )
