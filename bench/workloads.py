"""The six workloads of `python -m bench`. Each returns rows: costguard's figure, the baseline's, the ratio."""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import json
import os
import random
import re
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from langgraph.checkpoint.base import copy_checkpoint
from langgraph.checkpoint.base.id import uuid6
from pydantic import SecretStr

from bench.baselines import Floor, Plain
from bench.fakes import KINDS, FakeCloud, Member, make_fleet
from bench.harness import RuleModel, WorkerGuard, build_costguard, close
from bench.report import Row
from bench.stats import Stat, percentile, ratios
from costguard.app.runner import CheckpointMode
from costguard.app.workers import process_in_workers
from costguard.nodes.analyze import build_messages
from costguard.sandbox.scripted_model import ScriptedChatModel
from costguard.state import CostState, Outcome, ReviewResponse
from costguard.tools.pricing import load_price_list


@dataclass(frozen=True)
class Sizes:
    overhead_n: int
    overhead_reps: int
    overlap_n: int
    overlap_reps: int
    resume_n: int
    resume_reps: int
    pending: int
    history: int
    query_reps: int
    storage_n: int
    llm_per_kind: int  # alerts of each of the 5 kinds for the local model
    llm_budget_s: float  # stop asking the local model after this long (a shared, busy machine)
    profile_n: int
    profile_reps: int


QUICK = Sizes(200, 3, 200, 2, 100, 2, 10_000, 10_000, 20, 200, 1, 90.0, 150, 1)
FULL = Sizes(1_000, 5, 1_000, 3, 300, 3, 10_000, 10_000, 50, 1_000, 4, 300.0, 300, 3)


@contextmanager
def scratch(root: Path | None) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="cg-bench-", dir=root))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def idle_fleet(n: int, seed: int, prefix: str = "a") -> list[Member]:
    return make_fleet(n, random.Random(seed), prefix=prefix, kinds=("idle_dev",))


# --- 1. orchestration overhead --------------------------------------------------------------------


def time_costguard(
    fleet: list[Member], root: Path | None, *, expect: str = "executed", durability: CheckpointMode = "exit"
) -> float:
    """Seconds to process the fleet's alerts one by one through CostGuard.process."""
    with scratch(root) as d:
        cloud = FakeCloud.of(m.instance for m in fleet)
        model = ScriptedChatModel(rule=RuleModel(fleet))
        built = build_costguard(d / "costguard.db", cloud, model, durability=durability)
        alerts = [m.alert for m in fleet]
        started = time.perf_counter()
        outcomes = list(built.guard.process(alerts))
        elapsed = time.perf_counter() - started
        close(built)
    bad = [o for o in outcomes if o.status != expect]
    if bad:
        raise RuntimeError(f"costguard: {len(bad)} alerts not {expect}: {bad[0]}")
    return elapsed


def time_plain(fleet: list[Member], root: Path | None) -> float:
    with scratch(root) as d:
        cloud = FakeCloud.of(m.instance for m in fleet)
        plain = Plain(d / "plain.db", cloud, ScriptedChatModel(rule=RuleModel(fleet)))
        alerts = [m.alert for m in fleet]
        started = time.perf_counter()
        results = plain.process(alerts)
        elapsed = time.perf_counter() - started
        plain.close()
    bad = [r for r in results if r.get("result") != "executed"]
    if bad:
        raise RuntimeError(f"plain: {len(bad)} alerts not executed: {bad[0]}")
    return elapsed


def time_floor(fleet: list[Member], root: Path | None) -> float:
    with scratch(root) as d:
        floor = Floor(d / "floor.db")
        alerts = [m.alert for m in fleet]
        started = time.perf_counter()
        floor.process(alerts)
        elapsed = time.perf_counter() - started
        floor.close()
    return elapsed


def overhead(n: int, reps: int, root: Path | None, log: Callable[[str], None]) -> list[Row]:
    fleet = idle_fleet(n, seed=11)
    warm = fleet[:20]
    time_costguard(warm, root)
    time_plain(warm, root)
    time_floor(warm, root)
    runners: list[tuple[str, Callable[[], float]]] = [
        ("costguard", lambda: time_costguard(fleet, root)),
        ("costguard-sync", lambda: time_costguard(fleet, root, durability="sync")),
        ("plain", lambda: time_plain(fleet, root)),
        ("floor", lambda: time_floor(fleet, root)),
    ]
    per_alert: dict[str, list[float]] = {name: [] for name, _ in runners}
    for rep in range(reps):
        order = runners[rep % len(runners) :] + runners[: rep % len(runners)]  # rotate: no fixed position bias
        for name, fn in order:
            per_alert[name].append(fn() / n * 1e3)
        log(f"  overhead rep {rep + 1}/{reps}: " + ", ".join(f"{k} {v[-1]:.2f} ms/alert" for k, v in per_alert.items()))
    cg = Stat.of(per_alert["costguard"])
    plain = Stat.of(per_alert["plain"])
    floor = Stat.of(per_alert["floor"])
    vs_plain = ratios(per_alert["costguard"], per_alert["plain"])
    vs_floor = ratios(per_alert["costguard"], per_alert["floor"])
    what = (
        f"{n} alerts, each intake→gather→analyze→validate→execute→report, executed (snapshot + stop on the fake cloud)"
    )
    return [
        Row(
            "1 overhead",
            "time per alert vs plain LangGraph",
            "ms",
            cg,
            "plain LangGraph + stock SqliteSaver",
            plain,
            vs_plain,
            target="≥ 2× faster (ratio ≤ 0.5)",
            met=vs_plain.median <= 0.5,
            note=what
            + "; costguard as shipped (durability exit + a durable checkpoint before execute: 2 checkpoints an"
            " executed alert; ledger and audit synchronous), plain at LangGraph's default (async, one a step).",
        ),
        Row(
            "1 overhead",
            "time per alert, a checkpoint per step (COSTGUARD_DURABILITY=sync), vs plain LangGraph",
            "ms",
            Stat.of(per_alert["costguard-sync"]),
            "plain LangGraph + stock SqliteSaver",
            plain,
            ratios(per_alert["costguard-sync"], per_alert["plain"]),
            note="the same run with durability sync: every step durable before the next starts.",
        ),
        Row(
            "1 overhead",
            "time per alert vs floor",
            "ms",
            cg,
            "floor: sqlite3, 1 durable row per step",
            floor,
            vs_floor,
            target="within 3× (ratio ≤ 3)",
            met=vs_floor.median <= 3,
            note="floor: WAL + synchronous=FULL, one INSERT + COMMIT per step, 6 steps an alert.",
        ),
    ]


