"""One queue message in, one result out: the entry point of the alert sources.

Every message is either understood (an alert, or a named reason to do nothing) or an InvalidMessage with a
one-line reason; nothing else escapes, whatever the body holds.
"""

from __future__ import annotations

from typing import Any

from costguard.app.sources import alarm, alarm_event, anomaly, native
from costguard.app.sources.budget import parse_budget
from costguard.app.sources.budget_text import is_budget_text
from costguard.app.sources.envelope import EventBridgeEvent, unwrap
from costguard.app.sources.errors import InvalidMessage
from costguard.app.sources.ids import sns_source_id
from costguard.app.sources.results import Ignored, Parsed
from costguard.app.sources.text import one_line, quoted

# The key that marks each payload a queue may carry without an envelope (or inside SNS).
_MARKERS = {"anomalyId": "anomaly", "AlarmName": "alarm", "alert_id": "alert"}


def _from_event(event: EventBridgeEvent) -> Parsed:
    kind = (event.source, event.detail_type)
    if kind == (anomaly.EVENT_SOURCE, anomaly.EVENT_DETAIL_TYPE):
        return anomaly.from_event(event)
    if kind == (alarm_event.EVENT_SOURCE, alarm_event.EVENT_DETAIL_TYPE):
        return alarm.from_event(event)
    raise InvalidMessage(f"unsupported EventBridge event {quoted(event.source, 40)} / {quoted(event.detail_type, 60)}")


def _from_object(payload: dict[str, Any]) -> Parsed:
    kinds = [kind for key, kind in _MARKERS.items() if key in payload]
    if len(kinds) > 1:
        raise InvalidMessage(f"message matches more than one format ({', '.join(kinds)})")
    if kinds == ["anomaly"]:
        return anomaly.from_message(payload)
    if kinds == ["alarm"]:
        return alarm.from_message(payload)
    if kinds == ["alert"]:
        return native.from_message(payload)
    keys = one_line(", ".join(sorted(str(key) for key in payload)[:6]), 120)
    raise InvalidMessage(f"unrecognised JSON message (keys: {keys or 'none'})")


def parse_message(body: str) -> Parsed:
    """What one SQS message body asks of costguard. Raises InvalidMessage, and only that, when it cannot tell."""
    opened = unwrap(body)
    sns = opened.sns
    if sns is not None and sns.type != "Notification":
        reason = f"SNS {sns.type} message, not a notification"
        return Ignored(reason=reason, source_id=sns_source_id("sns", sns.message_id))
    if opened.event is not None:
        return _from_event(opened.event)
    if isinstance(opened.payload, dict):
        return _from_object(opened.payload)
    if is_budget_text(opened.payload):
        return parse_budget(opened.payload, sns)
    where = "SNS Message is" if sns is not None else "message body is"
    raise InvalidMessage(f"{where} neither JSON nor an AWS Budgets notification")
