"""A resource alert as costguard's public Alert, the input of one graph thread."""

from __future__ import annotations

from costguard.app.sources.ids import thread_key
from costguard.app.sources.results import ResourceAlert
from costguard.state import Alert

ALERT_SUMMARY_MAX = 4000


def to_alert(alert: ResourceAlert) -> Alert:
    """The Alert for an EC2 instance resource alert; its alert_id is the thread key of the source id, so a
    redelivered message starts the same thread."""
    return Alert(
        alert_id=thread_key(alert.source_id),
        instance_id=alert.resource_id,
        region=alert.region,
        monthly_cost_usd=alert.monthly_cost_usd,
        kind=alert.source_kind,
        summary=alert.summary[:ALERT_SUMMARY_MAX],
        observed_at=alert.observed_at,
    )
