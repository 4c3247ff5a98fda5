"""What was recorded: metrics (tables, JSON, Prometheus), the audit trail, the evidence for autonomy."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.table import Table

from costguard.cli.base import (
    EXIT_PARTIAL,
    DbOpt,
    JsonOpt,
    PolicyOpt,
    app,
    audit_app,
    emit_json,
    err,
    fail,
    metrics_app,
    out,
    policy_for,
    settings_for,
)
from costguard.tools.store import open_store

# --- metrics -----------------------------------------------------------------------------


def kv_table(title: str, data: dict[str, Any]) -> Table:
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
    policy: PolicyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """What the model cost, how the agent behaved, what was saved (autonomy standings judged by --policy)."""
    if ctx.invoked_subcommand is not None:
        return
    from datetime import datetime

    from prometheus_client import generate_latest

    from costguard.app.metrics import collect, registry_for

    settings = settings_for(db)
    path, rule = settings.db, policy_for(settings, policy, None).autonomy
    if prometheus:
        out.file.write(generate_latest(registry_for(path, rule)).decode())
        return
    try:
        start = datetime.fromisoformat(since) if since else None
    except ValueError:
        fail(f"--since must be an ISO-8601 time, got {since!r}")
    data = collect(path, start, rule)
    if as_json:
        emit_json(data)
        return
    agent = dict(data["agent"])
    nodes = agent.pop("nodes")
    out.print(kv_table("model", data["model"]))
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
    out.print(kv_table("agent", agent))
    out.print(kv_table("business", data["business"]))


@metrics_app.command("serve")
def metrics_serve(
    port: Annotated[int, typer.Option("--port")] = 9464,
    host: Annotated[str, typer.Option("--host")] = "127.0.0.1",
    db: DbOpt = None,
    policy: PolicyOpt = None,
) -> None:
    """Expose /metrics for Prometheus on 127.0.0.1 until stopped."""
    import threading

    from prometheus_client import start_http_server

    from costguard.app.metrics import registry_for

    settings = settings_for(db)
    registry = registry_for(settings.db, policy_for(settings, policy, None).autonomy)
    server, thread = start_http_server(port, addr=host, registry=registry)
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
    store = open_store(settings_for(db).db)
    rows = store.audit_rows(thread, limit=limit)
    if as_json:
        emit_json([r.model_dump() for r in rows])
        return
    table = Table(title=f"{len(rows)} audit record(s)")
    for col in ("seq", "at", "thread", "actor", "authorized_by", "event", "resource", "result", "detail"):
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
    report = open_store(settings_for(db).db).verify()
    if as_json:
        emit_json(
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


# --- autonomy ------------------------------------------------------------------------------


@app.command()
def autonomy(db: DbOpt = None, policy: PolicyOpt = None, as_json: JsonOpt = False) -> None:
    """Per class of plans (kind, action, savings band): reviews, agreement, undos, whether autonomy is earned."""
    from costguard.policy import standing
    from costguard.tools.store.agreements import votes_by_class

    settings = settings_for(db)
    rule = policy_for(settings, policy, None).autonomy
    rows = [standing(cls, votes, rule) for cls, votes in sorted(votes_by_class(open_store(settings.db)).items())]
    if as_json:
        emit_json(
            {
                "required": rule.required,
                "min_reviews": rule.min_reviews,
                "min_agreement_lower_bound": rule.min_agreement_lower_bound,
                "classes": [
                    {
                        "class": r.plan_class,
                        "reviews": r.reviews,
                        "agreeing": r.agreeing,
                        "agreement_rate": round(r.agreement_rate, 4),
                        "agreement_lower_bound_95": round(r.lower_bound, 4),
                        "undos": r.undos,
                        "agreeing_since_last_disagreement": r.streak,
                        "standing": r.standing,
                        "more_agreeing_reviews_needed": r.more_needed,
                    }
                    for r in rows
                ],
            }
        )
        return
    needs = (
        f"≥ {rule.min_reviews} agreeing reviews in a row and a 95 % lower bound ≥ {rule.min_agreement_lower_bound:g}"
    )
    table = Table(title=f"autonomy by class ({'required' if rule.required else 'not required'}: {needs})")
    for col in ("class", "reviews", "agree", "lower bound", "undos", "standing"):
        table.add_column(col, overflow="fold")
    for r in rows:
        verdict = "earned" if r.standing == "earned" else r.standing.replace("_", " ")
        if r.standing != "earned":
            verdict += f" ({r.more_needed} more agreeing review(s) needed)"
        table.add_row(
            r.plan_class, str(r.reviews), f"{r.agreement_rate:.0%}", f"{r.lower_bound:.3f}", str(r.undos), verdict
        )
    out.print(table)
