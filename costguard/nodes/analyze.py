"""analyze: the model proposes a Decision. It never acts and never sees credentials.

An answer that is not a valid Decision becomes `investigate` at confidence 0, with the raw
reply kept in the state for debugging.
"""

from __future__ import annotations

import json
from typing import Any

import openai
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
from langgraph.runtime import Runtime
from pydantic import ValidationError

from costguard.context import Deps
from costguard.errors import ModelUnavailable
from costguard.state import CostState, Decision, DecisionParameters, Facts
from costguard.tools.llm import SYSTEM_PROMPT, decision_schema, render_data, structured
from costguard.tools.pricing import PriceList

MAX_RAW_CHARS = 4000


def resize_candidates(facts: Facts | None, prices: PriceList, limit: int = 4) -> list[str]:
    """Cheaper types of the same architecture, the nearest first."""
    if facts is None or not facts.instance_type:
        return []
    current = prices.hourly(facts.instance_type, facts.region)
    arch = facts.architecture or prices.architecture(facts.instance_type)
    if current is None or arch is None:
        return []
    cheaper = [
        (current - price, name)
        for name in prices.known_types()
        if prices.architecture(name) == arch
        and (price := prices.hourly(name, facts.region)) is not None
        and price < current
    ]
    return [name for _, name in sorted(cheaper)[:limit]]


def build_messages(state: CostState, prices: PriceList) -> list[SystemMessage | HumanMessage]:
    alert = state["alert"]
    facts = state.get("facts")
    data: dict[str, Any] = {
        "alert": alert.model_dump(mode="json"),
        "facts": facts.model_dump(mode="json", exclude={"volume_ids"}) if facts else None,
        "resize_candidates": resize_candidates(facts, prices),
        "findings": state.get("findings", []),
    }
    return [
        SystemMessage(SYSTEM_PROMPT),
        HumanMessage(f"<alert_data>\n{render_data(data)}\n</alert_data>\nPropose your decision."),
    ]


def _raw_text(raw: object) -> str:
    if isinstance(raw, AIMessage):
        if raw.tool_calls:
            return json.dumps([call["args"] for call in raw.tool_calls], default=str)[:MAX_RAW_CHARS]
        return str(raw.content)[:MAX_RAW_CHARS]
    return repr(raw)[:MAX_RAW_CHARS]


def fallback(instance_id: str, why: str) -> Decision:
    return Decision(
        action="investigate",
        confidence=0.0,
        reasoning=f"model answer unusable: {why}"[:4000],
        parameters=DecisionParameters(instance_id=instance_id),
        requires_approval=True,
    )


def analyze(state: CostState, runtime: Runtime[Deps]) -> dict[str, Any]:
    deps = runtime.context
    alert = state["alert"]
    runnable = structured(deps.model, decision_schema(alert.instance_id), deps.structured_method)
    try:
        reply = runnable.invoke(build_messages(state, deps.prices))
    except (openai.APIConnectionError, openai.RateLimitError, openai.InternalServerError, TimeoutError) as exc:
        raise ModelUnavailable(f"{type(exc).__name__}: {exc}") from exc
    raw = _raw_text(reply.get("raw"))
    parsed = reply.get("parsed")
    if parsed is None:
        error = reply.get("parsing_error")
        return {"decision": fallback(alert.instance_id, f"unparsable ({error})"), "raw_model_output": raw}
    try:
        decision = Decision.model_validate(parsed)
    except ValidationError as exc:
        first = exc.errors()[0]
        why = f"invalid {'.'.join(str(p) for p in first['loc'])}: {first['msg']}"
        return {"decision": fallback(alert.instance_id, why), "raw_model_output": raw}
    return {"decision": decision, "raw_model_output": raw}
