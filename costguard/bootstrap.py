"""Build the real dependencies from settings: boto3, ChatOpenAI, the SQLite store."""

from __future__ import annotations

from pathlib import Path

import boto3
from langchain_core.language_models import BaseChatModel
from langgraph.checkpoint.base import BaseCheckpointSaver

from costguard.context import Deps
from costguard.graph.builder import compile_graph, sqlite_checkpointer
from costguard.policy import Policy
from costguard.service import CostGuard
from costguard.settings import Settings
from costguard.tools.cloud import Ec2Cloud
from costguard.tools.ledger import Store
from costguard.tools.llm import Method, make_chat_model, structured_method
from costguard.tools.notify import WebhookNotifier
from costguard.tools.pricing import load_price_list
from costguard.tools.telemetry import SqliteTelemetry


def build_deps(
    settings: Settings,
    policy: Policy,
    *,
    model: BaseChatModel | None = None,
    method: Method | None = None,
    session: boto3.Session | None = None,
) -> Deps:
    db = Path(settings.db)
    store = Store(db)
    return Deps(
        model=model if model is not None else make_chat_model(settings),
        cloud=Ec2Cloud(session, default_region=settings.aws_region, endpoint_url=settings.aws_endpoint_url),
        store=store,
        telemetry=SqliteTelemetry(store),
        notifier=WebhookNotifier(settings.alert_webhook, db.with_name(db.stem + "-alerts.jsonl")),
        policy=policy,
        prices=load_price_list(),
        structured_method=method or structured_method(settings),
    )


def build_costguard(
    settings: Settings,
    policy: Policy,
    *,
    model: BaseChatModel | None = None,
    checkpointer: BaseCheckpointSaver[str] | None = None,
) -> CostGuard:
    deps = build_deps(settings, policy, model=model)
    saver = checkpointer if checkpointer is not None else sqlite_checkpointer(settings.db)
    return CostGuard(compile_graph(saver), deps, durability=settings.durability)
