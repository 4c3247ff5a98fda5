"""The graph, uncompiled (`build_graph`), and compiled with a checkpointer (`compile_graph`). Wiring only."""

from __future__ import annotations

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import RetryPolicy

from costguard.context import Deps
from costguard.errors import RetryableError
from costguard.graph import routing
from costguard.graph.instrument import NodeFn, instrumented
from costguard.nodes.analyze import analyze
from costguard.nodes.execute import execute
from costguard.nodes.gather import gather
from costguard.nodes.grace import grace
from costguard.nodes.intake import intake
from costguard.nodes.investigate import investigate
from costguard.nodes.report import report
from costguard.nodes.review import human_review
from costguard.nodes.validate import validate
from costguard.state import CostState, GraphInput

MAX_ATTEMPTS = 3
RETRY = RetryPolicy(
    max_attempts=MAX_ATTEMPTS, initial_interval=0.5, backoff_factor=2.0, jitter=True, retry_on=RetryableError
)

Graph = CompiledStateGraph[CostState, Deps, GraphInput, CostState]


NODES: dict[str, tuple[NodeFn, RetryPolicy | None]] = {
    "intake": (intake, None),
    "gather": (gather, RETRY),
    "analyze": (analyze, RETRY),
    "validate": (validate, None),
    "investigate": (investigate, RETRY),
    "human_review": (human_review, None),
    "grace": (grace, RETRY),
    "execute": (execute, RETRY),
    "report": (report, None),
}


def build_graph(deps: Deps | None = None) -> StateGraph[CostState, Deps, GraphInput, CostState]:
    """START → intake → gather → analyze → validate → {investigate → analyze | human_review | grace | execute | report}
    → END; grace (an autonomous plan's grace period, when the policy sets one) → {grace | human_review | execute |
    report}.

    Without `deps` (the normal case) every run gets its dependencies as `context=Deps(...)`. With
    `deps` (the API server) they are bound into the nodes and the graph has no context schema:
    a server would try to build Deps from a request's JSON `context`.
    """
    graph = StateGraph(CostState, context_schema=Deps if deps is None else None, input_schema=GraphInput)
    for name, (fn, retry) in NODES.items():
        graph.add_node(name, instrumented(name, fn, deps), retry_policy=retry)
    graph.add_edge(START, "intake")
    graph.add_conditional_edges("intake", routing.after_intake)
    graph.add_edge("gather", "analyze")
    graph.add_edge("analyze", "validate")
    graph.add_conditional_edges("validate", routing.after_validate)
    graph.add_edge("investigate", "analyze")
    graph.add_conditional_edges("human_review", routing.after_review)
    graph.add_conditional_edges("grace", routing.after_grace)
    graph.add_edge("execute", "report")
    graph.add_edge("report", END)
    return graph


def compile_graph(checkpointer: BaseCheckpointSaver[str] | None) -> Graph:
    """Compile with the given checkpointer (None: the API server supplies its own)."""
    return build_graph().compile(checkpointer=checkpointer, name="costguard")
