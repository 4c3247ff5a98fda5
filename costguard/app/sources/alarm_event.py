"""CloudWatch alarm state changes as EventBridge delivers them (`aws.cloudwatch` / `CloudWatch Alarm State Change`).

Dimensions are an object per metric; the alarm's ARN is its one CloudWatch alarm entry in `resources`.
https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/cloudwatch-and-eventbridge.html
"""

from __future__ import annotations

from pydantic import Field

from costguard.app.sources.alarm_change import ALARM_ARN, AlarmChange, Metric, State, arn_parts
from costguard.app.sources.envelope import EventBridgeEvent
from costguard.app.sources.errors import InvalidMessage
from costguard.app.sources.wire import Name, OptText, Text, Time, Wire, read

EVENT_SOURCE = "aws.cloudwatch"
EVENT_DETAIL_TYPE = "CloudWatch Alarm State Change"


class _EventMetric(Wire):
    namespace: Text | None = None
    name: Text | None = None
    dimensions: dict[str, Text] | None = None


class _EventMetricStat(Wire):
    metric: _EventMetric


class _EventQuery(Wire):
    metric_stat: _EventMetricStat | None = Field(default=None, alias="metricStat")


class _EventConfiguration(Wire):
    description: OptText = None
    metrics: list[_EventQuery] | None = None


class _EventState(Wire):
    value: State
    reason: OptText = None
    timestamp: Time


class _EventPreviousState(Wire):
    value: State


class _EventAlarm(Wire):
    name: Name = Field(alias="alarmName")
    state: _EventState
    previous_state: _EventPreviousState | None = Field(default=None, alias="previousState")
    configuration: _EventConfiguration | None = None


def from_event(event: EventBridgeEvent) -> AlarmChange:
    """The `CloudWatch Alarm State Change` event; the alarm's ARN is its one CloudWatch alarm resource."""
    raw = read(_EventAlarm, event.detail, "CloudWatch alarm event detail")
    arns = [arn for arn in event.resources if ALARM_ARN.fullmatch(arn)]
    if len(arns) != 1:
        raise InvalidMessage(f"alarm event lists {len(arns)} CloudWatch alarm ARNs in resources, expected 1")
    region, account = arn_parts(arns[0])
    if region != event.region or (event.account is not None and account != event.account):
        raise InvalidMessage("alarm ARN disagrees with the event's region or account")
    configuration = raw.configuration or _EventConfiguration()
    metrics = tuple(
        Metric(
            namespace=q.metric_stat.metric.namespace,
            name=q.metric_stat.metric.name,
            dimensions=tuple((q.metric_stat.metric.dimensions or {}).items()),
        )
        for q in configuration.metrics or ()
        if q.metric_stat
    )
    return AlarmChange(
        name=raw.name,
        arn=arns[0],
        account=account,
        region=region,
        new_state=raw.state.value,
        old_state=raw.previous_state.value if raw.previous_state else None,
        changed_at=raw.state.timestamp,
        reason=raw.state.reason,
        description=configuration.description,
        metrics=metrics,
    )
