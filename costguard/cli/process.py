"""Running alerts: process, resume, scheduled (grace periods), undo, rollback, history."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from costguard.app.batch import SourceItem, batch_report, read_alerts
from costguard.app.sourcing import SourceRunner
from costguard.app.wiring import build_costguard
from costguard.app.workers import process_in_workers
from costguard.cli.base import (
    EXIT_PARTIAL,
    CliGuard,
    DbOpt,
    JsonOpt,
    PhaseOpt,
    PolicyOpt,
    ScriptOpt,
    ServerOpt,
    app,
    desk_for,
    emit_json,
    err,
    fail,
    finish,
    guard_for,
    out,
    outcome_json,
    outcome_table,
    policy_for,
    scripted_model_from,
    settings_for,
    show,
)
from costguard.errors import CostguardError, InvalidAlert, ReviewError, WorkerDied
from costguard.policy import Policy
from costguard.settings import Settings
from costguard.state import Alert, Outcome, SourceOutcome
from costguard.tools.cloud import Ec2Cloud


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
    """Run every alert of FILE through the graph (one thread per alert_id).

    A line is costguard's alert JSON or one of AWS's alert messages (an SNS notification or EventBridge event
    of Cost Anomaly Detection, CloudWatch alarms or AWS Budgets), as `watch` takes them from a queue.
    """
    lines = list(read_alerts(file))
    items = [i for i in lines if isinstance(i, Alert | InvalidAlert)]
    messages = [i for i in lines if not isinstance(i, Alert | InvalidAlert)]
    settings = settings_for(db)
    run_policy = policy_for(settings, policy, phase)  # a bad policy or script fails here, not in a worker
    stream: Iterator[Outcome]
    if workers > 1:
        scripted_model_from(scripted_model)
        factory = CliGuard(db, policy, phase, scripted_model)
        stream = process_in_workers(factory, items, workers=workers, concurrency=max(concurrency, workers))
    else:
        guard = build_costguard(settings, run_policy, model=scripted_model_from(scripted_model))
        stream = guard.process(items, concurrency=concurrency)
    outcomes: list[Outcome] = []
    try:
        if as_json:
            for o in stream:
                outcomes.append(o)
                emit_json(outcome_json(o))
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
        fail(f"{exc}; {done}; `costguard resume --all` finishes what was started", EXIT_PARTIAL)
    sources = run_messages(messages, settings, run_policy, scripted_model, as_json, outcomes)
    if not as_json:
        out.print(outcome_table(outcomes, f"{len(outcomes)} alert(s), phase {run_policy.phase}"))
        counts: dict[str, int] = {}
        for o in outcomes:
            counts[o.status] = counts.get(o.status, 0) + 1
        out.print(", ".join(f"{k}: {v}" for k, v in sorted(counts.items())))
    summary = batch_report(outcomes)
    summary["sources"] = [source.model_dump(mode="json") for source in sources]
    if report is not None:
        report.write_text(json.dumps(summary, indent=1, default=str) + "\n", encoding="utf-8")
    if not as_json:
        out.print(f"batch: [bold]{summary['status']}[/]")
        for failure in summary["failures"]:
            err.print(f"[red]failed[/] {failure['alert_id']}: {failure['error_class']}: {failure['reason']}")
        for source in sources:
            out.print(f"{source.source_id} [{source.source_kind}] {source.status}: {source.reason}", markup=False)
    finish(outcomes)


def run_messages(
    messages: list[SourceItem],
    settings: Settings,
    run_policy: Policy,
    scripted_model: Path | None,
    as_json: bool,
    outcomes: list[Outcome],
) -> list[SourceOutcome]:
    """AWS's alert messages of the file: each through the graph as `watch` runs it (fanned out if it names a scope)."""
    if not messages:
        return []
    guard = build_costguard(settings, run_policy, model=scripted_model_from(scripted_model))
    if not isinstance(guard.deps.cloud, Ec2Cloud):  # pragma: no cover - the CLI always wires Ec2Cloud
        fail("messages need the EC2 cloud")
    runner = SourceRunner(guard, guard.deps.cloud, guard.deps.prices, default_region=settings.aws_region)
    sources = []
    for message in messages:
        handled = runner.handle(message)
        sources.append(handled.source)
        outcomes.extend(handled.outcomes)
        if as_json:
            for o in handled.outcomes:
                emit_json(outcome_json(o))
    return sources


