"""Alert sources: SQS message bodies from SNS, EventBridge and costguard itself, read into alerts.

Pure functions, no I/O: `parse_message` turns one body into one result; the watcher decides what to run.
"""

from costguard.app.sources.convert import to_alert
from costguard.app.sources.envelope import EventBridgeEvent, SnsNotification, Unwrapped, unwrap
from costguard.app.sources.errors import InvalidMessage
from costguard.app.sources.ids import thread_key, thread_uuid
from costguard.app.sources.parse import parse_message
from costguard.app.sources.regions import display_name, region_code
from costguard.app.sources.results import (
    BudgetFigures,
    Ignored,
    Parsed,
    ResourceAlert,
    Scope,
    ScopeAlert,
    SourceKind,
    source_id_of,
)

__all__ = [
    "BudgetFigures",
    "EventBridgeEvent",
    "Ignored",
    "InvalidMessage",
    "Parsed",
    "ResourceAlert",
    "Scope",
    "ScopeAlert",
    "SnsNotification",
    "SourceKind",
    "Unwrapped",
    "display_name",
    "parse_message",
    "region_code",
    "source_id_of",
    "thread_key",
    "thread_uuid",
    "to_alert",
    "unwrap",
]
