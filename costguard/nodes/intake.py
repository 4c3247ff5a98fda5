"""intake: the alert as it arrives (an Alert, or JSON from the API server), checked against the schema."""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime
from pydantic import ValidationError

from costguard.context import Deps
from costguard.nodes import outcome, story
from costguard.nodes.common import config_thread_id
from costguard.state import Alert, CostState, alert_problems


def intake(state: CostState, runtime: Runtime[Deps]) -> dict[str, Any]:
    raw: object = state.get("alert")
    if isinstance(raw, Alert):
        return {"messages": [story.alert_message(raw)]}
    try:
        alert = Alert.model_validate(raw)
    except ValidationError as exc:
        problems = alert_problems(exc)
        alert_id = raw.get("alert_id") if isinstance(raw, dict) else None
        reason = problems if raw is not None else "the input has no `alert`"
        thread_id = config_thread_id()
        invalid = outcome.invalid(alert_id if isinstance(alert_id, str) else "", reason, thread_id=thread_id)
        return {"outcome": invalid, "messages": [story.outcome_message(invalid)]}
    return {"alert": alert, "messages": [story.alert_message(alert)]}
