"""gather: the resource's facts from the cloud (its kind's module), priced from the shipped price list."""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from costguard.context import Deps
from costguard.nodes import story
from costguard.policy import hourly_price
from costguard.state import CostState


def gather(state: CostState, runtime: Runtime[Deps]) -> dict[str, Any]:
    deps = runtime.context
    alert = state["alert"]
    facts = deps.cloud.kind(alert.resource_type).describe(alert.resource_id, alert.region or "")
    if facts.exists and (facts.resource_type != "instance" or facts.instance_type):
        price = hourly_price(deps.prices, facts, deps.policy)
        gaps = facts.gaps if price is not None else (*facts.gaps, "hourly_price")
        facts = facts.model_copy(update={"hourly_price_usd": price, "gaps": gaps})
    return {"facts": facts, "messages": [story.facts_message(facts)]}
