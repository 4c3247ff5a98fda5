"""AWS Cost Anomaly Detection: the SNS message of an IMMEDIATE subscription and the `aws.ce` EventBridge event.

Both carry the same anomaly; the SNS form spells the dimension `dimensionalValue`, the event's detail
`dimensionValue`. An anomaly names where spend rose (root causes: service, Region, usage type, linked account),
never a resource, so it becomes one ScopeAlert whose scopes are its root causes.
https://docs.aws.amazon.com/cost-management/latest/userguide/cad-eventbridge.html
https://docs.aws.amazon.com/aws-cost-management/latest/APIReference/API_Anomaly.html
https://docs.aws.amazon.com/aws-cost-management/latest/APIReference/API_RootCause.html
"""

from __future__ import annotations

from typing import Any

from pydantic import AliasChoices, Field

from costguard.app.sources.envelope import EventBridgeEvent
from costguard.app.sources.ids import anomaly_source_id
from costguard.app.sources.regions import normalize_region
from costguard.app.sources.results import SUMMARY_MAX, Scope, ScopeAlert
from costguard.app.sources.text import one_line
from costguard.app.sources.wire import Name, OptAccountId, OptText, Time, Usd, Wire, read

KIND = "cost_anomaly"
EVENT_SOURCE = "aws.ce"
EVENT_DETAIL_TYPE = "Anomaly Detected"
FIELD_MAX = 200


class _RootCauseImpact(Wire):
    contribution: Usd | None = None


class _RootCause(Wire):
    service: OptText = None
    region: OptText = None
    usage_type: OptText = Field(default=None, alias="usageType")
    linked_account: OptAccountId = Field(default=None, alias="linkedAccount")
    impact: _RootCauseImpact | None = None


class _Impact(Wire):
    total_impact: Usd = Field(alias="totalImpact")


class _Anomaly(Wire):
    anomaly_id: Name = Field(alias="anomalyId")
    account_id: OptAccountId = Field(default=None, alias="accountId")
    start: Time | None = Field(default=None, alias="anomalyStartDate")
    end: Time | None = Field(default=None, alias="anomalyEndDate")
    dimension: OptText = Field(default=None, validation_alias=AliasChoices("dimensionalValue", "dimensionValue"))
    impact: _Impact
    root_causes: list[_RootCause] | None = Field(default=None, alias="rootCauses")


def _clip(value: str | None) -> str | None:
    text = one_line(value, FIELD_MAX) if value is not None else ""
    return text or None


def _scope(cause: _RootCause) -> Scope:
    return Scope(
        linked_account=cause.linked_account,
        region=normalize_region(cause.region),
        service=_clip(cause.service),
        usage_type=_clip(cause.usage_type),
        impact_usd=cause.impact.contribution if cause.impact else None,
    )


def _describe(scope: Scope) -> str:
    return "/".join(part for part in (scope.service, scope.region, scope.usage_type, scope.linked_account) if part)


def _alert(anomaly: _Anomaly, account: str | None) -> ScopeAlert:
    # An anomaly without root causes still names its account: the scope is the whole account.
    scopes = tuple(dict.fromkeys(_scope(cause) for cause in anomaly.root_causes or ())) or (Scope(),)
    dimension = _clip(anomaly.dimension)
    summary = f"AWS Cost Anomaly Detection: ${anomaly.impact.total_impact:,.2f} unexpected spend"
    summary += f" on {dimension}" if dimension else ""
    summary += f" from {anomaly.start:%Y-%m-%d}" if anomaly.start else ""
    causes = [_describe(scope) for scope in scopes if _describe(scope)]
    summary += f"; root causes: {', '.join(causes)}" if causes else ""
    return ScopeAlert(
        source_kind=KIND,
        source_id=anomaly_source_id(anomaly.anomaly_id),
        account=account,
        scopes=scopes,
        impact_usd=anomaly.impact.total_impact,
        summary=one_line(summary, SUMMARY_MAX),
        observed_at=anomaly.end or anomaly.start,
    )


def from_message(payload: dict[str, Any]) -> ScopeAlert:
    """The anomaly an IMMEDIATE subscription publishes to SNS (also what raw delivery puts on the queue)."""
    anomaly = read(_Anomaly, payload, "Cost Anomaly Detection message")
    return _alert(anomaly, anomaly.account_id)


def from_event(event: EventBridgeEvent) -> ScopeAlert:
    """The `aws.ce` / `Anomaly Detected` event; its account is the event's when the detail names none."""
    anomaly = read(_Anomaly, event.detail, "Cost Anomaly Detection event detail")
    return _alert(anomaly, anomaly.account_id or event.account)
