"""The `costguard` command line (also `python run.py ...`). The only module that prints."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, NoReturn, TextIO

import structlog
import typer
from pydantic import ValidationError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from costguard.bootstrap import build_costguard
from costguard.errors import CostguardError, ReviewError
from costguard.parallel import WorkerDied, process_in_workers
from costguard.policy import Policy, PolicyError, load_policy
from costguard.service import CostGuard, batch_report, read_alerts
from costguard.settings import Settings
from costguard.state import Outcome, Phase, PlanEdit, ReviewResponse
from costguard.tools.ledger import Store
from costguard.tools.scripted_model import ScriptedChatModel

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Turn cloud cost alerts into safe actions.",
)
review_app = typer.Typer(no_args_is_help=True, help="The review queue: list, show, approve, reject, edit.")
audit_app = typer.Typer(no_args_is_help=True, help="The hash-chained audit trail.")
app.add_typer(review_app, name="review")
llm_app = typer.Typer(no_args_is_help=True, help="The embedded local model.")
app.add_typer(audit_app, name="audit")
app.add_typer(llm_app, name="llm")
metrics_app = typer.Typer(help="Model, agent and business metrics from the costguard database.")
app.add_typer(metrics_app, name="metrics")

out = Console()
err = Console(stderr=True)

EXIT_OK, EXIT_USAGE, EXIT_PARTIAL = 0, 1, 3
FAILED_STATUSES = {"failed"}

JsonOpt = Annotated[bool, typer.Option("--json", help="Machine output: JSON on stdout.")]
DbOpt = Annotated[Path | None, typer.Option("--db", help="SQLite file (default $COSTGUARD_DB or ./costguard.db).")]
PolicyOpt = Annotated[Path | None, typer.Option("--policy", help="Policy TOML (default $COSTGUARD_POLICY).")]
PhaseOpt = Annotated[Phase | None, typer.Option("--phase", help="Override the policy's phase.")]
ScriptOpt = Annotated[
    Path | None,
    typer.Option(
        "--scripted-model",
        help="Use a scripted model (a JSON list of decisions, cycled) instead of the model server. "
        "For tests and offline trials.",
    ),
]


def configure_logging(level: int, file: TextIO) -> None:
    """JSON lines with thread_id and node on every line from inside the graph."""
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso"),
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=file),
    )


def _configure_logging() -> None:
    """On stderr, at COSTGUARD_LOG_LEVEL (default warning; `info`: a line per alert, `debug`: per node run)."""
    name = os.environ.get("COSTGUARD_LOG_LEVEL", "warning").upper()
    configure_logging(logging.getLevelNamesMapping().get(name, logging.WARNING), sys.stderr)


def _fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    err.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(code)


def _settings(db: Path | None) -> Settings:
    settings = Settings()
    if db is not None:
        settings = settings.model_copy(update={"db": db})
    return settings


def _policy(settings: Settings, policy: Path | None, phase: Phase | None) -> Policy:
    try:
        return load_policy(policy or settings.policy, phase=phase)
    except PolicyError as exc:
        _fail(str(exc))


def _scripted(path: Path | None) -> ScriptedChatModel | None:
    if path is None:
        return None
    try:
        script = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        _fail(f"cannot read scripted model {path}: {exc}")
    if not isinstance(script, list) or not script:
        _fail(f"scripted model {path} must be a non-empty JSON list")
    raisable: dict[str, type[Exception]] = {"TimeoutError": TimeoutError, "ConnectionError": ConnectionError}
    answers: list[Any] = [
        raisable[a["raise"]]("scripted failure") if isinstance(a, dict) and a.get("raise") in raisable else a
        for a in script
    ]
    return ScriptedChatModel(script=answers, cycle=True)


def _guard(
    db: Path | None, policy: Path | None = None, phase: Phase | None = None, script: Path | None = None
) -> CostGuard:
    settings = _settings(db)
    return build_costguard(settings, _policy(settings, policy, phase), model=_scripted(script))


@dataclass(frozen=True)
class CliGuard:
    """Builds the CLI's CostGuard in a worker process (picklable: paths only)."""

    db: Path | None
    policy: Path | None
    phase: Phase | None
    script: Path | None

    def __call__(self) -> CostGuard:
        return _guard(self.db, self.policy, self.phase, self.script)


def _emit_json(data: Any) -> None:
    out.file.write(json.dumps(data, default=str) + "\n")
    out.file.flush()


