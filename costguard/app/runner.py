"""Running alerts through the compiled graph: one thread per alert, resumable, reviewable, undoable.

The CLI is a thin layer over this module; Python users can use it too, or the graph directly.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import structlog
from langchain_core.runnables import RunnableConfig
from langgraph.types import Command, StateSnapshot

from costguard.app.batch import invalid_outcome
from costguard.app.undo import undo_plan, unundone_action
from costguard.context import Deps
from costguard.errors import CostguardError, CriticalError, InvalidAlert, RetryableError, ReviewError
from costguard.graph.builder import MAX_ATTEMPTS, Graph
from costguard.nodes import outcome as outcomes
from costguard.nodes.grace import GRACE_REQUEST
from costguard.policy.grace import MARK_TAG
from costguard.state import Alert, Outcome, Plan, ReviewResponse, thread_id_for
from costguard.tools.store import AuditRecord

log = structlog.get_logger(__name__)


def _family(cls: type[Exception]) -> frozenset[str]:
    return frozenset({cls.__name__}).union(*(_family(sub) for sub in cls.__subclasses__()))


RETRYABLE_NAMES = _family(RetryableError)  # a failed outcome's error_class worth another try later
CheckpointMode = Literal["exit", "sync"]  # LangGraph's durability modes costguard offers (not "async")
INTERRUPT = "__interrupt__"  # the key of a paused run's output (`invoke` returns it; the constant is private)
# the nodes before which a checkpoint is always durable: the plan about to act (execute) or about to be announced
# (grace: a kill after its owner notice re-runs it with the same plan, so nobody is told twice)
BOUNDARY = ("grace", "execute")


@dataclass(frozen=True)
class PendingReview:
    thread_id: str
    alert_id: str
    plan: Plan
    request: dict[str, Any]


class CostGuard:
    """The compiled graph plus its dependencies."""

    def __init__(self, graph: Graph, deps: Deps, *, durability: CheckpointMode = "exit") -> None:
        self.graph = graph
        self.deps = deps
        self.durability = durability

    @staticmethod
    def config(thread_id: str) -> RunnableConfig:
        return {"configurable": {"thread_id": thread_id}}

    # --- running ---------------------------------------------------------------------------

    def _invoke(
        self,
        payload: Any,
        thread_id: str,
        alert_id: str,
        *,
        checkpoint_id: str | None = None,
        durability: CheckpointMode | None = None,
    ) -> Outcome:
        config = self.config(thread_id)
        if checkpoint_id is not None:
            config["configurable"]["checkpoint_id"] = checkpoint_id
        alert = payload.get("alert") if isinstance(payload, dict) else None
        self.deps.store.set_thread(thread_id, alert_id, "running", alert=alert)
        try:
            values = self._run(payload, config, durability or self.durability)
        except CostguardError as exc:
            return self.record_failure(thread_id, alert_id, exc)
        except Exception as exc:  # a bug or an unmapped error: this alert fails, the batch goes on
            log.exception("alert_crashed", thread_id=thread_id)
            return self.record_failure(thread_id, alert_id, exc)
        finally:
            self.deps.telemetry.flush(thread_id)
        finished: Outcome | None = values.get("outcome") if INTERRUPT not in values else None
        if finished is not None and alert is None:
            # a resumed run may end without running `report` again (killed after its writes were saved, before
            # their checkpoint): its record and audit were written then, but "running" above replaced the status
            self.deps.store.set_thread(thread_id, alert_id, finished.status, finished)
        outcome = finished if finished is not None else self.outcome(thread_id, alert_id)
        log.info("alert_done", thread_id=thread_id, alert_id=alert_id, status=outcome.status, action=outcome.action)
        return outcome

    def _run(self, payload: Any, config: RunnableConfig, durability: CheckpointMode) -> dict[str, Any]:
        """Run the thread until it ends or pauses; the values it returned.

        durability "sync": a checkpoint per step. "exit" (default): checkpoints where they guard
        something — at a review pause, before `execute` (the plan about to act is on disk before the
        first effect) and at the end. A crash between them re-runs only read-only steps (gather,
        analyze — the model answer comes from the decision cache —, validate); effects are guarded
        by the execution ledger, so nothing is done twice either way.
        """
        if durability == "sync":
            values: dict[str, Any] = self.graph.invoke(payload, config, context=self.deps, durability="sync")
            return values
        values = self.graph.invoke(payload, config, context=self.deps, durability="exit", interrupt_before=BOUNDARY)
        if INTERRUPT not in values and values.get("outcome") is None:
            # stopped before execute (a run ends in report, which sets the outcome, or pauses):
            # that checkpoint is on disk now; go on from it (invoking a finished thread is a no-op)
            latest = self.config(config["configurable"]["thread_id"])
            values = self.graph.invoke(None, latest, context=self.deps, durability="exit")
        return values

    def record_failure(self, thread_id: str, alert_id: str, exc: Exception) -> Outcome:
        """The alert failed: indexed as `failed`, audited, and a critical error alerted."""
        attempts = MAX_ATTEMPTS if isinstance(exc, RetryableError) else None
        failed = outcomes.failed(alert_id, thread_id, exc, attempts=attempts)
        self.deps.store.set_thread(thread_id, alert_id, "failed", failed)
        self.deps.store.audit(
            AuditRecord(
                thread_id=thread_id, actor="costguard", event="run_failed", result="failed", detail=failed.reason
            )
        )
        if isinstance(exc, CriticalError):
            self.deps.notifier.critical(failed.reason, thread_id=thread_id, detail={"error_class": type(exc).__name__})
        log.error("alert_failed", thread_id=thread_id, error_class=type(exc).__name__, error=str(exc))
        return failed

    def snapshot(self, thread_id: str) -> StateSnapshot:
        return self.graph.get_state(self.config(thread_id))

    def outcome(self, thread_id: str, alert_id: str | None = None) -> Outcome:
        """The thread's outcome now: final, awaiting review, or what the index says."""
        snap = self.snapshot(thread_id)
        values = snap.values or {}
        if values.get("outcome") is not None and not snap.tasks:
            outcome: Outcome = values["outcome"]
            row = self.deps.store.thread(thread_id)
            if row is None or row["status"] != outcome.status:  # killed between the last checkpoint and the index
                self.deps.store.set_thread(thread_id, outcome.alert_id, outcome.status, outcome)
            return outcome
        alert = values.get("alert")
        alert_id = alert.alert_id if alert is not None else (alert_id or "")
        if snap.interrupts:
            version = outcomes.agent_version(self.deps.policy)
            if is_grace(snap):
                waiting = outcomes.scheduled(values, thread_id, alert_id, version)
            else:
                waiting = outcomes.awaiting(values, thread_id, alert_id, version)
            self.deps.store.set_thread(thread_id, alert_id, waiting.status, waiting)
            return waiting
        row = self.deps.store.thread(thread_id)
        if row and row.get("outcome"):
            return Outcome.model_validate_json(row["outcome"])
        return outcomes.unfinished(alert_id, thread_id)

    def process_alert(self, alert: Alert) -> Outcome:
        """See `_process_alert`; one worker at a time on the thread (a lease: another worker waits, then reports)."""
        with self.deps.store.thread_lease(thread_id_for(alert.alert_id)):
            return self._process_alert(alert)

    def _process_alert(self, alert: Alert) -> Outcome:
        """Start the alert's thread; or resume it if unfinished; or report its existing outcome."""
        thread_id = thread_id_for(alert.alert_id)
        snap = self.snapshot(thread_id)
        if not snap.values:
            return self._invoke({"alert": alert}, thread_id, alert.alert_id)
        if snap.interrupts or not snap.tasks:
            return self.outcome(thread_id, alert.alert_id)  # waiting for a human, or finished
        # crashed mid-way: go on (nodes whose writes were saved are not run again)
        return self._invoke(None, thread_id, alert.alert_id)

    def handle(self, item: Alert | InvalidAlert) -> Outcome:
        """One line of a batch: its outcome (an invalid line is reported, never raised)."""
        if isinstance(item, InvalidAlert):
            return invalid_outcome(item)
        return self.process_alert(item)

    def process(self, items: Iterable[Alert | InvalidAlert], *, concurrency: int = 1) -> Iterator[Outcome]:
        """Outcomes in input order; one bad alert never stops the batch."""
        if concurrency <= 1:
            yield from map(self.handle, items)
            return
        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            yield from pool.map(self.handle, items)

    def resume(self, thread_id: str) -> Outcome:
        """See `_resume`; one worker at a time on the thread (a lease: another worker waits, then reports)."""
        with self.deps.store.thread_lease(thread_id):
            return self._resume(thread_id)

    def _resume(self, thread_id: str) -> Outcome:
        """Go on with an unfinished thread (after a crash). A thread waiting for review stays waiting."""
        snap = self.snapshot(thread_id)
        if not snap.values:
            row = self.deps.store.thread(thread_id)
            if row is None or not row.get("alert"):
                raise ReviewError(f"no thread {thread_id!r} in this database")
            alert = Alert.model_validate_json(row["alert"])  # killed before its first checkpoint
            return self._invoke({"alert": alert}, thread_id, alert.alert_id)
        alert_id = snap.values["alert"].alert_id
        if snap.interrupts or not snap.tasks:
            return self.outcome(thread_id, alert_id)
        return self._invoke(None, thread_id, alert_id)

    # --- review ----------------------------------------------------------------------------

    def pending(self, *, limit: int = 100, offset: int = 0) -> list[PendingReview]:
        items = []
        for row in self.deps.store.threads("awaiting_review", limit=limit, offset=offset):
            snap = self.snapshot(row["thread_id"])
            if not snap.interrupts:
                continue
            items.append(
                PendingReview(
                    thread_id=row["thread_id"],
                    alert_id=row["alert_id"],
                    plan=snap.values["plan"],
                    request=snap.interrupts[0].value,
                )
            )
        return items

    def review(self, thread_id: str, response: ReviewResponse | dict[str, Any]) -> Outcome:
        """See `_review`; one worker at a time on the thread (a lease: another worker waits, then reports)."""
        with self.deps.store.thread_lease(thread_id):
            return self._review(thread_id, response)

    def _review(self, thread_id: str, response: ReviewResponse | dict[str, Any]) -> Outcome:
        """Resume a thread waiting for review. The graph checks the response itself."""
        snap = self.snapshot(thread_id)
        if not snap.values:
            raise ReviewError(f"no thread {thread_id!r} in this database")
        if not snap.interrupts:
            raise ReviewError(f"thread {thread_id!r} is not waiting for a review (an approval is used once)")
        if is_grace(snap):
            raise ReviewError(
                f"thread {thread_id!r} is scheduled (a grace period), not waiting for a review: "
                f"remove the tag {MARK_TAG} or add the opt-out tag to call it off"
            )
        payload = response.model_dump(mode="json") if isinstance(response, ReviewResponse) else response
        return self._invoke(Command(resume=payload), thread_id, snap.values["alert"].alert_id)

    # --- grace periods -----------------------------------------------------------------------

    def scheduled(self, *, limit: int = 1000) -> list[Outcome]:
        """Plans waiting out a grace period, the soonest due first."""
        found = [
            Outcome.model_validate_json(row["outcome"])
            for row in self.deps.store.threads("scheduled", limit=limit)
            if row.get("outcome")
        ]
        far = datetime.max.replace(tzinfo=UTC)
        return sorted(found, key=lambda o: (o.due_at or far, o.thread_id))

    def run_due(self) -> list[Outcome]:
        """Resume every scheduled plan whose grace period is over: it is checked on fresh facts, then acts, is
        called off, or goes to a person. What each became (a thread resumed early, or by another worker meanwhile,
        stays scheduled)."""
        return [self.resume_due(thread_id) for thread_id in self.due_threads()]

    def due_threads(self) -> list[str]:
        """Threads whose grace period is over: scheduled ones, a due run killed mid-way (left `running`), and a due
        run that failed on a retryable error (the cloud unreachable, say: it is tried again at the next look)."""
        now = self.deps.clock()
        due = [o.thread_id for o in self.scheduled() if o.due_at is None or o.due_at <= now]
        for row in self.deps.store.threads("running", limit=10_000):
            # a due run killed mid-way was left `running`: nothing else would take it up again
            values = self.snapshot(row["thread_id"]).values or {}
            schedule = values.get("schedule")
            if schedule is not None and schedule.due_at <= now and values.get("outcome") is None:
                due.append(row["thread_id"])
        for row in self.deps.store.threads("failed", limit=10_000):
            failed = Outcome.model_validate_json(row["outcome"]) if row.get("outcome") else None
            if failed is None or failed.error_class not in RETRYABLE_NAMES:
                continue  # a critical failure waits for a person (`costguard resume` puts it back on schedule)
            snap = self.snapshot(row["thread_id"])
            schedule = (snap.values or {}).get("schedule")
            if is_grace(snap) and schedule is not None and schedule.due_at <= now:
                due.append(row["thread_id"])
        return due

    def resume_due(self, thread_id: str) -> Outcome:
        """See `run_due`; one worker at a time on the thread."""
        with self.deps.store.thread_lease(thread_id):
            snap = self.snapshot(thread_id)
            if not snap.values:
                raise ReviewError(f"no thread {thread_id!r} in this database")
            alert_id = snap.values["alert"].alert_id
            if is_grace(snap):
                return self._invoke(Command(resume={"type": "due"}), thread_id, alert_id)
            if snap.tasks and not snap.interrupts:
                return self._invoke(None, thread_id, alert_id)  # killed mid-way: go on
            return self.outcome(thread_id, alert_id)  # done meanwhile (another worker), or waiting for a person

    # --- undo and rollback -------------------------------------------------------------------

    def undo(self, thread_id: str, reviewer: str) -> Outcome:
        """See `_undo`; one worker at a time on the thread (a lease: another worker waits, then reports)."""
        with self.deps.store.thread_lease(thread_id):
            return self._undo(thread_id, reviewer)

    def _undo(self, thread_id: str, reviewer: str) -> Outcome:
        """Compensate the thread's executed effect (start again / resize back). Idempotent."""
        snap = self.snapshot(thread_id)
        values = snap.values or {}
        executed: Outcome | None = values.get("outcome")
        if executed is None or snap.tasks:
            raise ReviewError(f"thread {thread_id!r} has not finished")
        if executed.status == "rolled_back":  # undone before; its record again (a no-op unless killed before it)
            outcomes.record(self.deps.store, executed, actor=f"reviewer:{reviewer}", authorized_by=reviewer)
            return executed
        plan: Plan | None = values.get("plan")
        if executed.status != "executed" or plan is None:
            raise ReviewError(f"thread {thread_id!r} executed nothing to undo (status {executed.status})")
        facts = values.get("facts")
        was_running = facts is not None and facts.state == "running"
        try:
            undone = undo_plan(self.deps, plan, executed, reviewer, was_running=was_running)
        except CriticalError as exc:
            self.deps.notifier.critical(str(exc), thread_id=thread_id, detail={"instance_id": plan.resource_id})
            raise
        self.graph.update_state(self.config(thread_id), {"outcome": undone}, as_node="report")
        outcomes.record(self.deps.store, undone, actor=f"reviewer:{reviewer}", authorized_by=reviewer)
        return undone

    def rollback(self, thread_id: str, checkpoint_id: str) -> Outcome:
        """See `_rollback`; one worker at a time on the thread (a lease: another worker waits, then reports)."""
        with self.deps.store.thread_lease(thread_id):
            return self._rollback(thread_id, checkpoint_id)

    def _rollback(self, thread_id: str, checkpoint_id: str) -> Outcome:
        """Time travel: continue the thread from an earlier checkpoint (a new branch; the old stays).

        The cloud is not rolled back by this: a thread whose effect was executed and not undone
        is refused ("undo it first"), so a re-run can never act twice.
        """
        target = self.graph.get_state({"configurable": {"thread_id": thread_id, "checkpoint_id": checkpoint_id}})
        if not target.values:
            raise ReviewError(f"no checkpoint {checkpoint_id!r} in thread {thread_id!r}")
        acted = unundone_action(self.deps.store, thread_id)
        if acted is not None:
            raise ReviewError(
                f"thread {thread_id!r} changed {acted}; "
                "`costguard undo` it first: rollback restores the agent's memory, not the cloud"
            )
        alert_id = target.values["alert"].alert_id
        self.deps.store.audit(
            AuditRecord(
                thread_id=thread_id,
                actor="costguard",
                event="rollback",
                result="forked",
                detail=f"continuing from checkpoint {checkpoint_id} (next: {', '.join(target.next) or 'end'})",
            )
        )
        # a checkpoint per step here: going on from an old checkpoint, LangGraph does not stop again
        # at a breakpoint already passed, so "exit" would leave the fork without a durable
        # checkpoint before execute
        return self._invoke(None, thread_id, alert_id, checkpoint_id=checkpoint_id, durability="sync")

    def unfinished(self) -> list[str]:
        """Threads a crash left `running` (a scheduled or a reviewed one waits on purpose: not these)."""
        return [row["thread_id"] for row in self.deps.store.threads("running", limit=1_000_000)]


def is_grace(snap: StateSnapshot) -> bool:
    """The thread pauses for a grace period (not for a review)."""
    return any(isinstance(i.value, dict) and i.value.get("type") == GRACE_REQUEST for i in snap.interrupts)
