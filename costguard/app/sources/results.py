"""What one queue message becomes: an alert about one resource, an alert about a scope, or a named refusal to act.

A message yields exactly one result. An anomaly with several root causes is one ScopeAlert with several scopes:
it is one source, with one id, whose outcome summarises the threads its fan-out starts.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from costguard.state import INSTANCE_ID_PATTERN, Alert

SourceKind = Literal["cost_anomaly", "cloudwatch_alarm", "aws_budgets"]
ACCOUNT_PATTERN = r"^\d{12}$"
REGION_PATTERN = r"^[a-z]{2}(?:-[a-z]+)+-\d{1,2}$"
SOURCE_ID_MAX = 2100  # an anomaly id may be 1,024 characters, an alarm ARN about 300
SUMMARY_MAX = 1000


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Scope(_Strict):
    """One slice of spend a scope alert names; None in a field means "any"."""

    linked_account: str | None = Field(default=None, pattern=ACCOUNT_PATTERN)
    region: str | None = Field(default=None, pattern=REGION_PATTERN)
    service: str | None = Field(default=None, min_length=1, max_length=200)
    usage_type: str | None = Field(default=None, min_length=1, max_length=200)
    impact_usd: float | None = Field(default=None, allow_inf_nan=False)  # this slice's own share, when AWS gives it


class BudgetFigures(_Strict):
    """The figures of an AWS Budgets notification; the name is the budget owner's free text."""

    name: str = Field(min_length=1, max_length=100)
    alert_type: Literal["ACTUAL", "FORECASTED"]
    amount_usd: float = Field(allow_inf_nan=False)
    budgeted_usd: float | None = Field(default=None, allow_inf_nan=False)
    threshold_usd: float | None = Field(default=None, allow_inf_nan=False)
    threshold_percent: float | None = Field(default=None, allow_inf_nan=False)


class ScopeAlert(_Strict):
    """Spend in an account, Region, service or usage type, to be expanded by a read-only scan into resource alerts."""

    source_kind: SourceKind
    source_id: str = Field(min_length=1, max_length=SOURCE_ID_MAX)
    account: str | None = Field(default=None, pattern=ACCOUNT_PATTERN)  # None: the account costguard runs in
    scopes: tuple[Scope, ...] = Field(min_length=1)
    impact_usd: float | None = Field(default=None, allow_inf_nan=False)  # anomaly: total impact; budget: the amount
    summary: str = Field(max_length=SUMMARY_MAX)
    observed_at: datetime | None = None
    budget: BudgetFigures | None = None


class ResourceAlert(_Strict):
    """An alert about one resource: today an EC2 instance named by a CloudWatch alarm."""

    source_kind: SourceKind
    source_id: str = Field(min_length=1, max_length=SOURCE_ID_MAX)
    resource_type: Literal["ec2_instance"] = "ec2_instance"
    resource_id: str = Field(pattern=INSTANCE_ID_PATTERN)
    region: str = Field(pattern=REGION_PATTERN)
    account: str | None = Field(default=None, pattern=ACCOUNT_PATTERN)
    monthly_cost_usd: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    summary: str = Field(max_length=SUMMARY_MAX)
    observed_at: datetime | None = None


class Ignored(_Strict):
    """A well-formed message that asks for nothing (an alarm going back to OK, an SNS confirmation), and why."""

    reason: str = Field(min_length=1, max_length=300)
    source_id: str = Field(min_length=1, max_length=SOURCE_ID_MAX)


Parsed = ResourceAlert | ScopeAlert | Alert | Ignored


def source_id_of(item: Parsed) -> str:
    """The stable id of any result; costguard's own alerts keep their alert_id."""
    return item.alert_id if isinstance(item, Alert) else item.source_id