# --- 2. model-latency overlap ---------------------------------------------------------------------


def overlap(
    n: int,
    reps: int,
    root: Path | None,
    log: Callable[[str], None],
    latency: float = 0.2,
    concurrency: int = 50,
    workers: int | None = None,
) -> list[Row]:
    """Processes: 4 per core by default (fewer threads wait on each interpreter's lock; bench/README.md)."""
    fleet = idle_fleet(n, seed=12, prefix="o")
    alerts = [m.alert for m in fleet]
    ideal = n * latency / concurrency
    procs = workers or 4 * (os.cpu_count() or 1)
    cg_times: list[float] = []
    multi_times: list[float] = []
    plain_times: list[float] = []
    for rep in range(reps):
        with scratch(root) as d:
            cloud = FakeCloud.of(m.instance for m in fleet)
            model = ScriptedChatModel(rule=RuleModel(fleet), latency_s=latency)
            built = build_costguard(d / "costguard.db", cloud, model)
            started = time.perf_counter()
            outcomes = list(built.guard.process(alerts, concurrency=concurrency))
            cg_times.append(time.perf_counter() - started)
            close(built)
        _expect_executed("overlap (threads)", outcomes)
        with scratch(root) as d:
            factory = WorkerGuard(tuple(fleet), d / "costguard.db", latency)
            factory()  # the schema, created once before the workers start
            started = time.perf_counter()
            outcomes = list(process_in_workers(factory, alerts, workers=procs, concurrency=concurrency))
            multi_times.append(time.perf_counter() - started)
        _expect_executed("overlap (workers)", outcomes)
        with scratch(root) as d:
            cloud = FakeCloud.of(m.instance for m in fleet)
            plain = Plain(d / "plain.db", cloud, ScriptedChatModel(rule=RuleModel(fleet), latency_s=latency))
            started = time.perf_counter()
            plain.process(alerts, concurrency=concurrency)
            plain_times.append(time.perf_counter() - started)
            plain.close()
        log(
            f"  overlap rep {rep + 1}/{reps}: costguard {procs} workers {multi_times[-1]:.2f} s, "
            f"1 process {cg_times[-1]:.2f} s, plain {plain_times[-1]:.2f} s, ideal {ideal:.2f} s"
        )
    multi = Stat.of(multi_times)
    cg = Stat.of(cg_times)
    what = f"{n} alerts, {latency * 1e3:.0f} ms model, concurrency {concurrency}"
    return [
        Row(
            "2 overlap",
            f"wall time, {what}, {procs} worker processes",
            "s",
            multi,
            "ideal N×latency/concurrency",
            Stat.of([ideal]),
            Stat.of([t / ideal for t in multi_times]),
            target="≤ 1.25× ideal",
            met=multi.median / ideal <= 1.25,
            note=(
                f"costguard.parallel.process_in_workers(workers={procs}, concurrency={concurrency}): "
                f"{concurrency} threads over {procs} forked processes, one queue, start-up included."
            ),
        ),
        Row(
            "2 overlap",
            f"wall time, {what}, 1 process",
            "s",
            cg,
            "ideal N×latency/concurrency",
            Stat.of([ideal]),
            Stat.of([t / ideal for t in cg_times]),
            note=f"CostGuard.process(..., concurrency={concurrency}): one process, its CPU part one thread at a time.",
        ),
        Row(
            "2 overlap",
            "wall time vs plain LangGraph, same concurrency",
            "s",
            multi,
            "plain LangGraph, 50 threads",
            Stat.of(plain_times),
            ratios(multi_times, plain_times),
            note="plain: the same flow in a ThreadPoolExecutor of the same size, one process.",
        ),
    ]


def _expect_executed(what: str, outcomes: list[Outcome]) -> None:
    bad = [o for o in outcomes if o.status != "executed"]
    if bad:
        raise RuntimeError(f"{what}: {len(bad)} alerts not executed: {bad[0]}")


# --- 3. resume, review list, history --------------------------------------------------------------


def oversized_fleet(n: int, seed: int, prefix: str) -> list[Member]:
    """Instances whose right answer (resize, > $100/month) needs a human: every thread stops at review."""
    return make_fleet(n, random.Random(seed), prefix=prefix, kinds=("oversized",))


