"""report: the alert's Outcome, recorded in the thread index and the audit trail."""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from costguard import __version__
from costguard.context import Deps
from costguard.nodes.common import current_thread_id
from costguard.state import CostState, Outcome, Result
from costguard.tools.ledger import AuditRecord


def agent_version(deps: Deps) -> str:
    return f"costguard {__version__} policy {deps.policy.digest}"


def build_outcome(state: CostState, thread_id: str, version: str | None = None) -> Outcome:
    alert = state["alert"]
    result = state.get("result") or Result(
        status="failed", reason="the graph ended without a result", error_class="InternalError"
    )
    plan = state.get("plan")
    decision = state.get("decision")
    verdict = state.get("verdict")
    savings = plan.savings_usd_per_month if plan else (verdict.savings_usd_per_month if verdict else None)
    return Outcome(
        alert_id=alert.alert_id,
        thread_id=thread_id,
        status=result.status,
        action=plan.action if plan else (decision.action if decision else None),
        instance_id=alert.instance_id,
        executed=result.executed,
        reason=result.reason,
        rules=result.rules,
        savings_usd_per_month=savings,
        digest=plan.digest if plan else None,
        snapshot_ids=result.snapshot_ids,
        error_class=result.error_class,
        agent_version=version,
    )


def outcome_key(deps: Deps, thread_id: str, digest: str | None, status: str, generation: int | None = None) -> str:
    """The dedupe key of an outcome record: once per thread, plan, status and generation (see undo)."""
    if generation is None:
        generation = deps.store.undo_generation(thread_id, digest) if digest else 0
    return f"outcome:{thread_id}:{digest}:{status}" + (f":{generation}" if generation else "")


def report(state: CostState, runtime: Runtime[Deps]) -> dict[str, Any]:
    deps = runtime.context
    thread_id = current_thread_id(state)
    outcome = build_outcome(state, thread_id, agent_version(deps))
    deps.store.set_thread(thread_id, outcome.alert_id, outcome.status, outcome)
    deps.store.audit(
        AuditRecord(
            thread_id=thread_id,
            actor="costguard:report",
            authorized_by=(state.get("approval").authorized_by if state.get("approval") else None),  # type: ignore[union-attr]
            event="outcome",
            instance_id=outcome.instance_id,
            digest=outcome.digest,
            result=outcome.status,
            detail=outcome.reason,
            dedupe_key=outcome_key(deps, thread_id, outcome.digest, outcome.status),
        )
    )
    return {"outcome": outcome}
