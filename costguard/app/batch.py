"""Batches of alerts: JSONL lines to alerts (or named errors), and the batch report.

A bad line never stops a batch: it becomes an `invalid_input` outcome with its line number and reason.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from costguard.app.sources import Ignored, InvalidMessage, ResourceAlert, ScopeAlert, parse_message
from costguard.errors import InvalidAlert
from costguard.nodes import outcome
from costguard.state import ALERT_ID_MAX, Alert, Outcome, alert_problems

SourceItem = ResourceAlert | ScopeAlert | Ignored
# keys that mark a line as one of AWS's messages (an SNS envelope, an EventBridge event, a raw anomaly or alarm)
MESSAGE_MARKERS = ("Type", "detail-type", "anomalyId", "AlarmName")


def parse_line(line: str, number: int) -> Alert | SourceItem:
    """One JSONL line: costguard's own alert, or one of AWS's alert messages (see costguard.app.sources)."""
    data = _json_object(line, number)
    if "alert_id" not in data and any(key in data for key in MESSAGE_MARKERS):
        try:
            parsed = parse_message(line)
        except InvalidMessage as exc:
            raise InvalidAlert(number, exc.reason) from exc
        return parsed
    return _alert(data, number)


def parse_alert_line(line: str, number: int) -> Alert:
    """One JSONL line to an Alert, or InvalidAlert naming the line and the problem."""
    return _alert(_json_object(line, number), number)


def _json_object(line: str, number: int) -> dict[str, Any]:
    try:
        data = json.loads(line)
    except json.JSONDecodeError as exc:
        raise InvalidAlert(number, f"not valid JSON ({exc.msg} at column {exc.colno})") from exc
    if not isinstance(data, dict):
        raise InvalidAlert(number, f"expected a JSON object, got {type(data).__name__}")
    return data


def _alert(data: dict[str, Any], number: int) -> Alert:
    try:
        return Alert.model_validate(data)
    except ValidationError as exc:
        raise InvalidAlert(number, alert_problems(exc), readable_alert_id(data)) from exc


def readable_alert_id(data: dict[str, Any]) -> str | None:
    """The line's `alert_id` when it is a usable one, so an invalid alert is reported under its own name."""
    value = data.get("alert_id")
    if isinstance(value, str) and 0 < len(value) <= ALERT_ID_MAX:
        return value
    return None


def read_alerts(path: Path) -> Iterator[Alert | InvalidAlert | SourceItem]:
    """Every non-blank line of the file: an Alert, an AWS alert message, or the InvalidAlert describing it."""
    with path.open(encoding="utf-8", errors="replace") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                yield parse_line(line, number)
            except InvalidAlert as exc:
                yield exc


def invalid_outcome(error: InvalidAlert) -> Outcome:
    """The outcome of a line that is not an alert: under its own alert_id when it has one, else `line-<n>`."""
    return outcome.invalid(error.alert_id or f"line-{error.line}", error.reason, line=error.line)


def batch_report(outcomes: list[Outcome]) -> dict[str, Any]:
    """The article's graceful degradation: what succeeded is kept; failures are listed with their error."""
    failures = [o for o in outcomes if o.status == "failed"]
    status = "success" if not failures else ("failed" if len(failures) == len(outcomes) else "partial_success")
    return {
        "status": status,
        "total": len(outcomes),
        "by_status": dict(sorted(Counter(o.status for o in outcomes).items())),
        "failures": [
            {"alert_id": o.alert_id, "thread_id": o.thread_id, "error_class": o.error_class, "reason": o.reason}
            for o in failures
        ],
        "outcomes": [o.model_dump(mode="json") for o in outcomes],
    }