def _outcome_json(o: Outcome) -> dict[str, Any]:
    return {
        "alert_id": o.alert_id,
        "thread_id": o.thread_id,
        "status": o.status,
        "action": o.action,
        "executed": o.executed,
        "reason": o.reason,
        "savings_usd_per_month": o.savings_usd_per_month,
        "rules": list(o.rules),
        "digest": o.digest,
        "snapshot_ids": list(o.snapshot_ids),
        "error_class": o.error_class,
        "line": o.line,
    }


def _outcome_table(outcomes: list[Outcome], title: str) -> Table:
    table = Table(title=title)
    for col in ("alert", "status", "action", "savings $/mo", "reason"):
        table.add_column(col, overflow="fold")
    for o in outcomes:
        savings = "" if o.savings_usd_per_month is None else f"{o.savings_usd_per_month:,.2f}"
        style = {"executed": "green", "rejected": "red", "failed": "bold red", "awaiting_review": "yellow"}.get(
            o.status
        )
        table.add_row(o.alert_id, f"[{style}]{o.status}[/]" if style else o.status, o.action or "", savings, o.reason)
    return table


def _finish(outcomes: list[Outcome]) -> None:
    if any(o.status in FAILED_STATUSES for o in outcomes):
        raise typer.Exit(EXIT_PARTIAL)


@app.command()
def process(
    file: Annotated[Path, typer.Argument(help="Alerts, one JSON object per line.", exists=True, dir_okay=False)],
    phase: PhaseOpt = None,
    policy: PolicyOpt = None,
    db: DbOpt = None,
    concurrency: Annotated[
        int, typer.Option("--concurrency", min=1, max=256, help="Alerts in flight at once (threads, in all).")
    ] = 1,
    workers: Annotated[
        int,
        typer.Option(
            "--workers",
            min=1,
            max=64,
            help="Worker processes sharing --concurrency (CPU work runs per core).",
        ),
    ] = 1,
    as_json: JsonOpt = False,
    scripted_model: ScriptOpt = None,
    report: Annotated[
        Path | None, typer.Option("--report", help="Write the batch report (success / partial_success) here.")
    ] = None,
) -> None:
    """Run every alert of FILE through the graph (one thread per alert_id)."""
    items = list(read_alerts(file))
    settings = _settings(db)
    run_policy = _policy(settings, policy, phase)  # a bad policy or script fails here, not in a worker
    stream: Iterator[Outcome]
    if workers > 1:
        _scripted(scripted_model)
        factory = CliGuard(db, policy, phase, scripted_model)
        stream = process_in_workers(factory, items, workers=workers, concurrency=max(concurrency, workers))
    else:
        guard = build_costguard(settings, run_policy, model=_scripted(scripted_model))
        stream = guard.process(items, concurrency=concurrency)
    outcomes: list[Outcome] = []
    try:
        if as_json:
            for o in stream:
                outcomes.append(o)
                _emit_json(_outcome_json(o))
        else:
            with Progress(
                TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=err
            ) as progress:
                task = progress.add_task("alerts", total=len(items))
                for o in stream:
                    outcomes.append(o)
                    progress.advance(task)
    except WorkerDied as exc:
        done = f"{len(outcomes)} of {len(items)} outcome(s) reported"
        _fail(f"{exc}; {done}; `costguard resume --all` finishes what was started", EXIT_PARTIAL)
    if not as_json:
        out.print(_outcome_table(outcomes, f"{len(outcomes)} alert(s), phase {run_policy.phase}"))
        counts: dict[str, int] = {}
        for o in outcomes:
            counts[o.status] = counts.get(o.status, 0) + 1
        out.print(", ".join(f"{k}: {v}" for k, v in sorted(counts.items())))
    summary = batch_report(outcomes)
    if report is not None:
        report.write_text(json.dumps(summary, indent=1, default=str) + "\n", encoding="utf-8")
    if not as_json:
        out.print(f"batch: [bold]{summary['status']}[/]")
        for failure in summary["failures"]:
            err.print(f"[red]failed[/] {failure['alert_id']}: {failure['error_class']}: {failure['reason']}")
    _finish(outcomes)


