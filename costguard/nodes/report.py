"""report: the alert's Outcome, recorded in the thread index and the audit trail (once, however often it runs)."""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from costguard.context import Deps
from costguard.nodes import outcome, story
from costguard.nodes.common import current_thread_id
from costguard.state import CostState


def report(state: CostState, runtime: Runtime[Deps]) -> dict[str, Any]:
    deps = runtime.context
    ended = outcome.from_state(state, current_thread_id(state), outcome.agent_version(deps.policy))
    approval = state.get("approval")
    outcome.record(
        deps.store, ended, actor="costguard:report", authorized_by=approval.authorized_by if approval else None
    )
    return {"outcome": ended, "messages": [story.outcome_message(ended)]}
