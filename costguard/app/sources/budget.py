"""AWS Budgets notifications: plain text, not JSON, published to SNS.

AWS documents the notification's fields (ACTUAL or FORECASTED, a threshold) but not the text's layout; the lines
read here are the ones Budgets writes (`Budget Name: …`, `Budgeted Amount: $1,000.00`, `Alert Type: ACTUAL`,
`Alert Threshold: > $800.00`, `ACTUAL Amount: $1,234.56`, `AWS Account 123456789012`). A line that is present must
read cleanly; a line that is missing is simply not known, except the name and the amount the alert is about.
https://docs.aws.amazon.com/cost-management/latest/userguide/budgets-sns-policy.html
https://docs.aws.amazon.com/aws-cost-management/latest/APIReference/API_budgets_Notification.html
"""

from __future__ import annotations

import re
from typing import Literal

from costguard.app.sources.budget_text import account_named, fields_of, notified_on
from costguard.app.sources.envelope import SnsNotification
from costguard.app.sources.errors import InvalidMessage
from costguard.app.sources.ids import sns_source_id, text_source_id
from costguard.app.sources.money import parse_threshold, parse_usd
from costguard.app.sources.results import SUMMARY_MAX, BudgetFigures, Ignored, Scope, ScopeAlert
from costguard.app.sources.text import one_line, quoted

AlertType = Literal["ACTUAL", "FORECASTED"]
KIND = "aws_budgets"
NAME_MAX = 100  # AWS's own limit on budget names
_ALERT_TYPES: dict[str, AlertType] = {"ACTUAL": "ACTUAL", "FORECASTED": "FORECASTED"}


def _alert_type(fields: dict[str, str]) -> AlertType:
    declared = fields.get("alert_type")
    if declared is not None:
        kind = _ALERT_TYPES.get(declared.upper())
        if kind is None:
            raise InvalidMessage(f"budget Alert Type {quoted(declared, 30)} is neither ACTUAL nor FORECASTED")
        return kind
    amounts = [kind for kind in _ALERT_TYPES.values() if kind.lower() in fields]
    if len(amounts) != 1:
        raise InvalidMessage("budget notification has no Alert Type and not exactly one ACTUAL or FORECASTED Amount")
    return amounts[0]


def _usd(fields: dict[str, str], key: str, label: str) -> float | None:
    if key not in fields:
        return None
    value = parse_usd(fields[key])
    if value is None:
        raise InvalidMessage(f"budget {label} {quoted(fields[key], 30)} is not a dollar amount")
    return value


def _account(text: str, sns: SnsNotification | None) -> str | None:
    named = account_named(text)
    if named is not None:
        return named
    # Budgets publishes only to topics in the budget's own account (cross-account SNS is unsupported).
    topic_account = sns.topic_arn.split(":")[4] if sns and sns.topic_arn.count(":") >= 5 else ""
    return topic_account if re.fullmatch(r"\d{12}", topic_account, re.ASCII) else None


def _summary(figures: BudgetFigures) -> str:
    parts = [f"AWS Budgets: {figures.name}: {figures.alert_type} ${figures.amount_usd:,.2f}"]
    if figures.budgeted_usd is not None:
        parts.append(f"of ${figures.budgeted_usd:,.2f} budgeted")
    if figures.threshold_usd is not None:
        parts.append(f"(alert threshold ${figures.threshold_usd:,.2f})")
    elif figures.threshold_percent is not None:
        parts.append(f"(alert threshold {figures.threshold_percent:g}%)")
    return one_line(" ".join(parts), SUMMARY_MAX)


def parse_budget(text: str, sns: SnsNotification | None) -> ScopeAlert | Ignored:
    """A Budgets notification as an account-wide scope alert (the text names no narrower scope)."""
    fields = fields_of(text)
    source_id = sns_source_id(KIND, sns.message_id) if sns is not None else text_source_id(KIND, text)
    budget_type = fields.get("type")
    if budget_type is not None and budget_type.lower() != "cost":
        return Ignored(reason=f"budget type {quoted(budget_type, 40)} is not a cost budget", source_id=source_id)
    name = one_line(fields.get("name", ""), NAME_MAX)
    if not name:
        raise InvalidMessage("budget notification has an empty Budget Name")
    alert_type = _alert_type(fields)
    amount = _usd(fields, alert_type.lower(), f"{alert_type} Amount")
    if amount is None:
        raise InvalidMessage(f"budget notification has no {alert_type} Amount line")
    threshold = parse_threshold(fields["threshold"]) if "threshold" in fields else (None, None)
    if threshold is None:
        raise InvalidMessage(f"budget Alert Threshold {quoted(fields['threshold'], 30)} is not an amount or percent")
    figures = BudgetFigures(
        name=name,
        alert_type=alert_type,
        amount_usd=amount,
        budgeted_usd=_usd(fields, "budgeted", "Budgeted Amount"),
        threshold_usd=threshold[0],
        threshold_percent=threshold[1],
    )
    return ScopeAlert(
        source_kind=KIND,
        source_id=source_id,
        account=_account(text, sns),
        scopes=(Scope(),),
        impact_usd=amount,
        summary=_summary(figures),
        observed_at=notified_on(text) or (sns.timestamp if sns is not None else None),
        budget=figures,
    )
