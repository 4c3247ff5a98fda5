"""The graph, uncompiled, and the helpers that compile it with a checkpointer."""

from __future__ import annotations

import hashlib
import sqlite3
import time
import zlib
from importlib import resources
from pathlib import Path
from typing import Any, Protocol

import structlog
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.serde.encrypted import EncryptedSerializer
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.config import get_config
from langgraph.errors import GraphBubbleUp
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.runtime import Runtime
from langgraph.types import RetryPolicy

from costguard.context import Deps
from costguard.errors import RetryableError
from costguard.graph import routing
from costguard.nodes.analyze import analyze
from costguard.nodes.execute import execute
from costguard.nodes.gather import gather
from costguard.nodes.intake import intake
from costguard.nodes.investigate import investigate
from costguard.nodes.report import report
from costguard.nodes.review import human_review
from costguard.nodes.validate import validate
from costguard.state import (
    Alert,
    Approval,
    CostState,
    Decision,
    DecisionParameters,
    Facts,
    GraphInput,
    Outcome,
    Plan,
    Result,
    ReviewResult,
    Verdict,
)

log = structlog.get_logger(__name__)
MAX_ATTEMPTS = 3
RETRY = RetryPolicy(
    max_attempts=MAX_ATTEMPTS, initial_interval=0.5, backoff_factor=2.0, jitter=True, retry_on=RetryableError
)

Graph = CompiledStateGraph[CostState, Deps, GraphInput, CostState]


class NodeFn(Protocol):
    def __call__(self, state: CostState, runtime: Runtime[Deps]) -> dict[str, Any]: ...


NODES: dict[str, tuple[NodeFn, RetryPolicy | None]] = {
    "intake": (intake, None),
    "gather": (gather, RETRY),
    "analyze": (analyze, RETRY),
    "validate": (validate, None),
    "investigate": (investigate, RETRY),
    "human_review": (human_review, None),
    "execute": (execute, RETRY),
    "report": (report, None),
}


def observed(name: str, fn: NodeFn, deps: Deps | None = None) -> NodeFn:
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
            telemetry.step(thread_id, name, ok=False, duration_s=duration, error=exc)
            telemetry.flush(thread_id)
            log.warning("node_failed", thread_id=thread_id, node=name, error_class=type(exc).__name__, error=str(exc))
            raise
        decision = update.get("decision") if name == "analyze" else None
        telemetry.step(
            thread_id,
            name,
            ok=True,
            duration_s=time.perf_counter() - started,
            confidence=decision.confidence if decision is not None else None,
        )
        if "outcome" in update:  # report, or intake refusing the input: the run ends, its rows go to disk
            telemetry.flush(thread_id)
        # per node at DEBUG: every node run is in cg_steps already; INFO has one line per alert (service)
        log.debug("node_done", thread_id=thread_id, node=name, duration_s=round(time.perf_counter() - started, 4))
        return update

    node.__name__ = name
    node.__qualname__ = name
    return node


def build_graph(deps: Deps | None = None) -> StateGraph[CostState, Deps, GraphInput, CostState]:
    """START → intake → gather → analyze → validate → {investigate → analyze | human_review | execute | report} → END.

    Without `deps` (the normal case) every run gets its dependencies as `context=Deps(...)`. With
    `deps` (the API server) they are bound into the nodes and the graph has no context schema:
    a server would try to build Deps from a request's JSON `context`.
    """
    graph = StateGraph(CostState, context_schema=Deps if deps is None else None, input_schema=GraphInput)
    for name, (fn, retry) in NODES.items():
        graph.add_node(name, observed(name, fn, deps), retry_policy=retry)
    graph.add_edge(START, "intake")
    graph.add_conditional_edges("intake", routing.after_intake)
    graph.add_edge("gather", "analyze")
    graph.add_edge("analyze", "validate")
    graph.add_conditional_edges("validate", routing.after_validate)
    graph.add_edge("investigate", "analyze")
    graph.add_conditional_edges("human_review", routing.after_review)
    graph.add_edge("execute", "report")
    graph.add_edge("report", END)
    return graph


