"""The alert's story as chat messages: what chat front ends (agent-chat-ui, Studio) show of a thread.

A few short lines, one per step that matters: the alert, the facts, the proposal, the rails' verdict, who it waits
for, the answer, the outcome. Kept small (every checkpoint holds them); text from outside (the alert's summary,
the model's reasoning) is cut short and never trusted.
"""

from __future__ import annotations

from langchain_core.messages import AIMessage, HumanMessage

from costguard.state import Alert, Decision, Facts, Outcome, Plan, Schedule, Verdict

SHORT = 160  # characters of outside text in a message
WHY = {
    "savings_over_threshold": "the savings are over the approval threshold",
    "phase_requires_approval": "the policy's phase asks a person for every action",
    "low_confidence": "the model is not confident",
    "model_requested_approval": "the model asked for a person",
    "savings_unknown": "the savings are unknown",
    "utilization_unknown": "the CPU utilisation is unknown",
    "instance_busy": "it is busy",
    "production_instance": "it is tagged production",
    "irreversible_action": "it cannot be undone",
    "autonomy_not_earned": "plans of this kind have not earned autonomy yet (costguard autonomy)",
}


def _cut(text: str, limit: int = SHORT) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _money(value: float | None) -> str:
    return "unknown" if value is None else f"${value:,.2f}/month"


def alert_message(alert: Alert) -> HumanMessage:
    where = f" in {alert.region}" if alert.region else ""
    cost = f", {_money(alert.monthly_cost_usd)}" if alert.monthly_cost_usd is not None else ""
    said = f": {_cut(alert.summary)}" if alert.summary else ""
    return HumanMessage(f"Cost alert {alert.alert_id} ({alert.kind}) on {alert.resource_id}{where}{cost}{said}")


def facts_message(facts: Facts) -> AIMessage:
    if not facts.exists:
        return AIMessage(f"{facts.resource_id} does not exist in {facts.region}.", name="gather")
    cpu = "unknown" if facts.cpu_avg_pct is None else f"{facts.cpu_avg_pct:g}%"
    monthly = None if facts.hourly_price_usd is None else facts.hourly_price_usd * 730
    tags = "unreadable" if facts.tags is None else ", ".join(f"{k}={v}" for k, v in list(facts.tags.items())[:5])
    return AIMessage(
        f"{facts.resource_id}: {_what(facts, cpu)}, {_money(monthly)}; tags: {_cut(tags, 120) or 'none'}", name="gather"
    )


def _what(facts: Facts, cpu: str) -> str:
    """The facts that matter for the kind, in a few words."""
    if facts.resource_type == "volume":
        attached = ", ".join(facts.attached_to or ()) or "nothing"
        return (
            f"{facts.volume_type} volume, {facts.size_gib} GiB, {facts.state}, attached to {attached}, "
            f"unused {facts.unused_days} day(s)"
        )
    if facts.resource_type == "address":
        return f"Elastic IP {facts.public_ip}, {facts.state}"
    if facts.resource_type == "db_instance":
        conns = "unknown" if facts.connections_max is None else f"{facts.connections_max:g}"
        return f"{facts.engine} {facts.instance_type}, {facts.state}, CPU {cpu}, at most {conns} connection(s)"
    return f"{facts.instance_type}, {facts.state}, CPU {cpu} (24 h average)"


def proposal_message(decision: Decision, unusable: bool) -> AIMessage:
    if unusable:
        return AIMessage(f"The model's answer was unusable: {_cut(decision.reasoning)}", name="analyze")
    target = f" to {decision.parameters.target_instance_type}" if decision.action == "resize" else ""
    return AIMessage(
        f"Proposal: {decision.action}{target} (confidence {decision.confidence:.2f}). {_cut(decision.reasoning)}",
        name="analyze",
    )


def findings_message(round_no: int, findings: list[str]) -> AIMessage:
    return AIMessage(f"Looked deeper (round {round_no}): {_cut('; '.join(findings), 300)}", name="investigate")


def verdict_message(verdict: Verdict, plan: Plan | None) -> AIMessage:
    if verdict.route == "human_review" and plan is not None:
        why = "; ".join(WHY.get(reason, reason) for reason in plan.approval_reasons) or "the policy asks for one"
        text = f"Rails passed; a person must approve ({why}) before {plan.expires_at:%Y-%m-%d %H:%M} UTC."
    elif verdict.route == "execute":
        text = f"Rails passed; {verdict.reason}."
    else:
        text = f"Rails: {verdict.reason}."
    return AIMessage(text, name="validate")


def scheduled_message(plan: Plan, schedule: Schedule, how: str) -> AIMessage:
    told = f"its owner {schedule.owner} was told" if schedule.owner else "no owner tag: the webhook was told"
    return AIMessage(
        f"Allowed to act alone after a grace period: {plan.action} of {plan.resource_id} at "
        f"{schedule.due_at:%Y-%m-%d %H:%M:%S} UTC; {told}; {how}.",
        name="grace",
    )


def answer_message(reviewer: str | None, decision: str, note: str = "") -> HumanMessage:
    said = f": {_cut(note)}" if note else ""
    return HumanMessage(f"{decision}{said}", name=_name(reviewer))


def refusal_message(reason: str) -> AIMessage:
    return AIMessage(f"Answer refused: {_cut(reason, 300)}. The plan is still waiting.", name="human_review")


def ended_message(reason: str) -> AIMessage:
    return AIMessage(f"The review is over: {_cut(reason, 300)}.", name="human_review")


def outcome_message(outcome: Outcome) -> AIMessage:
    return AIMessage(f"Outcome: {outcome.status}. {_cut(outcome.reason, 300)}", name="report")


def _name(identity: str | None) -> str | None:
    # OpenAI-style message names allow [A-Za-z0-9_-] only
    return None if not identity else "".join(c if c.isalnum() or c in "_-" else "_" for c in identity)[:64]
