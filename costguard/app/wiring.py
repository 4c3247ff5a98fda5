"""The one wiring function: every dependency the graph needs, built from settings, any of them substituted.

The CLI, the served graph, the demo, the tests and the benchmarks all build their `Deps` here, so they run
the same store, telemetry and notifier unless they say otherwise.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from langchain_core.language_models import BaseChatModel
from langgraph.checkpoint.base import BaseCheckpointSaver

from costguard.app.runner import CostGuard
from costguard.context import Deps
from costguard.graph.builder import compile_graph
from costguard.graph.checkpoint import checkpointer_for
from costguard.policy import Policy
from costguard.settings import Method, Settings
from costguard.tools.cloud import Cloud, Ec2Cloud
from costguard.tools.llm.model import make_chat_model, structured_method
from costguard.tools.notify import Notifier, WebhookNotifier
from costguard.tools.pricing import PriceList, load_price_list
from costguard.tools.store import Store, open_store
from costguard.tools.telemetry import SqliteTelemetry, Telemetry


def alerts_sink(db: str) -> Path:
    """Where notices go when no webhook is set: next to a SQLite database, `<db>-alerts.jsonl`; for PostgreSQL,
    `./costguard-alerts.jsonl`."""
    if db.startswith(("postgresql://", "postgres://")):
        return Path("costguard-alerts.jsonl")
    path = Path(db)
    return path.with_name(path.stem + "-alerts.jsonl")


def build_deps(
    settings: Settings,
    policy: Policy,
    *,
    model: BaseChatModel | None = None,
    cloud: Cloud | None = None,
    store: Store | None = None,
    notifier: Notifier | None = None,
    telemetry: Telemetry | None = None,
    prices: PriceList | None = None,
    clock: Callable[[], datetime] | None = None,
    method: Method | None = None,
) -> Deps:
    """The dependencies from settings; each keyword replaces one (a scripted model, a fake cloud, a clock...)."""
    store = store if store is not None else open_store(settings.db)
    deps = Deps(
        model=model if model is not None else make_chat_model(settings),
        cloud=cloud
        if cloud is not None
        else Ec2Cloud(default_region=settings.aws_region, endpoint_url=settings.aws_endpoint_url),
        store=store,
        telemetry=telemetry if telemetry is not None else SqliteTelemetry(store),
        notifier=notifier
        if notifier is not None
        else WebhookNotifier(settings.alert_webhook, alerts_sink(settings.db)),
        policy=policy,
        prices=prices if prices is not None else load_price_list(),
        structured_method=method or structured_method(settings),
        review_ui_url=settings.review_ui_url,
    )
    if clock is not None:
        deps.clock = clock
    return deps


def build_costguard(
    settings: Settings,
    policy: Policy,
    *,
    checkpointer: BaseCheckpointSaver[str] | None = None,
    deps: Deps | None = None,
    model: BaseChatModel | None = None,
) -> CostGuard:
    """CostGuard over the settings' SQLite file (or the given checkpointer), with `deps` or ones built here."""
    deps = deps if deps is not None else build_deps(settings, policy, model=model)
    saver = checkpointer if checkpointer is not None else checkpointer_for(settings.db)
    return CostGuard(compile_graph(saver), deps, durability=settings.durability)
