"""The baselines costguard is measured against, in the same run.

- `plain`: the same flow written plainly, as the LangGraph docs would have you write it: a
  TypedDict of plain dicts, the same six nodes (intake → gather → analyze → validate → execute → report,
  plus an optional review interrupt), the same scripted model through `with_structured_output`, the
  same fake cloud, a stock `SqliteSaver` on `sqlite3.connect(path)` (default journal mode and
  synchronous setting) and LangGraph's default durability ("async"). No ledger, no audit, no
  thread index, no telemetry, no retries.
  `Plain(..., saver=stock_postgres_saver(url))` is the same graph on a stock `PostgresSaver` (workload 8).
- `floor`: plain sqlite3 writing one durable row per step (WAL, synchronous=FULL, one transaction
  per row), six rows an alert (one per node of the executed flow): the least a durable step-by-step
  record can cost.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal, TypedDict

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import HumanMessage, SystemMessage
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import Command, interrupt

from bench.fakes import FakeCloud
from costguard.state import Alert
from costguard.tools.llm.model import SYSTEM_PROMPT

DECISION_SCHEMA: dict[str, Any] = {
    "title": "decision",
    "description": "One proposed decision about the alert's instance.",
    "type": "object",
    "properties": {
        "action": {"type": "string", "enum": ["shutdown", "resize", "monitor", "investigate"]},
        "confidence": {"type": "number"},
        "reasoning": {"type": "string"},
        "parameters": {"type": "object"},
        "requires_approval": {"type": "boolean"},
    },
    "required": ["action", "confidence", "reasoning", "parameters", "requires_approval"],
}


class PlainState(TypedDict, total=False):
    alert: dict[str, Any]
    facts: dict[str, Any]
    decision: dict[str, Any]
    route: str
    approved: bool
    result: str


PlainGraph = CompiledStateGraph[PlainState, None, PlainState, PlainState]


def build_plain(cloud: FakeCloud, model: BaseChatModel, *, review_all: bool = False) -> StateGraph[PlainState]:
    """The same flow, written plainly. `review_all`: every disruptive action waits for a human (interrupt)."""
    structured = model.with_structured_output(DECISION_SCHEMA)

    def intake(state: PlainState) -> dict[str, Any]:
        if not str(state["alert"].get("instance_id", "")).startswith("i-"):
            return {"route": "report", "result": "invalid_input"}
        return {}

    def gather(state: PlainState) -> dict[str, Any]:
        return {"facts": cloud.describe_instance(state["alert"]["instance_id"])}

    def analyze(state: PlainState) -> dict[str, Any]:
        data = json.dumps({"alert": state["alert"], "facts": state["facts"]}, indent=1, sort_keys=True)
        messages = [SystemMessage(SYSTEM_PROMPT), HumanMessage(f"<alert_data>\n{data}\n</alert_data>")]
        return {"decision": structured.invoke(messages)}

    def validate(state: PlainState) -> dict[str, Any]:
        decision, facts = state["decision"], state["facts"]
        tags = " ".join(f"{k} {v}" for k, v in facts["Tags"].items()).lower()
        disruptive = decision.get("action") in ("shutdown", "resize")
        if not disruptive or decision.get("confidence", 0) < 0.7 or "critical" in tags:
            return {"route": "report", "result": "no_action"}
        if decision.get("parameters", {}).get("instance_id") != state["alert"]["instance_id"]:
            return {"route": "report", "result": "wrong_instance"}
        return {"route": "review" if review_all else "execute"}

    def review(state: PlainState) -> dict[str, Any]:
        answer = interrupt({"decision": state["decision"]})
        return {"approved": answer == "approve", "result": "approved" if answer == "approve" else "rejected"}

    def execute(state: PlainState) -> dict[str, Any]:
        decision, facts = state["decision"], state["facts"]
        iid = state["alert"]["instance_id"]
        for volume in facts["Volumes"]:
            cloud.create_snapshot(volume)
        if decision["action"] == "shutdown":
            cloud.stop_instances(iid)
        else:
            cloud.stop_instances(iid)
            cloud.modify_instance_type(iid, decision["parameters"]["target_instance_type"])
            cloud.start_instances(iid)
        return {"result": "executed"}

    def report(state: PlainState) -> dict[str, Any]:
        return {"result": state.get("result") or "done"}

    def after_validate(state: PlainState) -> Literal["execute", "review", "report"]:
        route = state["route"]
        assert route in ("execute", "review", "report")
        return route  # type: ignore[return-value]

    def after_review(state: PlainState) -> Literal["execute", "report"]:
        return "execute" if state.get("approved") else "report"

    graph = StateGraph(PlainState)
    graph.add_node("intake", intake)
    graph.add_node("gather", gather)
    graph.add_node("analyze", analyze)
    graph.add_node("validate", validate)
    graph.add_node("review", review)
    graph.add_node("execute", execute)
    graph.add_node("report", report)
    graph.add_edge(START, "intake")
    graph.add_edge("intake", "gather")
    graph.add_edge("gather", "analyze")
    graph.add_edge("analyze", "validate")
    graph.add_conditional_edges("validate", after_validate)
    graph.add_conditional_edges("review", after_review)
    graph.add_edge("execute", "report")
    graph.add_edge("report", END)
    return graph


def stock_saver(db: Path) -> SqliteSaver:
    """What `SqliteSaver.from_conn_string(path)` builds: default journal mode and synchronous setting."""
    saver = SqliteSaver(sqlite3.connect(str(db), check_same_thread=False))
    saver.setup()
    return saver


def stock_postgres_saver(url: str) -> BaseCheckpointSaver[Any]:
    """What `PostgresSaver.from_conn_string(url)` builds (one connection: autocommit, prepare_threshold=0, dict
    rows), then `setup()`, as LangGraph's docs have you call it once."""
    from langgraph.checkpoint.postgres import PostgresSaver
    from psycopg import Connection
    from psycopg.rows import dict_row

    conn: Connection[Any] = Connection.connect(url, autocommit=True, prepare_threshold=0, row_factory=dict_row)
    saver = PostgresSaver(conn)
    saver.setup()
    return saver


