"""The graph as the LangGraph API server serves it (`langgraph dev`, LangGraph Studio, the SDK).

`langgraph.json` names `make_graph`, a no-argument async factory. The served graph differs from
the CLI's because the server, not costguard, runs it:

- it is compiled *without* a checkpointer: the server brings its own (a graph compiled with one
  makes the server refuse to start);
- its dependencies are built once from the environment (`Settings`, `COSTGUARD_POLICY`, and
  `COSTGUARD_SCRIPTED_MODEL` for a scripted model instead of a model server) and bound into every
  node, because a run started from the SDK or Studio cannot pass `context=Deps(...)`; and it has
  no context schema, since the server would try to build `Deps` from a request's JSON `context`;
- they are built off the event loop: the dev server refuses blocking calls (SQLite, file reads)
  there;
- the graph's first node, `intake`, validates the alert: the server hands the graph plain JSON
  (the Python API and the CLI pass an `Alert`); an invalid alert ends the run with `invalid_input`.

The review is unchanged: a resume from the SDK or Studio goes through `human_review`'s
`ReviewResponse` checks (reviewer, digest, expiry) like the CLI's.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Final

from costguard.api.serde import register_state_models
from costguard.app.wiring import build_deps
from costguard.context import Deps
from costguard.graph.builder import Graph, build_graph
from costguard.policy import load_policy
from costguard.sandbox.scripted_model import load_script
from costguard.settings import Settings

SCRIPTED_MODEL_ENV = "COSTGUARD_SCRIPTED_MODEL"
INTAKE: Final = "intake"


def served_deps(settings: Settings | None = None, environ: Mapping[str, str] | None = None) -> Deps:
    """Deps from the environment: the model server or a scripted model, the cloud, the policy, the DB."""
    settings = settings if settings is not None else Settings()
    env = os.environ if environ is None else environ
    script = env.get(SCRIPTED_MODEL_ENV)
    model = load_script(Path(script)) if script else None
    return build_deps(settings, load_policy(settings.policy), model=model)


def served_graph(deps: Deps) -> Graph:
    """The same graph, `deps` bound into every node, no context schema, no checkpointer (the server's)."""
    register_state_models()
    return build_graph(deps).compile(name="costguard")


@cache
def _built() -> Graph:
    return served_graph(served_deps())


async def make_graph() -> Graph:
    """The factory `langgraph.json` names: built on first use (not at import), then reused.

    Async, and the building done in a worker thread: opening the SQLite store and reading the
    policy are blocking calls, which the dev server refuses on its event loop (BlockingError).
    """
    return await asyncio.to_thread(_built)
