"""Outcomes: the one place an alert's Outcome is built, whatever ended it, and where it is recorded.

Not a node: `report`, `intake` and the application layer (failures, reviews waiting, undo) share it, so an
outcome has one shape wherever it comes from (`process --json`, `--report`, the Python API, the server).
"""

from __future__ import annotations

from typing import Any

from costguard import __version__
from costguard.policy import Policy
from costguard.state import CostState, Outcome, Plan, Result
from costguard.tools.store import Store


def agent_version(policy: Policy) -> str:
    """What produced an outcome: costguard's version and the policy's hash (to trace regressions)."""
    return f"costguard {__version__} policy {policy.digest}"


def from_state(state: CostState, thread_id: str, version: str | None = None) -> Outcome:
    """The outcome of a finished run: its terminal Result, with the plan (or decision) it concerned."""
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
        resource_id=alert.resource_id,
        resource_type=alert.resource_type,
        executed=result.executed,
        reason=result.reason,
        rules=result.rules,
        savings_usd_per_month=savings,
        digest=plan.digest if plan else None,
        snapshot_ids=result.snapshot_ids,
        error_class=result.error_class,
        agent_version=version,
    )


def invalid(alert_id: str, reason: str, *, thread_id: str = "", line: int | None = None) -> Outcome:
    """An alert that did not match the schema: reported, never run."""
    return Outcome(
        alert_id=alert_id,
        thread_id=thread_id,
        status="invalid_input",
        reason=reason,
        line=line,
        error_class="InvalidAlert",
    )


def awaiting(values: dict[str, Any], thread_id: str, alert_id: str, version: str) -> Outcome:
    """A thread paused for review: the plan it waits with."""
    plan: Plan | None = values.get("plan")
    alert = values.get("alert")
    verdict = values.get("verdict")
    return Outcome(
        alert_id=alert_id,
        thread_id=thread_id,
        status="awaiting_review",
        action=plan.action if plan else None,
        instance_id=alert.instance_id if alert else None,
        resource_id=alert.resource_id if alert else None,
        resource_type=alert.resource_type if alert else None,
        reason=verdict.reason if verdict else "",
        rules=plan.approval_reasons if plan else (),
        savings_usd_per_month=plan.savings_usd_per_month if plan else None,
        digest=plan.digest if plan else None,
        agent_version=version,
    )


def scheduled(values: dict[str, Any], thread_id: str, alert_id: str, version: str) -> Outcome:
    """A thread waiting out a grace period: the plan, when it acts, how to call it off."""
    waiting = awaiting(values, thread_id, alert_id, version)
    schedule = values.get("schedule")
    due = schedule.due_at if schedule is not None else None
    told = f"; owner {schedule.owner} notified" if schedule is not None and schedule.owner else ""
    reason = f"scheduled for {due:%Y-%m-%d %H:%M:%S} UTC (grace period){told}" if due else "scheduled (grace period)"
    return waiting.model_copy(update={"status": "scheduled", "due_at": due, "reason": reason, "rules": ()})


def failed(alert_id: str, thread_id: str, error: BaseException, *, attempts: int | None = None) -> Outcome:
    """A run that raised: the error class and message (and how often it was tried, for retryable ones)."""
    reason = f"{type(error).__name__}: {error}" + (f" (after {attempts} attempts)" if attempts else "")
    return Outcome(
        alert_id=alert_id, thread_id=thread_id, status="failed", reason=reason, error_class=type(error).__name__
    )


def unfinished(alert_id: str, thread_id: str) -> Outcome:
    """A thread with no outcome yet and nothing waiting: it was interrupted (resume it)."""
    return Outcome(
        alert_id=alert_id, thread_id=thread_id, status="failed", reason="unfinished", error_class="Unfinished"
    )


def rolled_back(outcome: Outcome, reviewer: str, detail: str) -> Outcome:
    """An executed outcome after its undo; the snapshots taken before the action are named, for a restore."""
    kept = f"; snapshots kept: {', '.join(outcome.snapshot_ids)}" if outcome.snapshot_ids else ""
    return outcome.model_copy(
        update={"status": "rolled_back", "executed": False, "reason": f"undone by {reviewer}: {detail}{kept}"}
    )


def record(store: Store, outcome: Outcome, *, actor: str, authorized_by: str | None = None) -> None:
    """Index the thread's outcome and append its audit record, once per thread, plan, status and generation."""
    store.record_outcome(outcome, actor=actor, authorized_by=authorized_by)