def timed_each(fn: Callable[[str], object], keys: list[str]) -> list[float]:
    gc.collect()  # start each timed series from a collected heap (earlier workloads leave garbage behind)
    out = []
    for key in keys:
        started = time.perf_counter()
        fn(key)
        out.append((time.perf_counter() - started) * 1e3)
    return out


def pct_rows(
    workload: str,
    metric: str,
    cg_ms: list[list[float]],
    base_name: str,
    base_ms: list[list[float]],
    target_ms: float | None,
    note: str,
) -> list[Row]:
    """p50 and p99 rows; each repeat's percentile is one value of the Stat."""
    rows = []
    for pct in (50.0, 99.0):
        cg = [percentile(v, pct) for v in cg_ms]
        base = [percentile(v, pct) for v in base_ms]
        cg_stat = Stat.of(cg)
        rows.append(
            Row(
                workload,
                f"{metric} p{pct:.0f}",
                "ms",
                cg_stat,
                base_name,
                Stat.of(base),
                ratios(cg, base),
                target=f"≤ {target_ms:g} ms" if target_ms is not None else "",
                met=(cg_stat.median <= target_ms) if target_ms is not None else None,
                note=note if pct == 50.0 else "",
            )
        )
    return rows


def _resume_costguard(fleet: list[Member], root: Path | None) -> tuple[list[float], list[float]]:
    """ms to load, then to resume with an approval, each of the fleet's threads waiting for review."""
    with scratch(root) as d:
        cloud = FakeCloud.of(m.instance for m in fleet)
        built = build_costguard(d / "costguard.db", cloud, ScriptedChatModel(rule=RuleModel(fleet)))
        guard = built.guard
        outcomes = list(guard.process([m.alert for m in fleet]))
        if any(o.status != "awaiting_review" for o in outcomes):
            raise RuntimeError(f"resume: not all threads wait for review: {outcomes[0]}")
        threads = [o.thread_id for o in outcomes]
        digests = {o.thread_id: o.digest or "" for o in outcomes}
        load = timed_each(guard.snapshot, threads)

        def approve(thread_id: str) -> None:
            response = ReviewResponse(decision="approve", reviewer="bench@example.com", digest=digests[thread_id])
            outcome = guard.review(thread_id, response)
            if outcome.status != "executed":
                raise RuntimeError(f"resume: {thread_id} ended {outcome.status}: {outcome.reason}")

        resumed = timed_each(approve, threads)
        close(built)
    return load, resumed


def _resume_plain(fleet: list[Member], root: Path | None) -> tuple[list[float], list[float]]:
    with scratch(root) as d:
        cloud = FakeCloud.of(m.instance for m in fleet)
        plain = Plain(d / "plain.db", cloud, ScriptedChatModel(rule=RuleModel(fleet)), review_all=True)
        plain.process([m.alert for m in fleet])
        ids = [m.alert.alert_id for m in fleet]
        load = timed_each(lambda a: plain.graph.get_state(plain.config(a)), ids)
        resumed = timed_each(plain.resume, ids)
        plain.close()
    return load, resumed


def resume(n: int, reps: int, root: Path | None, log: Callable[[str], None]) -> list[Row]:
    """Threads interrupted at human_review, resumed with an approval (→ execute → report)."""
    cg_resume: list[list[float]] = []
    cg_load: list[list[float]] = []
    plain_resume: list[list[float]] = []
    plain_load: list[list[float]] = []
    for rep in range(reps):
        fleet = oversized_fleet(n, seed=31 + rep, prefix=f"r{rep}")
        load, resumed = _resume_costguard(fleet, root)
        cg_load.append(load)
        cg_resume.append(resumed)
        load, resumed = _resume_plain(fleet, root)
        plain_load.append(load)
        plain_resume.append(resumed)
        log(
            f"  resume rep {rep + 1}/{reps}: costguard p50 {percentile(cg_resume[-1], 50):.2f} ms, "
            f"plain p50 {percentile(plain_resume[-1], 50):.2f} ms"
        )
    return [
        *pct_rows(
            "3 resume",
            "resume an interrupted thread (approve → execute → report)",
            cg_resume,
            "plain LangGraph Command(resume=...)",
            plain_resume,
            2.0,
            f"{n} threads waiting at human_review, each resumed with CostGuard.review(approve): re-entry, "
            "digest check, ledgered snapshot + resize on the fake cloud, audit, report, durable checkpoints.",
        ),
        *pct_rows(
            "3 resume",
            "load an interrupted thread (get_state)",
            cg_load,
            "plain LangGraph get_state",
            plain_load,
            None,
            "the read half of a resume: the thread's latest checkpoint, its pending writes and interrupts.",
        ),
    ]


