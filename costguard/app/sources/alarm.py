"""CloudWatch alarms: only a transition into ALARM acts, and only an alarm on one EC2 instance names a resource.

- new state OK or INSUFFICIENT_DATA, or ALARM after ALARM: Ignored, with the state in the reason;
- an `InstanceId` dimension (on any of the alarm's metrics): a ResourceAlert for that instance; several distinct
  instances (a metric-math alarm over a fleet) say nothing about which one is at fault: Ignored;
- no instance but the `AWS/Billing` `EstimatedCharges` metric: a ScopeAlert on the account, narrowed by the
  `ServiceName` and `LinkedAccount` dimensions when the alarm has them;
- any other alarm (latency, errors, a composite alarm) is not a cost signal costguard can place: Ignored.
https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/monitor_estimated_charges_with_cloudwatch.html
"""

from __future__ import annotations

import re
from typing import Any

from costguard.app.sources import alarm_event, alarm_sns
from costguard.app.sources.alarm_change import AlarmChange, Metric
from costguard.app.sources.envelope import EventBridgeEvent
from costguard.app.sources.errors import InvalidMessage
from costguard.app.sources.ids import alarm_source_id
from costguard.app.sources.results import SUMMARY_MAX, Ignored, ResourceAlert, Scope, ScopeAlert
from costguard.app.sources.text import one_line, quoted
from costguard.state import INSTANCE_ID_PATTERN

KIND = "cloudwatch_alarm"
BILLING_METRIC = ("AWS/Billing", "EstimatedCharges")
_INSTANCE_ID = re.compile(INSTANCE_ID_PATTERN)
_ACCOUNT = re.compile(r"\d{12}", re.ASCII)


def _instances(change: AlarmChange) -> list[str]:
    found = sorted({value for metric in change.metrics for key, value in metric.dimensions if key == "InstanceId"})
    for value in found:
        if not _INSTANCE_ID.fullmatch(value):
            raise InvalidMessage(f"alarm's InstanceId dimension {quoted(value, 40)} is not an EC2 instance id")
    return found


def _summary(change: AlarmChange, subject: str) -> str:
    metric = next((m for m in change.metrics if m.name), None)
    text = f"CloudWatch alarm {one_line(change.name, 120)} went {change.old_state or 'unknown'} -> ALARM on {subject}"
    text += f" ({metric.namespace or '?'} {metric.name})" if metric else ""
    text += f": {one_line(change.reason, 400)}" if change.reason else ""
    text += f" (alarm description: {one_line(change.description, 200)})" if change.description else ""
    return one_line(text, SUMMARY_MAX)


def _billing_scope(metric: Metric) -> Scope:
    dimensions = dict(metric.dimensions)
    linked = dimensions.get("LinkedAccount")
    if linked is not None and not _ACCOUNT.fullmatch(linked):
        raise InvalidMessage(f"billing alarm's LinkedAccount {quoted(linked, 20)} is not an account id")
    service = one_line(dimensions.get("ServiceName", ""), 200) or None
    return Scope(linked_account=linked, service=service)


def decide(change: AlarmChange) -> ResourceAlert | ScopeAlert | Ignored:
    """What an alarm state change asks of costguard."""
    source_id = alarm_source_id(change.arn, change.changed_at)
    if change.new_state != "ALARM":
        return Ignored(reason=f"state {change.new_state}, not ALARM", source_id=source_id)
    if change.old_state == "ALARM":
        return Ignored(reason="state ALARM, already ALARM before: not a transition into ALARM", source_id=source_id)
    instances = _instances(change)
    if len(instances) > 1:
        reason = f"alarm watches {len(instances)} EC2 instances, so it names no single one to act on"
        return Ignored(reason=reason, source_id=source_id)
    if instances:
        return ResourceAlert(
            source_kind=KIND,
            source_id=source_id,
            resource_id=instances[0],
            region=change.region,
            account=change.account,
            summary=_summary(change, instances[0]),
            observed_at=change.changed_at,
        )
    billing = [metric for metric in change.metrics if (metric.namespace, metric.name) == BILLING_METRIC]
    if not billing:
        reason = "alarm has no InstanceId dimension and is not a billing alarm: it names no resource or spend"
        return Ignored(reason=reason, source_id=source_id)
    return ScopeAlert(
        source_kind=KIND,
        source_id=source_id,
        account=change.account,
        scopes=tuple(dict.fromkeys(_billing_scope(metric) for metric in billing)),
        summary=_summary(change, f"account {change.account} estimated charges"),
        observed_at=change.changed_at,
    )


def from_message(payload: dict[str, Any]) -> ResourceAlert | ScopeAlert | Ignored:
    return decide(alarm_sns.from_sns(payload))


def from_event(event: EventBridgeEvent) -> ResourceAlert | ScopeAlert | Ignored:
    return decide(alarm_event.from_event(event))