@app.command()
def resume(
    thread: Annotated[str | None, typer.Argument(help="Thread id (alert:<alert_id>).")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Resume every unfinished thread.")] = False,
    db: DbOpt = None,
    policy: PolicyOpt = None,
    phase: PhaseOpt = None,
    as_json: JsonOpt = False,
    scripted_model: ScriptOpt = None,
) -> None:
    """Go on with an unfinished thread after a crash. Threads waiting for review stay waiting."""
    if (thread is None) == (not all_):
        _fail("give a THREAD or --all")
    guard = _guard(db, policy, phase, scripted_model)
    threads = guard.unfinished() if all_ else [thread or ""]
    outcomes = []
    for tid in threads:
        try:
            outcomes.append(guard.resume(tid))
        except ReviewError as exc:
            _fail(str(exc))
    if as_json:
        for o in outcomes:
            _emit_json(_outcome_json(o))
    else:
        out.print(_outcome_table(outcomes, f"resumed {len(outcomes)} thread(s)"))
    _finish(outcomes)


@app.command()
def undo(
    thread: Annotated[str, typer.Argument(help="Thread id of an executed plan.")],
    reviewer: Annotated[str, typer.Option("--reviewer", help="Who undoes it; must be an approver.")],
    db: DbOpt = None,
    policy: PolicyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Compensate an executed plan: start the instance again / resize it back. Status: rolled_back."""
    guard = _guard(db, policy)
    try:
        outcome = guard.undo(thread, reviewer)
    except ReviewError as exc:
        _fail(str(exc))
    except CostguardError as exc:
        _fail(str(exc), EXIT_PARTIAL)
    if as_json:
        _emit_json(_outcome_json(outcome))
    else:
        out.print(_outcome_table([outcome], f"undo {thread}"))


@app.command()
def rollback(
    thread: Annotated[str, typer.Argument(help="Thread id.")],
    to: Annotated[str, typer.Option("--to", help="Checkpoint id (from `costguard history`).")],
    db: DbOpt = None,
    policy: PolicyOpt = None,
    phase: PhaseOpt = None,
    as_json: JsonOpt = False,
    scripted_model: ScriptOpt = None,
) -> None:
    """Time travel: continue the thread from an earlier checkpoint (the old branch stays in history)."""
    guard = _guard(db, policy, phase, scripted_model)
    try:
        outcome = guard.rollback(thread, to)
    except ReviewError as exc:
        _fail(str(exc))
    if as_json:
        _emit_json(_outcome_json(outcome))
    else:
        out.print(_outcome_table([outcome], f"{thread} continued from {to}"))
    _finish([outcome])


@app.command()
def history(
    thread: Annotated[str, typer.Argument(help="Thread id.")],
    limit: Annotated[int, typer.Option("--limit", min=1)] = 50,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The thread's checkpoints, newest first (paged with --limit)."""
    guard = _guard(db)
    rows = []
    for snap in guard.graph.get_state_history(guard.config(thread), limit=limit):
        outcome = snap.values.get("outcome") if snap.values else None
        rows.append(
            {
                "checkpoint_id": snap.config["configurable"]["checkpoint_id"],
                "created_at": snap.created_at,
                "step": snap.metadata.get("step") if snap.metadata else None,
                "source": snap.metadata.get("source") if snap.metadata else None,
                "next": list(snap.next),
                "status": outcome.status if outcome else None,
            }
        )
    if not rows:
        _fail(f"no thread {thread!r} in this database")
    if as_json:
        _emit_json(rows)
        return
    table = Table(title=f"history of {thread} (newest first)")
    for col in ("checkpoint_id", "step", "source", "next", "status", "created_at"):
        table.add_column(col)
    for r in rows:
        table.add_row(
            r["checkpoint_id"],
            str(r["step"]),
            str(r["source"]),
            ",".join(r["next"]),
            str(r["status"] or ""),
            str(r["created_at"]),
        )
    out.print(table)


# --- review ------------------------------------------------------------------------------


@review_app.command("list")
def review_list(
    db: DbOpt = None,
    limit: Annotated[int, typer.Option("--limit", min=1)] = 100,
    offset: Annotated[int, typer.Option("--offset", min=0)] = 0,
    as_json: JsonOpt = False,
) -> None:
    """Plans waiting for a human decision."""
    guard = _guard(db)
    items = guard.pending(limit=limit, offset=offset)
    if as_json:
        _emit_json(
            [
                {
                    "thread_id": i.thread_id,
                    "alert_id": i.alert_id,
                    "digest": i.plan.digest,
                    "action": i.plan.action,
                    "instance_id": i.plan.instance_id,
                    "target_instance_type": i.plan.target_instance_type,
                    "savings_usd_per_month": i.plan.savings_usd_per_month,
                    "approval_reasons": list(i.plan.approval_reasons),
                    "expires_at": i.plan.expires_at.isoformat(),
                }
                for i in items
            ]
        )
        return
    table = Table(title=f"{len(items)} plan(s) awaiting review")
    for col in ("thread", "action", "instance", "savings $/mo", "why", "digest", "expires"):
        table.add_column(col, overflow="fold")
    for i in items:
        p = i.plan
        action = p.action + (f" → {p.target_instance_type}" if p.target_instance_type else "")
        savings = "?" if p.savings_usd_per_month is None else f"{p.savings_usd_per_month:,.2f}"
        table.add_row(
            i.thread_id,
            action,
            p.instance_id,
            savings,
            ", ".join(p.approval_reasons),
            p.digest,
            p.expires_at.isoformat(),
        )
    out.print(table)


@review_app.command("show")
def review_show(thread: Annotated[str, typer.Argument()], db: DbOpt = None, as_json: JsonOpt = False) -> None:
    """The review request of one thread: plan, digest, findings, expiry."""
    guard = _guard(db)
    snap = guard.snapshot(thread)
    if not snap.interrupts:
        _fail(f"thread {thread!r} is not waiting for a review")
    request = snap.interrupts[0].value
    if as_json:
        _emit_json(request)
        return
    action = request["action_requests"][0]
    out.print(f"[bold]{thread}[/]\n{action['description']}\n")
    out.print_json(json.dumps(action["args"], default=str))


def _respond(thread: str, response: dict[str, Any], db: Path | None, policy: Path | None, as_json: bool) -> None:
    guard = _guard(db, policy)
    try:
        parsed = ReviewResponse.model_validate(response)
    except ValidationError as exc:
        _fail(f"invalid review response: {exc.errors()[0]['loc']}: {exc.errors()[0]['msg']}")
    try:
        outcome = guard.review(thread, parsed)
    except ReviewError as exc:
        _fail(str(exc))
    review = guard.snapshot(thread).values.get("review")
    refused = outcome.status == "awaiting_review" and review is not None and review.status == "refused"
    if as_json:
        data = _outcome_json(outcome)
        if refused:
            data["refused"] = review.reason if review else ""
        _emit_json(data)
    else:
        if refused and review is not None:
            err.print(f"[bold red]refused:[/] {review.reason}; the plan is still waiting for a valid review")
        out.print(_outcome_table([outcome], thread))
    if refused:
        raise typer.Exit(EXIT_USAGE)
    _finish([outcome])


ReviewerOpt = Annotated[str, typer.Option("--reviewer", help="Your identity; must be on the policy's approvers list.")]
DigestOpt = Annotated[str, typer.Option("--digest", help="The plan digest you reviewed (from `review list`).")]
NoteOpt = Annotated[str, typer.Option("--note")]


@review_app.command("approve")
def review_approve(
    thread: Annotated[str, typer.Argument()],
    reviewer: ReviewerOpt,
    digest: DigestOpt,
    note: NoteOpt = "",
    db: DbOpt = None,
    policy: PolicyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Approve the plan with this digest; it executes once, after a snapshot."""
    _respond(thread, {"decision": "approve", "reviewer": reviewer, "digest": digest, "note": note}, db, policy, as_json)


@review_app.command("reject")
def review_reject(
    thread: Annotated[str, typer.Argument()],
    reviewer: ReviewerOpt,
    digest: DigestOpt,
    note: NoteOpt = "",
    db: DbOpt = None,
    policy: PolicyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Reject the plan: nothing is executed."""
    _respond(thread, {"decision": "reject", "reviewer": reviewer, "digest": digest, "note": note}, db, policy, as_json)


@review_app.command("edit")
def review_edit(
    thread: Annotated[str, typer.Argument()],
    reviewer: ReviewerOpt,
    digest: DigestOpt,
    action: Annotated[str, typer.Option("--action", help="shutdown or resize")],
    target: Annotated[str | None, typer.Option("--target", help="Instance type for resize.")] = None,
    note: NoteOpt = "",
    db: DbOpt = None,
    policy: PolicyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Change the plan (action, resize target) and approve it; the rails check the edit."""
    try:
        edit = PlanEdit.model_validate({"action": action, "target_instance_type": target})
    except ValidationError as exc:
        _fail(f"invalid edit: {exc.errors()[0]['msg']}")
    _respond(
        thread,
        {"decision": "edit", "reviewer": reviewer, "digest": digest, "note": note, "edited_plan": edit.model_dump()},
        db,
        policy,
        as_json,
    )


# --- observe, demo, llm ------------------------------------------------------------------


@app.command()
def observe(
    out_file: Annotated[Path | None, typer.Option("--out", help="Write the alerts here (JSONL).")] = None,
    threshold: Annotated[float, typer.Option("--cpu-threshold", help="Idle below this average CPU %.")] = 10.0,
    as_json: JsonOpt = False,
) -> None:
    """Phase 1: scan the account (instances, prices, CPU) and write alerts. Takes no action at all."""
    from datetime import UTC, datetime

    from costguard.observe import alert_line, scan, write_jsonl
    from costguard.tools.cloud import Ec2Cloud
    from costguard.tools.pricing import load_price_list

    settings = Settings()
    cloud = Ec2Cloud(default_region=settings.aws_region, endpoint_url=settings.aws_endpoint_url)
    alerts = scan(
        cloud, load_price_list(), region=settings.aws_region, now=datetime.now(UTC), cpu_idle_threshold_pct=threshold
    )
    if out_file is not None:
        write_jsonl(alerts, out_file)
    if as_json:
        for alert in alerts:
            out.file.write(alert_line(alert) + "\n")
        return
    table = Table(title=f"{len(alerts)} alert(s) in {settings.aws_region}" + (f" → {out_file}" if out_file else ""))
    for col in ("alert_id", "instance", "kind", "$/month", "summary"):
        table.add_column(col, overflow="fold")
    for a in alerts:
        cost = "?" if a.monthly_cost_usd is None else f"{a.monthly_cost_usd:,.2f}"
        table.add_row(a.alert_id, a.instance_id, a.kind, cost, a.summary)
    out.print(table)


@app.command()
def emulator(
    port: Annotated[int, typer.Option("--port")] = 5000,
    seed: Annotated[bool, typer.Option("--seed/--no-seed", help="Seed the demo fleet.")] = True,
) -> None:
    """moto's EC2/CloudWatch emulator on 127.0.0.1 with the demo fleet, in the foreground until stopped."""
    import threading

    import boto3

    from costguard.fleet import seed_fleet
    from costguard.tools.emulator import MotoServer

    with MotoServer(port=port) as server:
        if seed:
            session = boto3.Session(aws_access_key_id="demo", aws_secret_access_key="demo", region_name="us-east-1")  # noqa: S106
            fleet = seed_fleet(session, endpoint_url=server.url)
            table = Table(title=f"demo fleet on {server.url}")
            for col in ("name", "instance", "type", "expected"):
                table.add_column(col)
            for f in fleet:
                table.add_row(f.name, f.instance_id, f.instance_type, f.expected)
            out.print(table)
        err.print(
            f"export AWS_ENDPOINT_URL={server.url} AWS_ACCESS_KEY_ID=demo AWS_SECRET_ACCESS_KEY=demo "
            "AWS_DEFAULT_REGION=us-east-1   # Ctrl-C stops the emulator"
        )
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()


@llm_app.command("serve")
def llm_serve(
    host: Annotated[str, typer.Option("--host")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port")] = 8000,
) -> None:
    """The embedded model's OpenAI-compatible server, in the foreground until stopped."""
    from costguard.tools.llm_server import serve_forever

    raise typer.Exit(serve_forever(host, port))


@app.command()
def demo(
    as_json: JsonOpt = False,
    interactive: Annotated[
        bool, typer.Option("--interactive", help="Approve or reject each plan at a prompt (needs a terminal).")
    ] = False,
    workdir: Annotated[Path, typer.Option("--workdir", help="Where the demo keeps its DB, alerts and logs.")] = Path(
        "costguard-demo"
    ),
) -> None:
    """The whole job on the embedded defaults: local EC2 emulator, local model, no keys, no internet.

    Exit code 0 when every alert reached an intended outcome, 3 when any failed, 1 when the emulator
    or the model could not be started (or the model cannot answer).
    """
    from costguard.demo import DemoHooks, run_demo
    from costguard.demo_view import choose_at_prompt, demo_json, print_demo

    interactive = interactive and sys.stdin.isatty()
    hooks = DemoHooks()
    if not as_json:
        hooks = DemoHooks(
            step=lambda message: err.print(f"[bold cyan]→[/] {message}"),
            alert_done=lambda outcome: err.print(f"  {outcome.alert_id}: [bold]{outcome.status}[/] {outcome.reason}"),
            choose=(lambda item: choose_at_prompt(item, out)) if interactive else None,
        )
    result = run_demo(workdir, hooks)
    if as_json:
        _emit_json(demo_json(result))
    else:
        print_demo(result, out)
    failed = [o for o in result.final_outcomes() if o.status in FAILED_STATUSES]
    if failed and not as_json:
        err.print(
            f"[bold red]{len(failed)} alert(s) failed[/]: " + "; ".join(f"{o.alert_id}: {o.reason}" for o in failed)
        )
    _finish(failed)


# --- metrics -----------------------------------------------------------------------------


def _kv_table(title: str, data: dict[str, Any]) -> Table:
    table = Table(title=title, show_header=False)
    table.add_column("metric")
    table.add_column("value", overflow="fold")
    for key, value in data.items():
        shown = json.dumps(value, default=str) if isinstance(value, dict | list) else str(value)
        table.add_row(key, shown)
    return table


@metrics_app.callback(invoke_without_command=True)
def metrics(
    ctx: typer.Context,
    db: DbOpt = None,
    since: Annotated[str | None, typer.Option("--since", help="ISO-8601 time: only what happened since.")] = None,
    prometheus: Annotated[bool, typer.Option("--prometheus", help="Prometheus text exposition.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """What the model cost, how the agent behaved, what was saved."""
    if ctx.invoked_subcommand is not None:
        return
    from datetime import datetime

    from prometheus_client import generate_latest

    from costguard.metrics import collect, registry_for

    path = _settings(db).db
    if prometheus:
        out.file.write(generate_latest(registry_for(path)).decode())
        return
    try:
        start = datetime.fromisoformat(since) if since else None
    except ValueError:
        _fail(f"--since must be an ISO-8601 time, got {since!r}")
    data = collect(path, start)
    if as_json:
        _emit_json(data)
        return
    agent = dict(data["agent"])
    nodes = agent.pop("nodes")
    out.print(_kv_table("model", data["model"]))
    node_table = Table(title="agent: nodes")
    for col in ("node", "runs", "failures", "mean s", "p95 s"):
        node_table.add_column(col)
    for name, stats in nodes.items():
        node_table.add_row(
            name,
            str(stats["runs"]),
            str(stats["failures"]),
            str(stats["duration_mean_s"]),
            str(stats["duration_p95_s"]),
        )
    out.print(node_table)
    out.print(_kv_table("agent", agent))
    out.print(_kv_table("business", data["business"]))


@metrics_app.command("serve")
def metrics_serve(
    port: Annotated[int, typer.Option("--port")] = 9464,
    host: Annotated[str, typer.Option("--host")] = "127.0.0.1",
    db: DbOpt = None,
) -> None:
    """Expose /metrics for Prometheus on 127.0.0.1 until stopped."""
    import threading

    from prometheus_client import start_http_server

    from costguard.metrics import registry_for

    server, thread = start_http_server(port, addr=host, registry=registry_for(_settings(db).db))
    err.print(f"serving Prometheus metrics on http://{host}:{port}/metrics (Ctrl-C to stop)")
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.shutdown()
        thread.join(timeout=5)


# --- audit -------------------------------------------------------------------------------


@audit_app.command("show")
def audit_show(
    thread: Annotated[str | None, typer.Option("--thread")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1)] = 1000,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Audit records, oldest first."""
    store = Store(_settings(db).db)
    rows = store.audit_rows(thread, limit=limit)
    if as_json:
        _emit_json([r.model_dump() for r in rows])
        return
    table = Table(title=f"{len(rows)} audit record(s)")
    for col in ("seq", "at", "thread", "actor", "authorized_by", "event", "instance", "result", "detail"):
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(
            str(r.seq),
            r.at,
            r.thread_id,
            r.actor,
            r.authorized_by or "",
            r.event,
            r.instance_id or "",
            r.result,
            r.detail,
        )
    out.print(table)


@audit_app.command("verify")
def audit_verify(db: DbOpt = None, as_json: JsonOpt = False) -> None:
    """Recompute the hash chain; name the first broken record."""
    report = Store(_settings(db).db).verify()
    if as_json:
        _emit_json(
            {
                "ok": report.ok,
                "records": report.records,
                "first_bad_seq": report.first_bad_seq,
                "problem": report.problem,
            }
        )
    elif report.ok:
        out.print(f"[green]audit chain intact[/]: {report.records} record(s)")
    else:
        err.print(f"[bold red]audit chain broken[/] at record {report.first_bad_seq}: {report.problem}")
    if not report.ok:
        raise typer.Exit(EXIT_PARTIAL)


def main() -> None:
    _configure_logging()
    try:
        app()
    except CostguardError as exc:
        _fail(str(exc))


if __name__ == "__main__":
    main()
