"""How `costguard demo` shows its result: tables for a person, one JSON object for machines (CLI layer)."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.prompt import Prompt
from rich.table import Table

from costguard.app.runner import PendingReview
from costguard.sandbox.demo import DemoResult, ReviewChoice
from costguard.state import Outcome


def _outcome(o: Outcome) -> dict[str, Any]:
    return o.model_dump(mode="json", exclude={"line"})


def demo_json(result: DemoResult) -> dict[str, Any]:
    return {
        "started": result.started,
        "cloud_endpoint": result.cloud_endpoint,
        "model_endpoint": result.model_endpoint,
        "fleet": [
            {"name": f.name, "instance_id": f.instance_id, "instance_type": f.instance_type, "expected": f.expected}
            for f in result.fleet
        ],
        "resources": [
            {"name": r.name, "resource_id": r.resource_id, "resource_type": r.resource_type, "expected": r.expected}
            for r in result.resources
        ],
        "alerts": [a.model_dump(mode="json", exclude_none=True) for a in result.alerts],
        "outcomes": [_outcome(o) for o in result.outcomes],
        "review_queue": [
            {
                "thread_id": p.thread_id,
                "digest": p.plan.digest,
                "action": p.plan.action,
                "instance_id": p.plan.resource_id if p.plan.resource_type == "instance" else None,
                "resource_id": p.plan.resource_id,
                "resource_type": p.plan.resource_type,
                "savings_usd_per_month": p.plan.savings_usd_per_month,
                "approval_reasons": list(p.plan.approval_reasons),
            }
            for p in result.review_queue
        ],
        "reviewed": [{"decision": choice, "outcome": _outcome(o)} for choice, o in result.reviewed],
        "snapshots_in_emulator": result.snapshots_in_emulator,
        "audit_records": len(result.audit),
        "audit_chain_ok": result.audit_ok,
        "metrics": result.metrics(),
        "workdir": str(result.workdir),
    }


def choose_at_prompt(item: PendingReview, console: Console) -> ReviewChoice:
    console.print(item.request["action_requests"][0]["description"])
    answer = Prompt.ask(
        "approve, reject or skip?", choices=["approve", "reject", "skip"], default="skip", console=console
    )
    return "approve" if answer == "approve" else "reject" if answer == "reject" else "skip"


def print_demo(result: DemoResult, console: Console) -> None:
    names = {f.instance_id: (f.name, f.instance_type) for f in result.fleet}
    names.update({r.resource_id: (r.name, r.resource_type) for r in result.resources})
    table = Table(title=f"{len(result.outcomes)} alert(s) through the graph (local model, autonomous phase)")
    for col in ("resource", "type", "status", "action", "$/month", "why"):
        table.add_column(col, overflow="fold")
    for o in result.outcomes:
        rid = o.resource_id or o.instance_id or ""
        name, kind = names.get(rid, (rid, ""))
        savings = "" if o.savings_usd_per_month is None else f"{o.savings_usd_per_month:,.2f}"
        table.add_row(
            name,
            kind,
            o.status,
            o.action or "",
            savings,
            o.reason,
        )
    console.print(table)

    queue = Table(title=f"review queue: {len(result.review_queue)} plan(s)")
    for col in ("thread", "action", "resource", "$/month", "why", "digest"):
        queue.add_column(col, overflow="fold")
    for p in result.review_queue:
        plan = p.plan
        savings = "?" if plan.savings_usd_per_month is None else f"{plan.savings_usd_per_month:,.2f}"
        queue.add_row(
            p.thread_id,
            plan.action,
            plan.resource_id,
            savings,
            ", ".join(plan.approval_reasons),
            plan.digest[:16] + "…",
        )
    console.print(queue)
    for choice, o in result.reviewed:
        console.print(f"[bold]{choice}[/] {o.thread_id} → [bold]{o.status}[/]: {o.reason}")

    audit = Table(
        title=f"audit trail: {len(result.audit)} record(s), chain {'intact' if result.audit_ok else 'BROKEN'}"
    )
    for col in ("seq", "thread", "actor", "event", "result"):
        audit.add_column(col, overflow="fold")
    for r in result.audit[-12:]:
        audit.add_row(str(r.seq), r.thread_id, r.actor, r.event, r.result)
    console.print(audit)

    m = result.metrics()
    model = m["model"]
    console.print(
        f"[bold]metrics[/] alerts {m['alerts']} · {', '.join(f'{k} {v}' for k, v in m['statuses'].items())}\n"
        f"  rails refused {m['rail_refusals']} · savings proposed ${m['savings_proposed_usd_per_month']:,.2f}/month · "
        f"realised ${m['savings_realised_usd_per_month']:,.2f}/month\n"
        f"  model {model.get('model')}: {model['calls']} call(s), p50 {model['latency_p50_s']} s, "
        f"{model['prompt_tokens']} prompt + {model['completion_tokens']} completion tokens, "
        f"{model['final_decisions_unusable']} final decision(s) unusable\n"
        f"  snapshots in the emulator: {', '.join(result.snapshots_in_emulator) or 'none'}\n"
        f"  files: {result.workdir}/ (demo.db, alerts.jsonl, logs)"
    )
