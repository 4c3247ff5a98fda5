"""Phase 1, observe: scan a region's running instances and write cost alerts, taking no action.

Only read calls reach the cloud (DescribeInstances, DescribeInstanceAttribute,
GetMetricStatistics). Each alert is deterministic per instance and day, so a rescan on the same
day yields the same alert ids (and, once processed, the same threads).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path

from costguard.state import Alert, Facts
from costguard.tools.cloud import Ec2Cloud
from costguard.tools.pricing import PriceList

IDLE_KIND = "idle_instance"
UNKNOWN_KIND = "unknown_utilization"
_NAME_MAX = 200
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


def running_instance_ids(cloud: Ec2Cloud, region: str) -> Iterator[str]:
    """Every running instance of the region, page by page."""
    pages = (
        cloud.ec2(region)
        .get_paginator("describe_instances")
        .paginate(Filters=[{"Name": "instance-state-name", "Values": ["running"]}])
    )
    for page in pages:
        for reservation in page.get("Reservations", []):
            for instance in reservation.get("Instances", []):
                if "InstanceId" in instance:
                    yield instance["InstanceId"]


def scan(
    cloud: Ec2Cloud,
    prices: PriceList,
    *,
    region: str,
    now: datetime,
    cpu_idle_threshold_pct: float = 10.0,
    hours_per_month: float = 730,
    instance_types: frozenset[str] | None = None,
) -> list[Alert]:
    """An alert for each running instance (of `instance_types`, if given) whose 24 h average CPU is under the
    threshold or unknown."""
    alerts: list[Alert] = []
    for instance_id in running_instance_ids(cloud, region):
        facts = cloud.describe(instance_id, region)
        if not facts.exists or facts.state != "running":
            continue  # gone or stopped between the listing and the look
        if instance_types is not None and facts.instance_type not in instance_types:
            continue
        if facts.cpu_avg_pct is not None and facts.cpu_avg_pct >= cpu_idle_threshold_pct:
            continue
        alerts.append(_alert(facts, prices, now=now, threshold=cpu_idle_threshold_pct, hours=hours_per_month))
    return alerts


def alert_id_for(instance_id: str, kind: str, now: datetime) -> str:
    """Deterministic per instance, kind and (UTC) day."""
    prefix = "idle" if kind == IDLE_KIND else "nocpu"
    day = now.astimezone(UTC) if now.tzinfo is not None else now
    return f"{prefix}-{instance_id}-{day:%Y%m%d}"


def monthly_cost(facts: Facts, prices: PriceList, hours_per_month: float) -> float | None:
    """The instance's on-demand cost per month from the price list; None when its price is unknown."""
    if facts.instance_type is None:
        return None
    hourly = prices.hourly(facts.instance_type, facts.region)
    return None if hourly is None else round(hourly * hours_per_month, 2)


def name_tag(facts: Facts) -> str:
    """The Name tag on one line, trimmed (tags are untrusted text)."""
    raw = (facts.tags or {}).get("Name", "")
    return _CONTROL.sub(" ", raw).strip()[:_NAME_MAX]


def summary_for(facts: Facts, threshold: float) -> str:
    """One factual line: type, average CPU, Name tag."""
    name = name_tag(facts) or "(no Name tag)"
    kind = facts.instance_type or "unknown type"
    if facts.cpu_avg_pct is None:
        cpu = "CPU utilisation unknown (no CloudWatch data in 24 h)"
    else:
        cpu = f"average CPU {facts.cpu_avg_pct:.1f}% over 24 h (idle threshold {threshold:g}%)"
    return f"{kind} {facts.resource_id} in {facts.region}, Name={name!r}: {cpu}"


def _alert(facts: Facts, prices: PriceList, *, now: datetime, threshold: float, hours: float) -> Alert:
    kind = UNKNOWN_KIND if facts.cpu_avg_pct is None else IDLE_KIND
    return Alert(
        alert_id=alert_id_for(facts.resource_id, kind, now),
        instance_id=facts.resource_id,
        region=facts.region,
        monthly_cost_usd=monthly_cost(facts, prices, hours),
        kind=kind,
        summary=summary_for(facts, threshold),
        observed_at=now,
    )


def alert_line(alert: Alert) -> str:
    """One alert as one JSON line (no trailing newline), in the form `parse_alert_line` reads."""
    return json.dumps(alert.model_dump(mode="json", exclude_none=True), ensure_ascii=False)


def write_jsonl(alerts: Iterable[Alert], path: Path) -> int:
    """Write one JSON object per line, atomically (a temporary file renamed); returns the count."""
    lines = [alert_line(alert) for alert in alerts]
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    os.replace(tmp, path)
    return len(lines)
