"""CloudWatch alarm state changes as an alarm action publishes them to SNS.

The Region comes as a display name ("US East (N. Virginia)"); dimensions are `{"name", "value"}` pairs under
`Trigger`, or for metric-math alarms under `Trigger.Metrics[].MetricStat.Metric`. Older messages carry no AlarmArn:
it is then built from the account, the Region and the name.
https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/Notify_Users_Alarm_Changes.html
https://github.com/aws/aws-lambda-go/blob/main/events/testdata/cloudwatch-alarm-sns-payload-single-metric.json
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from costguard.app.sources.alarm_change import AlarmChange, Metric, State, arn_parts
from costguard.app.sources.errors import InvalidMessage
from costguard.app.sources.regions import region_code
from costguard.app.sources.text import quoted
from costguard.app.sources.wire import AccountId, Name, OptText, Text, Time, Wire, read


class _Dimension(Wire):
    name: Text
    value: Text


class _SnsMetric(Wire):
    namespace: Text | None = Field(default=None, alias="Namespace")
    metric_name: Text | None = Field(default=None, alias="MetricName")
    dimensions: list[_Dimension] | None = Field(default=None, alias="Dimensions")


class _SnsMetricStat(Wire):
    metric: _SnsMetric = Field(alias="Metric")


class _SnsQuery(Wire):
    metric_stat: _SnsMetricStat | None = Field(default=None, alias="MetricStat")


class _SnsTrigger(_SnsMetric):
    metrics: list[_SnsQuery] | None = Field(default=None, alias="Metrics")


class _SnsAlarm(Wire):
    name: Name = Field(alias="AlarmName")
    description: OptText = Field(default=None, alias="AlarmDescription")
    account: AccountId | None = Field(default=None, alias="AWSAccountId")
    new_state: State = Field(alias="NewStateValue")
    old_state: State | None = Field(default=None, alias="OldStateValue")
    reason: OptText = Field(default=None, alias="NewStateReason")
    changed_at: Time = Field(alias="StateChangeTime")
    region: OptText = Field(default=None, alias="Region")
    arn: Name | None = Field(default=None, alias="AlarmArn")
    trigger: _SnsTrigger | None = Field(default=None, alias="Trigger")


def _sns_metric(metric: _SnsMetric) -> Metric:
    pairs = tuple((d.name, d.value) for d in metric.dimensions or ())
    return Metric(namespace=metric.namespace, name=metric.metric_name, dimensions=pairs)


def _sns_arn(raw: _SnsAlarm) -> tuple[str, str, str]:
    named_region = region_code(raw.region) if raw.region else None
    if raw.arn is None:
        if raw.region and named_region is None:
            raise InvalidMessage(f"alarm Region {quoted(raw.region)} is not a known Region name")
        if named_region is None or raw.account is None:
            raise InvalidMessage("alarm has no AlarmArn, and no AWSAccountId and Region to name it by")
        return f"arn:aws:cloudwatch:{named_region}:{raw.account}:alarm:{raw.name}", named_region, raw.account
    region, account = arn_parts(raw.arn)
    if named_region is not None and named_region != region:
        raise InvalidMessage(f"alarm Region {quoted(raw.region or '')} disagrees with its ARN's {region}")
    if raw.account is not None and raw.account != account:
        raise InvalidMessage(f"alarm AWSAccountId {raw.account} disagrees with its ARN's {account}")
    return raw.arn, region, account


def from_sns(payload: dict[str, Any]) -> AlarmChange:
    """The JSON an alarm action publishes to SNS."""
    raw = read(_SnsAlarm, payload, "CloudWatch alarm message")
    arn, region, account = _sns_arn(raw)
    trigger = raw.trigger
    metrics: list[Metric] = []
    if trigger is not None:
        if trigger.metric_name or trigger.namespace or trigger.dimensions:
            metrics.append(_sns_metric(trigger))
        metrics += [_sns_metric(q.metric_stat.metric) for q in trigger.metrics or () if q.metric_stat]
    return AlarmChange(
        name=raw.name,
        arn=arn,
        account=account,
        region=region,
        new_state=raw.new_state,
        old_state=raw.old_state,
        changed_at=raw.changed_at,
        reason=raw.reason,
        description=raw.description,
        metrics=tuple(metrics),
    )
