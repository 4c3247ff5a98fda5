"""analyze: the model proposes a Decision. It never acts and never sees credentials.

An answer that is not a valid Decision becomes `investigate` at confidence 0, with the raw
reply kept in the state for debugging (a valid answer is the Decision: nothing else is kept).
"""

from __future__ import annotations

import json
import time
from datetime import timedelta
from typing import Any

from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
from langgraph.runtime import Runtime
from pydantic import ValidationError

from costguard.context import Deps
from costguard.errors import ModelUnavailable
from costguard.nodes import story
from costguard.nodes.common import current_thread_id
from costguard.state import KIND_ACTIONS, CostState, Decision, Facts, canonical_json, sha256_hex, unusable_decision
from costguard.tools.llm.model import KIND_GUIDE, SYSTEM_PROMPT, decision_schema, render_data, structured
from costguard.tools.pricing import PriceList
from costguard.tools.telemetry import ModelCallRecord

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


def offered_actions(state: CostState) -> tuple[str, ...] | None:
    """A volume's actions as its facts leave them open (delete when unattached, resize when gp2), so that a small
    model chooses between the two well; None (the kind's own actions) for every other kind. The rails still
    decide: an address's release, say, stays on offer, and an associated one is refused, visibly and audited."""
    facts = state.get("facts")
    if facts is None or not facts.exists or facts.resource_type != "volume":
        return None
    return tuple(
        a
        for a in KIND_ACTIONS["volume"]
        if (a == "delete" and facts.attached_to == () and facts.state == "available")
        or (a == "resize" and facts.volume_type == "gp2")
    )


def build_messages(state: CostState, prices: PriceList) -> list[SystemMessage | HumanMessage]:
    alert = state["alert"]
    facts = state.get("facts")
    data: dict[str, Any] = {
        # no alert_id or timestamp: the same facts make the same prompt (and hit the decision cache)
        "alert": alert.model_dump(mode="json", exclude={"alert_id", "observed_at"}),
        "facts": facts.model_dump(mode="json", exclude={"volume_ids"}) if facts else None,
        "resize_candidates": resize_candidates(facts, prices),
        "findings": state.get("findings", []),
    }
    ask = "Propose your decision." if alert.resource_type == "instance" else KIND_GUIDE[alert.resource_type]
    return [
        SystemMessage(SYSTEM_PROMPT),
        HumanMessage(f"<alert_data>\n{render_data(data)}\n</alert_data>\n{ask}"),
    ]


def _raw_text(raw: object) -> str:
    if isinstance(raw, AIMessage):
        if raw.tool_calls:
            return json.dumps([call["args"] for call in raw.tool_calls], default=str)[:MAX_RAW_CHARS]
        return str(raw.content)[:MAX_RAW_CHARS]
    return repr(raw)[:MAX_RAW_CHARS]


def estimate_tokens(text: str) -> int:
    """~4 characters a token: used only when the server reports no usage (no tokenizer download)."""
    return max(1, -(-len(text) // 4))


def prompt_hash(messages: list[SystemMessage | HumanMessage], model: str) -> str:
    return sha256_hex(canonical_json([model, *(str(m.content) for m in messages)]))[:32]


def _usage(raw: object, messages: list[SystemMessage | HumanMessage], text: str) -> tuple[int, int]:
    usage = raw.usage_metadata if isinstance(raw, AIMessage) else None
    if usage:
        return usage["input_tokens"], usage["output_tokens"]
    return estimate_tokens("".join(str(m.content) for m in messages)), estimate_tokens(text)


def analyze(state: CostState, runtime: Runtime[Deps]) -> dict[str, Any]:
    deps = runtime.context
    alert = state["alert"]
    thread_id = current_thread_id(state)
    messages = build_messages(state, deps.prices)
    model_name = str(getattr(deps.model, "model_name", None) or deps.model._llm_type)
    key = prompt_hash(messages, model_name)
    now = deps.clock()
    ttl = timedelta(seconds=deps.policy.decision_cache_ttl_s)
    cached = deps.telemetry.cached_decision(key, ttl, now)
    if cached is not None and cached.parameters.target_id == alert.resource_id:
        deps.telemetry.model_call(
            ModelCallRecord(
                thread_id, model_name, key, 0.0, schema_valid=True, prompt_tokens=0, completion_tokens=0, cached=True
            )
        )
        return {"decision": cached, "raw_model_output": None, "messages": [story.proposal_message(cached, False)]}

    runnable = structured(deps.model, decision_schema(alert, offered_actions(state)), deps.structured_method)
    started = time.perf_counter()
    try:
        reply = runnable.invoke(messages)
    except Exception as exc:
        cause = exc.__cause__ if isinstance(exc, ModelUnavailable) and exc.__cause__ is not None else exc
        deps.telemetry.model_call(
            ModelCallRecord(
                thread_id,
                model_name,
                key,
                time.perf_counter() - started,
                schema_valid=False,
                error=type(cause).__name__,
            )
        )
        raise
    latency = time.perf_counter() - started
    raw = _raw_text(reply.get("raw"))
    decision, problem = _validated(reply)
    prompt_tokens, completion_tokens = _usage(reply.get("raw"), messages, raw)
    deps.telemetry.model_call(
        ModelCallRecord(
            thread_id,
            model_name,
            key,
            latency,
            schema_valid=decision is not None,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
        )
    )
    if decision is None:
        unusable = unusable_decision(alert, problem or "no decision")
        return {"decision": unusable, "raw_model_output": raw, "messages": [story.proposal_message(unusable, True)]}
    deps.telemetry.remember_decision(key, decision, now)
    # a usable answer is the decision itself: the raw reply is kept only when it could not be used
    return {"decision": decision, "raw_model_output": None, "messages": [story.proposal_message(decision, False)]}


def _validated(reply: dict[str, Any]) -> tuple[Decision | None, str | None]:
    """The Decision, or why the reply is not one."""
    parsed = reply.get("parsed")
    if parsed is None:
        return None, f"unparsable ({reply.get('parsing_error')})"
    try:
        return Decision.model_validate(parsed), None
    except ValidationError as exc:
        first = exc.errors()[0]
        return None, f"invalid {'.'.join(str(p) for p in first['loc'])}: {first['msg']}"
