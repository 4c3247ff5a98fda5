"""What several nodes share: the thread they run in."""

from __future__ import annotations

from langgraph.config import get_config

from costguard.state import CostState, thread_id_for


def config_thread_id() -> str:
    return str(get_config().get("configurable", {}).get("thread_id") or "")


def current_thread_id(state: CostState) -> str:
    """The run's thread id (from the config), else the one derived from the alert."""
    return config_thread_id() or thread_id_for(state["alert"].alert_id)