def _clone_pending(db: Path, threads: list[str], total: int) -> None:
    """Copy real waiting threads (checkpoints, writes, index row) under new ids until `total` wait."""
    conn = sqlite3.connect(str(db), isolation_level=None)
    try:
        conn.execute("BEGIN")
        need = total - len(threads)
        for k in range(need):
            src = threads[k % len(threads)]
            new = f"{src}:clone-{k:05d}"
            conn.execute(
                "INSERT INTO checkpoints (thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, type,"
                " checkpoint, metadata) SELECT ?, checkpoint_ns, checkpoint_id, parent_checkpoint_id, type,"
                " checkpoint, metadata FROM checkpoints WHERE thread_id = ?",
                (new, src),
            )
            conn.execute(
                "INSERT INTO writes (thread_id, checkpoint_ns, checkpoint_id, task_id, task_path, idx, channel,"
                " type, value) SELECT ?, checkpoint_ns, checkpoint_id, task_id, task_path, idx, channel, type,"
                " value FROM writes WHERE thread_id = ?",
                (new, src),
            )
            conn.execute(
                "INSERT INTO cg_threads (thread_id, alert_id, status, updated_at, outcome, alert)"
                " SELECT ?, alert_id || ?, status, updated_at, outcome, alert FROM cg_threads WHERE thread_id = ?",
                (new, f":clone-{k:05d}", src),
            )
        conn.execute("COMMIT")
    finally:
        conn.close()


FLOOR_PENDING = (
    "SELECT t.thread_id, c.checkpoint FROM cg_threads t JOIN checkpoints c ON c.thread_id = t.thread_id"
    " AND c.checkpoint_ns = '' AND c.checkpoint_id = (SELECT max(checkpoint_id) FROM checkpoints"
    " WHERE thread_id = t.thread_id AND checkpoint_ns = '')"
    " WHERE t.status = 'awaiting_review' ORDER BY t.updated_at LIMIT ?"
)
FLOOR_HISTORY = (
    "SELECT checkpoint_id, parent_checkpoint_id, checkpoint, metadata FROM checkpoints"
    " WHERE thread_id = ? AND checkpoint_ns = '' ORDER BY checkpoint_id DESC LIMIT ?"
)


def _repeat(fn: Callable[[], object], reps: int) -> list[float]:
    fn()  # warm the page cache and the statement cache
    gc.collect()  # and start from a collected heap (earlier workloads leave garbage behind)
    out = []
    for _ in range(reps):
        started = time.perf_counter()
        fn()
        out.append((time.perf_counter() - started) * 1e3)
    return out


def _checkpoint_ids(count: int) -> list[str]:
    """`count` checkpoint ids in increasing order, shaped like LangGraph's (uuid6)."""
    base = uuid.UUID(uuid6().hex).int
    return [str(uuid.UUID(int=base + (i << 80))) for i in range(count)]


def _grow_history(guard_saver: Any, source_thread: str, thread: str, count: int) -> None:
    """A thread with `count` checkpoints, each a real costguard checkpoint written with SqliteSaver.put."""
    tup = guard_saver.get_tuple({"configurable": {"thread_id": source_thread, "checkpoint_ns": ""}})
    assert tup is not None
    conn = guard_saver.conn
    conn.execute("PRAGMA synchronous=OFF")  # population only: the timed reads do not depend on it
    config: Any = {"configurable": {"thread_id": thread, "checkpoint_ns": ""}}
    for i, cid in enumerate(_checkpoint_ids(count)):
        checkpoint = copy_checkpoint(tup.checkpoint)
        checkpoint["id"] = cid
        metadata = {**tup.metadata, "step": i, "source": "loop"}
        config = guard_saver.put(config, checkpoint, metadata, {})
    conn.execute("PRAGMA synchronous=FULL")


def listings(pending: int, history: int, reps: int, root: Path | None, log: Callable[[str], None]) -> list[Row]:
    """`review list` over `pending` waiting threads; paged `history` of a thread with `history` checkpoints."""
    seeds = 100
    fleet = oversized_fleet(seeds, seed=41, prefix="l")
    with scratch(root) as d:
        db = d / "costguard.db"
        cloud = FakeCloud.of(m.instance for m in fleet)
        built = build_costguard(db, cloud, ScriptedChatModel(rule=RuleModel(fleet)))
        guard = built.guard
        threads = [o.thread_id for o in guard.process([m.alert for m in fleet])]
        started = time.perf_counter()
        _clone_pending(db, threads, pending)
        _grow_history(guard.graph.checkpointer, threads[0], "alert:history-bench", history)
        log(
            f"  listings: {pending} pending threads and a {history}-checkpoint thread "
            f"in {time.perf_counter() - started:.1f} s"
        )
        listed = guard.pending(limit=100)
        if len(listed) != 100:
            raise RuntimeError(f"review list returned {len(listed)} items, expected 100")
        floor_conn = sqlite3.connect(str(db))
        cg_list = _repeat(lambda: guard.pending(limit=100), reps)
        floor_list = _repeat(lambda: floor_conn.execute(FLOOR_PENDING, (100,)).fetchall(), reps)
        config: Any = {"configurable": {"thread_id": "alert:history-bench"}}
        page = list(guard.graph.get_state_history(config, limit=50))
        if len(page) != 50:
            raise RuntimeError(f"history returned {len(page)} checkpoints, expected 50")
        cg_hist = _repeat(lambda: list(guard.graph.get_state_history(config, limit=50)), reps)
        floor_hist = _repeat(lambda: floor_conn.execute(FLOOR_HISTORY, ("alert:history-bench", 50)).fetchall(), reps)
        started = time.perf_counter()
        everything = list(guard.graph.get_state_history(config))
        unpaged_ms = (time.perf_counter() - started) * 1e3
        floor_conn.close()
        close(built)
    log(
        f"  listings: review list p50 {percentile(cg_list, 50):.1f} ms, "
        f"history page p50 {percentile(cg_hist, 50):.1f} ms"
    )
    return [
        *pct_rows(
            "3 review list",
            f"review list, {pending:,} pending, first page of 100",
            [cg_list],
            "floor: one indexed SQL query (blobs not decoded)",
            [floor_list],
            100.0,
            f"CostGuard.pending(limit=100) over {pending:,} waiting threads ({seeds} processed through the graph, "
            f"the rest copies of their rows); {reps} timed calls.",
        ),
        *pct_rows(
            "3 history",
            f"history page of 50, thread of {history:,} checkpoints",
            [cg_hist],
            "floor: one SQL page (blobs not decoded)",
            [floor_hist],
            100.0,
            f"graph.get_state_history(limit=50), as `costguard history` pages it; the whole history unpaged "
            f"({len(everything):,} snapshots) took {unpaged_ms:,.0f} ms.",
        ),
    ]


