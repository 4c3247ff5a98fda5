"""Stable ids: the same alert, however often and by whichever route it arrives, gets the same id.

A source id derives from the source's own stable id (the anomaly id; the alarm ARN and its state-change time;
the SNS MessageId for AWS Budgets, which has none of its own). A thread key is a source id made safe for a
LangGraph thread id and an alert_id: short, no whitespace, long or unusual ids replaced by a digest.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from datetime import UTC, datetime

THREAD_KEY_MAX = 100
_SAFE_KEY = re.compile(rf"[A-Za-z0-9._:@+=-]{{1,{THREAD_KEY_MAX}}}")
_KIND = re.compile(r"[a-z][a-z0-9_]{0,31}")
_UUID_NAMESPACE = uuid.UUID("6f2b1a9e-3c1d-5e8f-9a7b-0c4d2e6f8a10")  # costguard's own, fixed forever


def digest(text: str) -> str:
    """SHA-256 hex of `text`; lone surrogates (possible in JSON strings) are hashed, not refused."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def utc_millis(moment: datetime) -> str:
    """A time as one fixed spelling (UTC, milliseconds, `Z`), so `+0000` and `Z` forms of it agree."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def anomaly_source_id(anomaly_id: str) -> str:
    return f"cost_anomaly:{anomaly_id}"


def alarm_source_id(alarm_arn: str, changed_at: datetime) -> str:
    return f"cloudwatch_alarm:{alarm_arn}@{utc_millis(changed_at)}"


def sns_source_id(kind: str, message_id: str) -> str:
    return f"{kind}:sns:{message_id}"


def text_source_id(kind: str, text: str) -> str:
    """For a message that carries no id at all (Budgets by raw delivery): its whitespace-normalised text."""
    return f"{kind}:text:{digest(' '.join(text.split()))[:40]}"


def thread_key(source_id: str) -> str:
    """A source id as a thread key: itself when short and plain, else `<kind>~<digest>` (`~` never occurs in
    a plain key, so the two forms cannot collide)."""
    if _SAFE_KEY.fullmatch(source_id):
        return source_id
    kind = source_id.split(":", 1)[0]
    return f"{kind if _KIND.fullmatch(kind) else 'id'}~{digest(source_id)[:40]}"


def thread_uuid(source_id: str) -> uuid.UUID:
    """A source id as a UUID, for servers whose thread ids must be UUIDs (the LangGraph API server)."""
    return uuid.uuid5(_UUID_NAMESPACE, digest(source_id))