@app.command()
def resume(
    thread: Annotated[str | None, typer.Argument(help="Thread id (alert:<alert_id>).")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Resume every unfinished thread.")] = False,
    db: DbOpt = None,
    policy: PolicyOpt = None,
    phase: PhaseOpt = None,
    server: ServerOpt = None,
    as_json: JsonOpt = False,
    scripted_model: ScriptOpt = None,
) -> None:
    """Go on with an unfinished thread after a crash. Threads waiting for review stay waiting."""
    if (thread is None) == (not all_):
        fail("give a THREAD or --all")
    if server:
        if all_:
            fail("--all works on the local database; on a server, resume one THREAD at a time")
        done = [desk_for(server, db).resume(thread or "")]
        show(done, f"resumed {thread} on {server}", as_json)
        finish(done)
        return
    guard = guard_for(db, policy, phase, scripted_model)
    threads = guard.unfinished() if all_ else [thread or ""]
    outcomes = []
    for tid in threads:
        try:
            outcomes.append(guard.resume(tid))
        except ReviewError as exc:
            fail(str(exc))
    show(outcomes, f"resumed {len(outcomes)} thread(s)", as_json)
    finish(outcomes)


@app.command()
def scheduled(
    run_due: Annotated[
        bool, typer.Option("--run-due", help="Resume the plans whose grace period is over (what the watcher does).")
    ] = False,
    db: DbOpt = None,
    policy: PolicyOpt = None,
    phase: PhaseOpt = None,
    as_json: JsonOpt = False,
    scripted_model: ScriptOpt = None,
) -> None:
    """Plans waiting out a grace period (soonest first); with --run-due, act on the due ones (or call them off)."""
    guard = guard_for(db, policy, phase, scripted_model)
    if run_due:
        done = guard.run_due()
        show(done, f"{len(done)} scheduled plan(s) due", as_json)
        finish(done)
        return
    waiting = guard.scheduled()
    if as_json:
        for o in waiting:
            emit_json(outcome_json(o))
        return
    table = Table(title=f"{len(waiting)} plan(s) scheduled")
    for col in ("thread", "action", "resource", "due (UTC)", "savings $/mo", "reason"):
        table.add_column(col, overflow="fold")
    for o in waiting:
        savings = "" if o.savings_usd_per_month is None else f"{o.savings_usd_per_month:,.2f}"
        due = f"{o.due_at:%Y-%m-%d %H:%M}" if o.due_at else ""
        table.add_row(o.thread_id, o.action or "", o.resource_id or "", due, savings, o.reason)
    out.print(table)


@app.command()
def undo(
    thread: Annotated[str, typer.Argument(help="Thread id of an executed plan.")],
    reviewer: Annotated[str, typer.Option("--reviewer", help="Who undoes it; must be an approver.")],
    db: DbOpt = None,
    policy: PolicyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Compensate an executed plan: start the instance again / resize it back. Status: rolled_back."""
    guard = guard_for(db, policy)
    try:
        outcome = guard.undo(thread, reviewer)
    except ReviewError as exc:
        fail(str(exc))
    except CostguardError as exc:
        fail(str(exc), EXIT_PARTIAL)
    show([outcome], f"undo {thread}", as_json)


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
    guard = guard_for(db, policy, phase, scripted_model)
    try:
        outcome = guard.rollback(thread, to)
    except ReviewError as exc:
        fail(str(exc))
    show([outcome], f"{thread} continued from {to}", as_json)
    finish([outcome])


@app.command()
def history(
    thread: Annotated[str, typer.Argument(help="Thread id.")],
    limit: Annotated[int, typer.Option("--limit", min=1)] = 50,
    db: DbOpt = None,
    server: ServerOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The thread's checkpoints, newest first (paged with --limit)."""
    rows = desk_for(server, db).history(thread, limit)
    if not rows:
        fail(f"no thread {thread!r} {'on ' + server if server else 'in this database'}")
    if as_json:
        emit_json(rows)
        return
    table = Table(title=f"history of {thread} (newest first)")
    for col in ("checkpoint_id", "step", "source", "next", "status", "created_at"):
        table.add_column(col)
    for r in rows:
        table.add_row(
            str(r["checkpoint_id"]),
            str(r["step"]),
            str(r["source"]),
            ",".join(r["next"]),
            str(r["status"] or ""),
            str(r["created_at"]),
        )
    out.print(table)
