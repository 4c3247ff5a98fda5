"""costguard's own alert JSON, arriving on the queue like AWS's messages: validated as the public Alert."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from costguard.app.sources.errors import InvalidMessage
from costguard.state import Alert, alert_problems


def from_message(payload: dict[str, Any]) -> Alert:
    try:
        return Alert.model_validate(payload)
    except ValidationError as exc:
        raise InvalidMessage(f"costguard alert: {alert_problems(exc)}") from exc
