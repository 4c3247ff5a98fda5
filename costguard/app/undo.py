"""Undo and rollback: the cloud and the agent's memory, put back separately.

Undo is the compensating action for an executed plan (its resource kind's `undo`), itself ledgered, audited
and idempotent: a stopped instance or database is started again, a resized instance goes back to its type, a
gp3 volume back to gp2, a deleted volume comes back from its snapshot; a released address cannot. Snapshots taken
before an action are kept and named in the outcome. Rollback is LangGraph time travel to an earlier checkpoint; it
refuses while an executed effect of the thread is not undone, so a re-run can never act twice.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from costguard.context import Deps
from costguard.errors import ReviewError
from costguard.nodes import outcome as outcomes
from costguard.policy import autonomy_class
from costguard.state import Outcome, Plan
from costguard.tools.store import AuditRecord, base_step, generation_step, idempotency_key
from costguard.tools.store.agreements import record_vote
from costguard.tools.store.once import LedgerStep, run_once
from costguard.tools.store.sqlite import ACTIONS, Store


def _audit(plan: Plan, reviewer: str, event: str, result: str, detail: str) -> AuditRecord:
    return AuditRecord(
        thread_id=plan.thread_id,
        actor=f"reviewer:{reviewer}",
        authorized_by=reviewer,
        event=event,
        instance_id=plan.resource_id,
        digest=plan.digest,
        result=result,
        detail=detail,
    )


def undo_plan(deps: Deps, plan: Plan, executed: Outcome, reviewer: str, *, was_running: bool) -> Outcome:
    """Compensate an executed plan once; the returned Outcome has status `rolled_back`."""
    if reviewer not in deps.policy.approvers:
        deps.store.audit(_audit(plan, reviewer, "undo_refused", "refused", "reviewer_not_allowed"))
        raise ReviewError(f"{reviewer!r} is not on the policy's approvers list")
    # the generation being undone: confirmed undos so far (an unconfirmed one is retried under its key)
    generation = deps.store.undo_generation(plan.thread_id, plan.digest)
    name = generation_step("undo", generation)
    step = LedgerStep(
        key=idempotency_key(plan.thread_id, plan.digest, name),
        thread_id=plan.thread_id,
        digest=plan.digest,
        step=name,
        instance_id=plan.resource_id,
    )

    kind = deps.cloud.kind(plan.resource_type)

    def effect() -> tuple[dict[str, Any], AuditRecord]:
        fresh = kind.describe(plan.resource_id, plan.region)
        detail = kind.undo(plan, fresh, _acted(deps.store, plan), step.key, was_running=was_running)
        return {"detail": detail}, _audit(plan, reviewer, "undo", "done", detail)

    intent = _audit(plan, reviewer, "undo_intent", "intent", f"undo {plan.action}")
    result = run_once(deps.store, step, intent=intent, effect=effect)
    # an undo is a disagreement after the fact: it counts against the plan's class (and revokes its autonomy)
    record_vote(
        deps.store,
        thread_id=plan.thread_id,
        digest=plan.digest,
        plan_class=autonomy_class(plan, deps.policy),
        vote="undo",
        reviewer=reviewer,
        generation=generation,
    )
    return outcomes.rolled_back(executed, reviewer, str(result.get("detail", "already undone")))


def _acted(store: Store, plan: Plan) -> dict[str, Any]:
    """What the plan's last confirmed action recorded (what undo needs: a snapshot, a zone, a type)."""
    found: dict[str, Any] = {}
    for entry in store.ledger_rows(plan.thread_id):
        mine = entry.digest == plan.digest and entry.confirmed and entry.result is not None
        if mine and entry.result is not None and base_step(entry.step) in (*ACTIONS, "snapshot"):
            found.update(entry.result)
    return found


def unundone_action(store: Store, thread_id: str) -> str | None:
    """An executed effect of the thread that no undo has compensated, described; None when there is none."""
    ledger = store.ledger_rows(thread_id)
    undos = Counter(e.digest for e in ledger if base_step(e.step) == "undo" and e.confirmed)
    acts = Counter(e.digest for e in ledger if base_step(e.step) in ACTIONS)
    for entry in ledger:
        if base_step(entry.step) in ACTIONS and acts[entry.digest] > undos[entry.digest]:
            return f"{entry.instance_id} ({entry.step})"
    return None
