"""Instrumentation of the nodes: every run timed and reported to telemetry, logs bound to the thread and node.

The wrapper can also bind the dependencies into the node, for hosts that cannot pass `context=` (the
LangGraph API server).
"""

from __future__ import annotations

import time
from typing import Any, Protocol

import structlog
from langgraph.config import get_config
from langgraph.errors import GraphBubbleUp
from langgraph.runtime import Runtime

from costguard.context import Deps
from costguard.state import CostState
from costguard.tools.telemetry import StepRecord

log = structlog.get_logger(__name__)


class NodeFn(Protocol):
    def __call__(self, state: CostState, runtime: Runtime[Deps]) -> dict[str, Any]: ...


def instrumented(name: str, fn: NodeFn, deps: Deps | None = None) -> NodeFn:
    """The node, timed and reported to the run's observer; with `deps`, bound to them.

    Binding is for hosts that cannot pass `context=` (the LangGraph API server): the served
    graph then carries its dependencies, built from settings, instead of receiving them per run.
    """

    def node(state: CostState, runtime: Runtime[Deps]) -> dict[str, Any]:
        if deps is not None:
            runtime = runtime.override(context=deps)
        telemetry = runtime.context.telemetry
        thread_id = str(get_config().get("configurable", {}).get("thread_id", ""))
        started = time.perf_counter()
        try:
            with structlog.contextvars.bound_contextvars(thread_id=thread_id, node=name):
                update = fn(state, runtime)
        except GraphBubbleUp:  # an interrupt: a pause, not a failure
            log.info("node_paused", thread_id=thread_id, node=name)
            telemetry.flush(thread_id)
            raise
        except Exception as exc:
            duration = time.perf_counter() - started
            telemetry.step(StepRecord(thread_id, name, ok=False, duration_s=duration, error_class=type(exc).__name__))
            telemetry.flush(thread_id)
            log.warning("node_failed", thread_id=thread_id, node=name, error_class=type(exc).__name__, error=str(exc))
            raise
        decision = update.get("decision") if name == "analyze" else None
        confidence = decision.confidence if decision is not None else None
        telemetry.step(
            StepRecord(thread_id, name, ok=True, duration_s=time.perf_counter() - started, confidence=confidence)
        )
        if "outcome" in update:  # report, or intake refusing the input: the run ends, its rows go to disk
            telemetry.flush(thread_id)
        # per node at DEBUG: every node run is in cg_steps already; INFO has one line per alert (service)
        log.debug("node_done", thread_id=thread_id, node=name, duration_s=round(time.perf_counter() - started, 4))
        return update

    node.__name__ = name
    node.__qualname__ = name
    return node