# --- 4. bytes stored per alert --------------------------------------------------------------------


def db_bytes(db: Path) -> tuple[int, dict[str, int]]:
    """The file's size after folding the WAL in, and bytes per table/index (dbstat pages)."""
    conn = sqlite3.connect(str(db))
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        try:
            tables = {
                str(name): int(size)
                for name, size in conn.execute("SELECT name, sum(pgsize) FROM dbstat GROUP BY name")
            }
        except sqlite3.OperationalError:  # SQLite built without dbstat
            tables = {}
    finally:
        conn.close()
    wal = db.with_name(db.name + "-wal")
    return db.stat().st_size + (wal.stat().st_size if wal.exists() else 0), tables


def mixed_fleet(n: int, seed: int, prefix: str) -> list[Member]:
    return make_fleet(n, random.Random(seed), prefix=prefix)


@dataclass
class StorageRun:
    per_alert: float
    tables: dict[str, float]
    statuses: dict[str, int]
    model_calls: int
    prompt_tokens: list[int]


def store_costguard(fleet: list[Member], root: Path | None) -> StorageRun:
    with scratch(root) as d:
        db = d / "costguard.db"
        cloud = FakeCloud.of(m.instance for m in fleet)
        model = ScriptedChatModel(rule=RuleModel(fleet))
        built = build_costguard(db, cloud, model)
        close(built)
        empty, empty_tables = db_bytes(db)
        built = build_costguard(db, cloud, model)
        outcomes = list(built.guard.process([m.alert for m in fleet]))
        close(built)
        full, tables = db_bytes(db)
    n = len(fleet)
    grown = {k: (v - empty_tables.get(k, 0)) / n for k, v in tables.items() if v - empty_tables.get(k, 0) > 0}
    statuses: dict[str, int] = {}
    for o in outcomes:
        statuses[o.status] = statuses.get(o.status, 0) + 1
    tokens = [sum(len(str(m.content).split()) for m in call) for call in model.calls]
    return StorageRun((full - empty) / n, grown, statuses, len(model.calls), tokens)


def store_plain(fleet: list[Member], root: Path | None) -> float:
    with scratch(root) as d:
        db = d / "plain.db"
        cloud = FakeCloud.of(m.instance for m in fleet)
        plain = Plain(db, cloud, ScriptedChatModel(rule=RuleModel(fleet)))
        plain.close()
        empty, _ = db_bytes(db)
        plain = Plain(db, cloud, ScriptedChatModel(rule=RuleModel(fleet)))
        plain.process([m.alert for m in fleet])
        plain.close()
        full, _ = db_bytes(db)
    return (full - empty) / len(fleet)


def store_floor(fleet: list[Member], root: Path | None) -> float:
    with scratch(root) as d:
        db = d / "floor.db"
        Floor(db).close()
        empty, _ = db_bytes(db)
        floor = Floor(db)
        floor.process(m.alert for m in fleet)
        floor.close()
        full, _ = db_bytes(db)
    return (full - empty) / len(fleet)


def storage(n: int, root: Path | None, log: Callable[[str], None]) -> tuple[list[Row], StorageRun]:
    fleet = mixed_fleet(n, seed=51, prefix="s")
    cg = store_costguard(fleet, root)
    plain = store_plain(fleet, root)
    floor = store_floor(fleet, root)
    log(f"  storage: costguard {cg.per_alert:.0f} B/alert, plain {plain:.0f}, floor {floor:.0f}; {cg.statuses}")
    top = sorted(cg.tables.items(), key=lambda kv: -kv[1])
    breakdown = ", ".join(f"{k} {v:.0f}" for k, v in top)
    note = (
        f"{n} alerts of the mixed fleet (outcomes {cg.statuses}); file growth after folding the WAL in. "
        f"Bytes per alert by table/index (dbstat pages): {breakdown}."
    )
    return [
        Row(
            "4 storage",
            "bytes stored per alert vs plain LangGraph",
            "B",
            Stat.of([cg.per_alert]),
            "plain LangGraph + stock SqliteSaver",
            Stat.of([plain]),
            Stat.of([cg.per_alert / plain]),
            target="≤ 5 KB (5,120 B)",
            met=cg.per_alert <= 5120,
            note=note,
            extra={"tables_bytes_per_alert": {k: round(v, 1) for k, v in top}, "statuses": cg.statuses},
        ),
        Row(
            "4 storage",
            "bytes stored per alert vs floor",
            "B",
            Stat.of([cg.per_alert]),
            "floor: 6 small rows",
            Stat.of([floor]),
            Stat.of([cg.per_alert / floor]),
        ),
    ], cg