class Plain:
    """The plain graph compiled with a stock SqliteSaver (or the given saver); one thread per alert, default
    durability."""

    def __init__(
        self,
        db: Path | None,
        cloud: FakeCloud,
        model: BaseChatModel,
        *,
        review_all: bool = False,
        saver: BaseCheckpointSaver[Any] | None = None,
    ) -> None:
        if saver is None:
            if db is None:
                raise ValueError("Plain needs a SQLite file or a saver")
            saver = stock_saver(db)
        self.saver: BaseCheckpointSaver[Any] = saver
        self.graph: PlainGraph = build_plain(cloud, model, review_all=review_all).compile(checkpointer=self.saver)

    @staticmethod
    def config(alert_id: str) -> Any:
        return {"configurable": {"thread_id": f"alert:{alert_id}"}}

    def run(self, alert: Alert) -> dict[str, Any]:
        return dict(self.graph.invoke({"alert": alert.model_dump(mode="json")}, self.config(alert.alert_id)))

    def process(self, alerts: Iterable[Alert], *, concurrency: int = 1) -> list[dict[str, Any]]:
        if concurrency <= 1:
            return [self.run(a) for a in alerts]
        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            return list(pool.map(self.run, alerts))

    def resume(self, alert_id: str, answer: str = "approve") -> dict[str, Any]:
        return dict(self.graph.invoke(Command(resume=answer), self.config(alert_id)))

    def close(self) -> None:
        getattr(self.saver, "conn").close()  # noqa: B009 - a sqlite3 or psycopg connection; the base class has none


STEPS = ("intake", "gather", "analyze", "validate", "execute", "report")


class Floor:
    """One durable row per step: WAL, synchronous=FULL, a transaction per row."""

    def __init__(self, db: Path) -> None:
        self.conn = sqlite3.connect(str(db), isolation_level=None)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=FULL")
        self.conn.execute(
            "CREATE TABLE IF NOT EXISTS steps (id TEXT PRIMARY KEY, thread_id TEXT NOT NULL, step TEXT NOT NULL,"
            " state TEXT NOT NULL)"
        )

    def run(self, alert: Alert) -> None:
        thread_id = f"alert:{alert.alert_id}"
        for step in STEPS:
            row = json.dumps({"alert_id": alert.alert_id, "instance_id": alert.instance_id, "step": step})
            self.conn.execute("INSERT INTO steps VALUES (?,?,?,?)", (str(uuid.uuid4()), thread_id, step, row))

    def process(self, alerts: Iterable[Alert]) -> None:
        for alert in alerts:
            self.run(alert)

    def close(self) -> None:
        self.conn.close()
