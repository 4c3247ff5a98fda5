"""Why costguard costs what it costs: exclusive time per part, and what-if variants.

`python -m bench.profile [--n N] [--json]` runs the orchestration-overhead flow (idle instances,
executed: intake → gather → analyze → validate → execute → report) and reports:

1. an attribution of the wall time to parts (checkpoint writes, serialization, ledger + audit,
   thread index, per-operation SQLite connections, telemetry, logging, the structured-output
   wrapper, node bodies, the LangGraph engine). Wrappers are installed at run time, in this
   process only, on the functions named in `PARTS`; each records its *exclusive* time (its own
   time minus the wrapped parts it called), following calls into worker threads through a
   context variable (LangGraph and LangChain copy the context into their executors).
2. what-if variants, each a change applied at run time in this process (costguard's code is not
   edited): logging at WARNING, no telemetry, a checkpoint per step (durability "sync"), no
   durable checkpoint before execute (one invoke: not safe, a lower bound), and the cheap ones
   together; each is timed against the shipped configuration in the same run.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import functools
import importlib
import io
import json
import logging
import pstats
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.fakes import FakeCloud, Member
from bench.harness import Built, RuleModel, build_costguard, cli_logging, close
from bench.report import machine, write
from bench.stats import Stat
from bench.workloads import idle_fleet, scratch, time_plain
from costguard.app.runner import CheckpointMode
from costguard.sandbox.scripted_model import ScriptedChatModel

# (module, qualified attribute, part)
PARTS: tuple[tuple[str, str, str], ...] = (
    ("langgraph.checkpoint.sqlite", "SqliteSaver.put", "checkpoint write (SqliteSaver.put)"),
    ("langgraph.checkpoint.sqlite", "SqliteSaver.put_writes", "checkpoint pending writes (put_writes)"),
    ("langgraph.checkpoint.sqlite", "SqliteSaver.get_tuple", "checkpoint read (get_tuple)"),
    ("langgraph.checkpoint.serde.jsonplus", "JsonPlusSerializer.dumps_typed", "checkpoint serialization"),
    ("langgraph.checkpoint.serde.jsonplus", "JsonPlusSerializer.loads_typed", "checkpoint serialization"),
    ("costguard.tools.store", "Store.connect", "Store: open connection + 3 PRAGMAs"),
    ("costguard.tools.store", "Store.set_thread", "Store: thread index"),
    ("costguard.tools.store", "Store.thread", "Store: thread index"),
    ("costguard.tools.store", "Store.audit", "Store: ledger + audit"),
    ("costguard.tools.store", "Store.record_intent", "Store: ledger + audit"),
    ("costguard.tools.store", "Store.confirm", "Store: ledger + audit"),
    ("costguard.tools.store", "Store.ledger_get", "Store: ledger + audit"),
    ("costguard.tools.telemetry", "SqliteTelemetry.step", "telemetry (step / model-call rows, cache)"),
    ("costguard.tools.telemetry", "SqliteTelemetry.model_call", "telemetry (step / model-call rows, cache)"),
    ("costguard.tools.telemetry", "SqliteTelemetry.cached_decision", "telemetry (step / model-call rows, cache)"),
    ("costguard.tools.telemetry", "SqliteTelemetry.remember_decision", "telemetry (step / model-call rows, cache)"),
    ("structlog._base", "BoundLoggerBase._proxy_to_logger", "logging (structlog JSON lines)"),
    ("costguard.sandbox.scripted_model", "ScriptedChatModel._generate", "the model itself (scripted, 0 latency)"),
    ("costguard.policy", "evaluate", "policy rails (evaluate)"),
    ("bench.fakes", "FakeCloud.describe", "fake cloud"),
    ("bench.fakes", "FakeCloud.snapshot", "fake cloud"),
    ("bench.fakes", "FakeCloud.stop", "fake cloud"),
)
STRUCTURED = "structured-output call (bound model + parse)"
NODE = "node bodies (costguard code, pydantic)"
SERVICE = "service (process_alert: snapshot, outcome)"


@dataclass
class _Frame:
    part: str
    child: float = 0.0


@dataclass
class Attribution:
    """Exclusive wall time per part; calls in worker threads are charged to their own part."""

    totals: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    calls: Counter[str] = field(default_factory=Counter)
    _var: ContextVar[_Frame | None] = field(default_factory=lambda: ContextVar("bench_frame", default=None))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def wrap(self, fn: Callable[..., Any], part: str) -> Callable[..., Any]:
        @functools.wraps(fn)
        def timed(*args: Any, **kwargs: Any) -> Any:
            parent = self._var.get()
            frame = _Frame(part)
            token = self._var.set(frame)
            started = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                elapsed = time.perf_counter() - started
                self._var.reset(token)
                with self._lock:
                    self.totals[part] += elapsed - frame.child
                    self.calls[part] += 1
                    if parent is not None:
                        parent.child += elapsed

        return timed


@contextlib.contextmanager
def patched(target: Any, attr: str, value: Any) -> Iterator[None]:
    old = getattr(target, attr)
    setattr(target, attr, value)
    try:
        yield
    finally:
        setattr(target, attr, old)


def _resolve(module: str, qualname: str) -> tuple[Any, str] | None:
    try:
        owner: Any = importlib.import_module(module)
    except ImportError:
        return None
    *path, attr = qualname.split(".")
    for name in path:
        owner = getattr(owner, name, None)
        if owner is None:
            return None
    return (owner, attr) if hasattr(owner, attr) else None


@contextlib.contextmanager
def attributed(att: Attribution) -> Iterator[None]:
    """Install the wrappers of PARTS, the node bodies, the structured-output call and the service."""
    from costguard import policy
    from costguard.app.runner import CostGuard
    from costguard.graph import builder
    from costguard.nodes import analyze, validate

    with contextlib.ExitStack() as stack:
        for module, qualname, part in PARTS:
            found = _resolve(module, qualname)
            if found is not None:
                owner, attr = found
                stack.enter_context(patched(owner, attr, att.wrap(getattr(owner, attr), part)))
        stack.enter_context(patched(validate, "evaluate", att.wrap(policy.evaluate, "policy rails (evaluate)")))
        nodes = {name: (att.wrap(fn, NODE), retry) for name, (fn, retry) in builder.NODES.items()}
        stack.enter_context(patched(builder, "NODES", nodes))
        real_structured = getattr(analyze, "structured")  # noqa: B009 - imported name, not re-exported

        def structured(*args: Any, **kwargs: Any) -> Any:
            runnable = real_structured(*args, **kwargs)
            return _Invoking(att.wrap(runnable.invoke, STRUCTURED))

        stack.enter_context(patched(analyze, "structured", structured))
        for name in ("snapshot", "outcome"):
            stack.enter_context(patched(CostGuard, name, att.wrap(getattr(CostGuard, name), SERVICE)))
        yield


@dataclass
class _Invoking:
    invoke: Callable[..., Any]


# --- variants -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Variant:
    name: str
    log_level: int = logging.INFO
    telemetry: bool = True
    durability: CheckpointMode = "exit"  # CostGuard's, as shipped
    boundary: bool = True  # False: one invoke, no durable checkpoint before execute (not safe: a what-if)


VARIANTS = (
    Variant("as shipped (exit + checkpoint before execute)"),
    Variant("logging at WARNING", log_level=logging.WARNING),
    Variant("no telemetry (NullTelemetry)", telemetry=False),
    Variant('durability "sync" (a checkpoint per step)', durability="sync"),
    Variant("no checkpoint before execute (one invoke; unsafe)", boundary=False),
    Variant(
        "all of the above but sync (lower bound)",
        log_level=logging.WARNING,
        telemetry=False,
        boundary=False,
    ),
)


def _without_boundary(built: Built) -> None:
    graph = built.guard.graph
    invoke = graph.invoke

    def one_run(*args: Any, **kwargs: Any) -> Any:
        kwargs.pop("interrupt_before", None)
        return invoke(*args, **kwargs)

    graph.invoke = one_run  # type: ignore[method-assign]


def run_variant(variant: Variant, fleet: list[Member], root: Path | None) -> float:
    """Seconds for the fleet through CostGuard.process under the variant."""
    cli_logging(variant.log_level)
    with scratch(root) as d:
        cloud = FakeCloud.of(m.instance for m in fleet)
        model = ScriptedChatModel(rule=RuleModel(fleet))
        built = build_costguard(
            d / "costguard.db", cloud, model, telemetry=variant.telemetry, durability=variant.durability
        )
        if not variant.boundary:
            _without_boundary(built)
        started = time.perf_counter()
        outcomes = list(built.guard.process([m.alert for m in fleet]))
        elapsed = time.perf_counter() - started
        close(built)
    cli_logging()
    bad = [o for o in outcomes if o.status != "executed"]
    if bad:
        raise RuntimeError(f"variant {variant.name}: {len(bad)} alerts not executed: {bad[0]}")
    return elapsed


def attribution(fleet: list[Member], root: Path | None) -> tuple[float, Attribution, dict[str, int]]:
    att = Attribution()
    with scratch(root) as d, attributed(att):
        cloud = FakeCloud.of(m.instance for m in fleet)
        built = build_costguard(d / "costguard.db", cloud, ScriptedChatModel(rule=RuleModel(fleet)))
        list(built.guard.process([m.alert for m in fleet[:10]]))  # warm
        att.totals.clear()
        att.calls.clear()
        rest = fleet[10:]
        started = time.perf_counter()
        list(built.guard.process([m.alert for m in rest]))
        elapsed = time.perf_counter() - started
        conn = built.store.connect()
        try:
            counts = {
                "checkpoints": conn.execute("SELECT count(*) FROM checkpoints").fetchone()[0],
                "writes": conn.execute("SELECT count(*) FROM writes").fetchone()[0],
                "audit": conn.execute("SELECT count(*) FROM cg_audit").fetchone()[0],
                "ledger": conn.execute("SELECT count(*) FROM cg_ledger").fetchone()[0],
            }
        finally:
            conn.close()
        close(built)
    per = len(rest)
    att.totals["LangGraph engine + the rest"] = max(0.0, elapsed - sum(att.totals.values()))
    return elapsed / per, att, {k: v // 1 for k, v in counts.items()}


def cprofile_top(fleet: list[Member], root: Path | None, limit: int = 25) -> str:
    """cProfile of the main thread (work done in executor threads shows up as lock waits)."""
    with scratch(root) as d:
        cloud = FakeCloud.of(m.instance for m in fleet)
        built = build_costguard(d / "costguard.db", cloud, ScriptedChatModel(rule=RuleModel(fleet)))
        profiler = cProfile.Profile()
        profiler.enable()
        list(built.guard.process([m.alert for m in fleet]))
        profiler.disable()
        close(built)
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(limit)
    return out.getvalue()


def reference_points(fleet: list[Member]) -> dict[str, float]:
    """What the engine and the structured-output wrapper cost on their own (ms), without any durable write."""
    from langchain_core.messages import HumanMessage
    from langgraph.checkpoint.memory import InMemorySaver

    from bench.baselines import DECISION_SCHEMA, build_plain

    out: dict[str, float] = {}
    for name, in_memory in (
        ("plain graph, no checkpointer (ms/alert)", False),
        ("plain graph, InMemorySaver (ms/alert)", True),
    ):
        cloud = FakeCloud.of(m.instance for m in fleet)
        graph = build_plain(cloud, ScriptedChatModel(rule=RuleModel(fleet))).compile(
            checkpointer=InMemorySaver() if in_memory else None
        )
        started = time.perf_counter()
        for m in fleet:
            graph.invoke({"alert": m.alert.model_dump(mode="json")}, {"configurable": {"thread_id": m.alert.alert_id}})
        out[name] = (time.perf_counter() - started) / len(fleet) * 1e3
    model = ScriptedChatModel(rule=RuleModel(fleet))
    for name, raw in (
        ("with_structured_output (ms/call)", False),
        ("with_structured_output, include_raw=True (ms/call)", True),
    ):
        runnable = model.with_structured_output(DECISION_SCHEMA, include_raw=raw)
        started = time.perf_counter()
        for m in fleet:
            runnable.invoke([HumanMessage(f'"instance_id": "{m.instance.instance_id}"')])
        out[name] = (time.perf_counter() - started) / len(fleet) * 1e3
    return {k: round(v, 3) for k, v in out.items()}


def profile(n: int, reps: int, root: Path | None, log: Callable[[str], None]) -> dict[str, Any]:
    cli_logging()
    fleet = idle_fleet(n, seed=23, prefix="p")
    run_variant(VARIANTS[0], fleet[:20], root)  # warm
    per_alert, att, counts = attribution(fleet, root)
    parts = sorted(att.totals.items(), key=lambda kv: -kv[1])
    per = n - 10
    log(f"  attribution: {per_alert * 1e3:.2f} ms/alert (with wrappers)")
    for part, secs in parts:
        log(f"    {secs / per * 1e3:7.3f} ms/alert  {100 * secs / (per_alert * per):5.1f}%  {part}")
    times: dict[str, list[float]] = {v.name: [] for v in VARIANTS}
    plain: list[float] = []
    for rep in range(reps):
        for variant in VARIANTS:
            times[variant.name].append(run_variant(variant, fleet, root) / n * 1e3)
        plain.append(time_plain(fleet, root) / n * 1e3)
        log(f"  variants rep {rep + 1}/{reps} done")
    references = reference_points(fleet)
    for name, value in references.items():
        log(f"  reference: {name}: {value}")
    shipped = times[VARIANTS[0].name]
    variants = []
    for variant in VARIANTS:
        stat = Stat.of(times[variant.name])
        ratio = Stat.of([a / b for a, b in zip(times[variant.name], shipped, strict=True)])
        vs_plain = Stat.of([a / b for a, b in zip(times[variant.name], plain, strict=True)])
        variants.append(
            {
                "variant": variant.name,
                "ms_per_alert": stat.json(),
                "vs_shipped": ratio.json(),
                "vs_plain": vs_plain.json(),
            }
        )
        log(
            f"  {variant.name:48s} {stat.fmt()} ms/alert  ×{ratio.median:.2f} of shipped  "
            f"×{vs_plain.median:.2f} of plain"
        )
    return {
        "n": n,
        "reps": reps,
        "attribution_ms_per_alert": {p: round(s / per * 1e3, 4) for p, s in parts},
        "attribution_calls_per_alert": {p: round(c / per, 2) for p, c in att.calls.most_common()},
        "attributed_total_ms_per_alert": round(per_alert * 1e3, 3),
        "rows_per_alert": {k: round(v / n, 2) for k, v in counts.items()},
        "plain_ms_per_alert": Stat.of(plain).json(),
        "reference_points": references,
        "variants": variants,
        "cprofile_main_thread": cprofile_top(fleet[: min(n, 200)], root),
    }


def markdown(result: dict[str, Any], meta: dict[str, Any]) -> str:
    lines = [
        "# Where costguard's time goes (orchestration-overhead flow)",
        "",
        f"Measured {meta['date']} on `{meta['uname_m']}`, nproc {meta['nproc']}, Python {meta['python']}; "
        f"{result['n']} alerts, {result['reps']} repeats.",
        "",
        f"Attributed total (with timing wrappers): {result['attributed_total_ms_per_alert']} ms per alert. "
        f"Rows written per alert: {result['rows_per_alert']}. Exclusive time per part; checkpoint writes run in "
        "LangGraph's background thread and can overlap the engine's work, so the residual (engine and the rest) "
        "is floored at 0.",
        "",
        "| part | ms / alert | calls / alert |",
        "|---|---|---|",
    ]
    calls = result["attribution_calls_per_alert"]
    for part, ms in result["attribution_ms_per_alert"].items():
        lines.append(f"| {part} | {ms:.3f} | {calls.get(part, '—')} |")
    lines += [
        "",
        f"Plain LangGraph baseline, same run: {result['plain_ms_per_alert']['median']:.2f} ms per alert.",
        "",
        "| variant (applied at run time, costguard unchanged) | ms / alert | × shipped | × plain |",
        "|---|---|---|---|",
    ]
    for v in result["variants"]:
        ms = v["ms_per_alert"]
        lines.append(
            f"| {v['variant']} | {ms['median']:.2f} [{ms['min']:.2f}–{ms['max']:.2f}] | "
            f"{v['vs_shipped']['median']:.2f} | {v['vs_plain']['median']:.2f} |"
        )
    lines += ["", "Reference points (no durable write at all), same run:", ""]
    lines += [f"- {name}: {value}" for name, value in result.get("reference_points", {}).items()]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=300, help="alerts per run (default 300)")
    parser.add_argument("--reps", type=int, default=3, help="repeats of each variant (default 3)")
    parser.add_argument("--dir", type=Path, default=None, help="where the scratch databases go (default: temp)")
    parser.add_argument("--json", action="store_true", help="print the JSON result")
    args = parser.parse_args(argv)
    meta = machine()
    result = profile(args.n, args.reps, args.dir, print)
    write("profile", {"meta": meta, "profile": result}, markdown(result, meta))
    if args.json:
        print(json.dumps({"meta": meta, "profile": result}, indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