# --- 5. prompt tokens, model calls for a repeated alert --------------------------------------------

_WORDS = re.compile(r"\w+|[^\w\s]")


class Tokenizer:
    """SmolLM2's own BPE (the embedded model's GGUF, vocabulary only) when installed, else a regex.

    The regex (`\\w+|[^\\w\\s]`: a word or one punctuation mark is a token) is documented as an
    estimate; BPE tokenizers give a similar count on JSON-heavy English text.
    """

    def __init__(self) -> None:
        self.name = "regex \\w+|[^\\w\\s]"
        self._llama: Any = None
        try:
            import llama_cpp

            from costguard.tools.llm.model_file import find_model_file

            with open(os.devnull, "w", encoding="utf-8") as sink, contextlib.redirect_stderr(sink):
                self._llama = llama_cpp.Llama(model_path=str(find_model_file()), vocab_only=True, verbose=False)
            self.name = "SmolLM2-135M-Instruct BPE (llama.cpp, vocab only)"
        except Exception:
            self._llama = None

    def count(self, text: str) -> int:
        if self._llama is not None:
            return len(self._llama.tokenize(text.encode("utf-8"), add_bos=False, special=False))
        return len(_WORDS.findall(text))


def article_prompt(alert: dict[str, Any]) -> str:
    """The article's prompt (seed/000, `analyze_cloud_cost_alert`), filled with the same alert."""
    return f"""
You are a cloud cost optimization agent.
Alert: {alert}
Analyze this alert and recommend an action.
Return JSON with these fields:
- action: "shutdown" | "resize" | "monitor" | "investigate"
- confidence: 0.0 to 1.0
- reasoning: brief explanation
- parameters: dict of parameters for the action
- requires_approval: true if action would save > $100/month
Rules:
- Never shutdown production databases
- Never shutdown instances tagged "critical"
- If confidence < 0.7, recommend "investigate"
"""


def real_prompt(member: Member, cloud: FakeCloud) -> list[Any]:
    """costguard's prompt for the member's alert, after gather (facts priced from the price list)."""
    prices = load_price_list()
    facts = cloud.describe(member.instance.instance_id, member.instance.region)
    price = prices.hourly(facts.instance_type or "", facts.region)
    facts = facts.model_copy(update={"hourly_price_usd": price})
    state: CostState = {"alert": member.alert, "facts": facts, "findings": []}
    return list(build_messages(state, prices))


def repeated_calls(member: Member, root: Path | None) -> tuple[int, int, int]:
    """Model calls for: the first alert, the same alert delivered again, and a new alert with the same facts."""
    with scratch(root) as d:
        cloud = FakeCloud.of([member.instance])
        model = ScriptedChatModel(rule=RuleModel([member]))
        built = build_costguard(d / "costguard.db", cloud, model)
        counts = []
        again = member.alert.model_copy(update={"alert_id": member.alert.alert_id + "-again"})
        for alert in (member.alert, member.alert, again):
            before = len(model.calls)
            built.guard.process_alert(alert)
            counts.append(len(model.calls) - before)
        close(built)
    return counts[0], counts[1], counts[2]


def plain_repeated_calls(member: Member, root: Path | None) -> int:
    with scratch(root) as d:
        cloud = FakeCloud.of([member.instance])
        model = ScriptedChatModel(rule=RuleModel([member]))
        plain = Plain(d / "plain.db", cloud, model)
        plain.run(member.alert)
        before = len(model.calls)
        plain.run(member.alert.model_copy(update={"alert_id": member.alert.alert_id + "-again"}))
        plain.close()
    return len(model.calls) - before


def tokens(storage_run: StorageRun, root: Path | None, log: Callable[[str], None]) -> list[Row]:
    tok = Tokenizer()
    fleet = mixed_fleet(60, seed=61, prefix="t")
    cloud = FakeCloud.of(m.instance for m in fleet)
    ours = []
    theirs = []
    for member in fleet:
        messages = real_prompt(member, cloud)
        ours.append(sum(tok.count(str(m.content)) for m in messages))
        theirs.append(tok.count(article_prompt(member.alert.model_dump(mode="json"))))
    busy = next(m for m in fleet if m.kind == "busy_web")
    first, redelivered, repeated = repeated_calls(busy, root)
    plain_repeat = plain_repeated_calls(busy, root)
    n_storage = sum(storage_run.statuses.values())
    calls_per_alert = storage_run.model_calls / max(1, n_storage)
    log(
        f"  tokens ({tok.name}): costguard median {statistics.median(ours):.0f}, "
        f"article {statistics.median(theirs):.0f}; "
        f"repeated alert: {first} / {redelivered} / {repeated} model calls"
    )
    return [
        Row(
            "5 tokens",
            "prompt tokens per model call",
            "tokens",
            Stat.of(ours),
            "the article's prompt, same alert",
            Stat.of(theirs),
            Stat.of([a / b for a, b in zip(ours, theirs, strict=True)]),
            note=f"tokenizer: {tok.name}; the real prompt (costguard.nodes.analyze.build_messages: system prompt + "
            f"alert + facts + resize candidates) for {len(fleet)} alerts of the mixed fleet; median [min–max] over "
            f"alerts. The article's prompt carries the alert only (no facts). Model calls per alert in the "
            f"storage run: {calls_per_alert:.2f}.",
        ),
        Row(
            "5 tokens",
            "model calls for a repeated alert (new alert id, same facts)",
            "calls",
            Stat.of([repeated]),
            "plain LangGraph (no cache)",
            Stat.of([plain_repeat]),
            Stat.of([repeated / plain_repeat]) if plain_repeat else None,
            target="0",
            met=repeated == 0,
            note=f"a busy production web server (decision: monitor) alerted, then alerted again with a new id. "
            f"First alert {first} call(s); the very same alert delivered twice: {redelivered} (one thread per "
            f"alert id: the finished thread's outcome is returned). Deps as the CLI builds them "
            f"(telemetry: {telemetry_name()}).",
        ),
    ]


