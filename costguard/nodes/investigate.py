"""investigate: a read-only deeper look whose findings go back to analyze."""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from costguard.context import Deps
from costguard.nodes import story
from costguard.state import CostState


def investigate(state: CostState, runtime: Runtime[Deps]) -> dict[str, Any]:
    alert = state["alert"]
    facts = state.get("facts")
    region = facts.region if facts else (alert.region or "")
    round_no = state.get("investigation_rounds", 0) + 1
    findings = runtime.context.cloud.kind(alert.resource_type).investigate(alert.resource_id, region)
    return {
        "investigation_rounds": round_no,
        "findings": [f"round {round_no}: {finding}" for finding in findings],
        "messages": [story.findings_message(round_no, findings)],
    }