def compile_graph(checkpointer: BaseCheckpointSaver[str] | None) -> Graph:
    """Compile with the given checkpointer (None: the API server supplies its own)."""
    return build_graph().compile(checkpointer=checkpointer, name="costguard")


STATE_MODELS = (Alert, Facts, Decision, DecisionParameters, Verdict, Plan, Approval, ReviewResult, Result, Outcome)


ZDICT = "cdc4750bf728"  # the preset dictionary new checkpoints are compressed with (bench/zdict.py)


def load_dictionaries() -> dict[str, bytes]:
    """The shipped dictionaries by name (the first 12 hex digits of their SHA-256, checked)."""
    found: dict[str, bytes] = {}
    for entry in resources.files("costguard").joinpath("data").iterdir():
        if entry.name.startswith("checkpoint-") and entry.name.endswith(".zdict"):
            name = entry.name.removeprefix("checkpoint-").removesuffix(".zdict")
            data = entry.read_bytes()
            if hashlib.sha256(data).hexdigest()[:12] != name:
                raise ValueError(f"checkpoint dictionary {entry.name} does not match its name")
            found[name] = data
    return found


class Zlib:
    """A byte transform for LangGraph's `EncryptedSerializer` hook: zlib instead of a cipher.

    A checkpoint is ~3.7 KB of msgpack, more than half of it the same field, channel and module
    names each time. zlib with a preset dictionary of typical checkpoints (`ZDICT`) makes it
    ~0.6 KB for ~20 µs (plain zlib: ~1.3 KB). The encoding is stored with each row ("zd-<name>",
    "zlib", "raw" when it would not shrink); rows written without this transform (no "+" in
    their type) are read as before. A shipped dictionary never changes: rows need it to be read.
    """

    def __init__(self, dictionaries: dict[str, bytes] | None = None, current: str = ZDICT) -> None:
        self.dictionaries = load_dictionaries() if dictionaries is None else dictionaries
        if current not in self.dictionaries:
            raise ValueError(f"checkpoint dictionary {current!r} is missing from costguard/data (a broken install?)")
        self.current = current
        self._zdict = self.dictionaries[current]

    def encrypt(self, plaintext: bytes) -> tuple[str, bytes]:
        packer = zlib.compressobj(6, zdict=self._zdict)
        packed = packer.compress(plaintext) + packer.flush()
        return (f"zd-{self.current}", packed) if len(packed) < len(plaintext) else ("raw", plaintext)

    def decrypt(self, ciphername: str, ciphertext: bytes) -> bytes:
        if ciphername == "raw":
            return ciphertext
        if ciphername == "zlib":
            return zlib.decompress(ciphertext)
        zdict = self.dictionaries.get(ciphername.removeprefix("zd-")) if ciphername.startswith("zd-") else None
        if zdict is None:
            raise ValueError(f"unknown checkpoint encoding {ciphername!r}")
        unpacker = zlib.decompressobj(zdict=zdict)
        plaintext = unpacker.decompress(ciphertext) + unpacker.flush()
        if not unpacker.eof:
            raise ValueError("checkpoint blob is truncated")
        return plaintext


def serializer() -> EncryptedSerializer:
    """The checkpoint serializer: msgpack allowed to revive costguard's state models and nothing
    else, compressed (see Zlib)."""
    inner = JsonPlusSerializer(allowed_msgpack_modules=[(m.__module__, m.__name__) for m in STATE_MODELS])
    return EncryptedSerializer(Zlib(), inner)


def sqlite_checkpointer(path: Path | str) -> SqliteSaver:
    """A SqliteSaver on the costguard database file, in WAL mode with a busy timeout.

    `synchronous=NORMAL` (as the ledger and audit use): a committed checkpoint survives the
    process being killed; a power cut may lose the last few commits, never corrupt the file.
    What a lost commit could hide is recovered by reconciliation: snapshots are found by their
    idempotency tag and a stop or resize by the instance's state, so nothing is done twice.
    It makes each checkpoint about 3x cheaper than the default FULL (bench/results/profile.md).
    """
    conn = sqlite3.connect(str(path), check_same_thread=False, timeout=30.0)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA busy_timeout=30000")
    saver = SqliteSaver(conn, serde=serializer())
    saver.setup()
    return saver