def telemetry_name() -> str:
    from costguard.context import Deps

    names = {f.name for f in dataclasses.fields(Deps)}
    if "telemetry" not in names:
        return "none in this tree (no decision cache)"
    try:
        from costguard.tools.telemetry import SqliteTelemetry
    except ImportError:
        return "NullTelemetry (no decision cache)"
    return f"{SqliteTelemetry.__name__} (its decision cache)"


# --- 6. the embedded local model -----------------------------------------------------------------

LLM_TIMEOUT_S = 60.0
FLOOR_VARIANT = "haswell"  # AVX2: the least the portable build needs
CPU_VARIANT_NAMES = ("haswell", "alderlake", "skylakex", "icelake", "zen4")


def llama_build_key() -> str:
    """The cache key of the installed llama-cpp-python build (scripts/llama_wheel.py writes it), or `unknown`."""
    marker = Path(sys.prefix) / "costguard-llama-wheel.key"
    return marker.read_text(encoding="utf-8").strip() if marker.exists() else "unknown"


ARTICLE_MAX_TOKENS = 200  # free text has no grammar to stop it: cap it (a decision's JSON is ~80 tokens)
DECISION_MAX_TOKENS = 400  # the forced tool call ends with its grammar; the cap only stops a runaway


def other_model_servers() -> int:
    """llama_cpp.server processes already running on this machine (they compete for the same cores)."""
    count = 0
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            cmdline = (proc / "cmdline").read_bytes()
        except OSError:
            continue
        count += b"llama_cpp.server" in cmdline
    return count


def _chat_model(on: Any, cap: int) -> Any:
    """As costguard.tools.llm.make_chat_model builds it, plus a token cap the server honours.

    langchain-openai sends `max_tokens` as `max_completion_tokens`, which llama-cpp-python 0.3.36 ignores (a
    runaway answer then holds the single-worker server until its context is full), so the cap goes in `extra_body`.
    """
    from langchain_openai import ChatOpenAI

    return ChatOpenAI(
        model=on.model,
        base_url=on.base_url,
        api_key=SecretStr("not-needed"),
        temperature=0,
        max_retries=0,
        timeout=LLM_TIMEOUT_S,
        extra_body={"max_tokens": cap},
    )


def dispatch_vs_floor(
    fleet: list[Member], cloud: FakeCloud, log: Callable[[str], None], budget_s: float, chunk: int = 5
) -> tuple[list[float], list[float]]:
    """Decision latency with the CPU backend chosen at run time vs the same build forced to its AVX2 floor.

    One server at a time (an idle llama.cpp server's threads spin for a while after each answer and would
    slow the other on 2 cores), in chunks of `chunk` alerts, the order swapped every chunk.
    """
    from costguard.errors import ModelServerError
    from costguard.tools.llm.launcher import VARIANT_ENV
    from costguard.tools.llm.model import decision_schema, structured
    from costguard.tools.llm.server import LocalModelServer

    chosen: dict[str, float] = {}
    floor: dict[str, float] = {}
    deadline = time.monotonic() + budget_s
    for number, start in enumerate(range(0, len(fleet), chunk)):
        if time.monotonic() > deadline:
            break
        order: list[tuple[dict[str, str], dict[str, float]]] = [({}, chosen), ({VARIANT_ENV: FLOOR_VARIANT}, floor)]
        for env, into in order if number % 2 == 0 else order[::-1]:
            try:
                server = LocalModelServer(n_threads=os.cpu_count() or 2, env=env).start()
            except ModelServerError as exc:
                log(f"  local model: no {FLOOR_VARIANT} comparison ({str(exc).splitlines()[0]})")
                return [], []
            try:
                chat = _chat_model(server, DECISION_MAX_TOKENS)
                for member in fleet[start : start + chunk]:
                    iid = member.instance.instance_id
                    started = time.perf_counter()
                    with contextlib.suppress(Exception):  # a failed call shows as a slow one; errors: above
                        structured(chat, decision_schema(iid), "function_calling").invoke(real_prompt(member, cloud))
                    into[iid] = time.perf_counter() - started
            finally:
                server.stop()
    paired = [iid for iid in chosen if iid in floor]
    return [chosen[i] for i in paired], [floor[i] for i in paired]


def local_model(per_kind: int, log: Callable[[str], None], budget_s: float = 240.0) -> list[Row]:
    """Decision latency and schema-valid rate of SmolLM2 on this machine; baseline: the article's JSON prompt."""
    from langchain_core.messages import HumanMessage
    from pydantic import ValidationError

    from costguard.errors import ModelServerError
    from costguard.state import Decision
    from costguard.tools.llm.model import decision_schema, structured
    from costguard.tools.llm.server import LocalModelServer

    fleet = make_fleet(per_kind * 5, random.Random(71), prefix="m", kinds=tuple(KINDS))
    cloud = FakeCloud.of(m.instance for m in fleet)
    ours: list[float] = []
    theirs: list[float] = []
    valid = exact_id = right = parsed = 0
    actions: dict[str, int] = {}
    errors: list[str] = []
    skipped = 0
    load = os.getloadavg()[0]
    others = other_model_servers()
    if others:
        log(f"  local model: {others} other llama_cpp.server process(es) running: latencies will be inflated")
    try:
        server = LocalModelServer(n_threads=os.cpu_count() or 2)
        server.start()
    except ModelServerError as exc:
        log(f"  local model: skipped ({str(exc).splitlines()[0]})")
        return []
    backend = server.backend_line()
    try:
        chat = _chat_model(server, DECISION_MAX_TOKENS)
        article_chat = _chat_model(server, ARTICLE_MAX_TOKENS)
        deadline = time.monotonic() + budget_s / 2
        # costguard's calls back to back, as in a batch (the server reuses the shared system prompt's cache),
        # then the article's prompts over the same alerts
        asked: list[Member] = []
        for member in fleet:
            if time.monotonic() > deadline:
                skipped += 1
                continue
            asked.append(member)
            iid = member.instance.instance_id
            runnable = structured(chat, decision_schema(iid), "function_calling")
            started = time.perf_counter()
            try:
                reply = runnable.invoke(real_prompt(member, cloud))
            except Exception as exc:
                errors.append(type(exc).__name__)
                reply = {}
            ours.append(time.perf_counter() - started)
            try:
                decision = Decision.model_validate(reply.get("parsed"))
            except ValidationError:
                decision = None
            if decision is not None:
                valid += 1
                exact_id += decision.parameters.instance_id == iid
                right += decision.action == member.truth
                actions[decision.action] = actions.get(decision.action, 0) + 1
        for member in asked:
            prompt = [HumanMessage(article_prompt(member.alert.model_dump(mode="json")))]
            started = time.perf_counter()
            try:
                text = str(article_chat.invoke(prompt).content)
            except Exception as exc:
                errors.append(f"article:{type(exc).__name__}")
                text = ""
            theirs.append(time.perf_counter() - started)
            try:
                Decision.model_validate(json.loads(text))
                parsed += 1
            except (ValueError, ValidationError):
                pass
        startup = server.startup_s or 0.0
    finally:
        server.stop()
    ours_paired, floor = dispatch_vs_floor(fleet, cloud, log, budget_s / 2)
    n = len(ours)
    if n == 0:
        log("  local model: no decision within the budget")
        return []
    log(
        f"  local model: {n} decisions, median {statistics.median(ours):.2f} s, schema-valid {valid}/{n}, "
        f"article-style valid {parsed}/{n}"
    )
    return [
        Row(
            "6 local model",
            "decision latency (SmolLM2-135M, function calling)",
            "s",
            Stat.of(ours),
            "the article's free-text JSON prompt, same server",
            Stat.of(theirs),
            ratios(ours, theirs),
            target="p50 ≤ 3 s (2 cores)",
            met=statistics.median(ours) <= 3.0,
            note=f"{backend} (build {llama_build_key()}: scripts/llama_wheel.py); "
            f"{n} alerts (up to {per_kind} of each kind), {os.cpu_count()} threads, temperature 0, costguard's "
            f"calls back to back (as in a batch), then the baseline's; "
            f"server start-up {startup:.1f} s. Median [min–max] over decisions. The baseline's free text is capped at "
            f"{ARTICLE_MAX_TOKENS} tokens, costguard's call at {DECISION_MAX_TOKENS} (sent as extra_body max_tokens: "
            f"llama-cpp-python ignores the max_completion_tokens langchain-openai sends). Load average at start "
            f"{load:.1f}, other model servers running: {others}; errors (timeouts at {LLM_TIMEOUT_S:g} s count "
            f"as invalid): {errors or 'none'}; "
            f"alerts left out when the {budget_s:g} s budget ran out: {skipped}.",
        ),
        Row(
            "6 local model",
            "schema-valid decisions",
            "%",
            Stat.of([100.0 * valid / n]),
            "the article's prompt + json.loads",
            Stat.of([100.0 * parsed / n]),
            Stat.of([valid / parsed]) if parsed else None,
            note=f"valid = a Decision (strict schema, bounds). Of the valid ones: instance id exact "
            f"{exact_id}/{valid}, "
            f"action equal to the ground truth {right}/{valid}; actions {actions}. The rails, not the model, make "
            f"this safe.",
        ),
        *(
            [
                Row(
                    "6 local model",
                    "decision latency, CPU backend chosen at run time",
                    "s",
                    Stat.of(ours_paired),
                    f"the same build forced to its AVX2 floor ({FLOOR_VARIANT})",
                    Stat.of(floor),
                    ratios(ours_paired, floor),
                    note=f"{backend}; {len(floor)} alerts, each answered by both, one server at a time, in chunks of "
                    f"5 with the order swapped each chunk (an idle llama.cpp server spins its threads for a while "
                    f"and would slow the other on 2 cores). Build flags: "
                    f"scripts/llama_wheel.py (no -march=native, CPU variants {', '.join(CPU_VARIANT_NAMES)}, no AMX).",
                )
            ]
            if floor
            else []
        ),
    ]
