"""`costguard watch`: alerts from an SQS queue (SNS- or EventBridge-fed), and the observe scan, continuously."""

from __future__ import annotations

import re
import signal
import threading
from datetime import timedelta
from types import FrameType
from typing import Annotated

import typer
from prometheus_client import start_http_server

from costguard.app.sourcing import Handled, SourceRunner
from costguard.app.watch import Watcher, WatchOptions, registry_for
from costguard.cli.base import (
    EXIT_OK,
    EXIT_PARTIAL,
    DbOpt,
    JsonOpt,
    PhaseOpt,
    PolicyOpt,
    ScriptOpt,
    app,
    emit_json,
    err,
    fail,
    guard_for,
    outcome_json,
    settings_for,
)
from costguard.state import Outcome
from costguard.tools.cloud import Ec2Cloud
from costguard.tools.queue import SqsQueue

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def parse_duration(text: str, option: str = "--scan-every") -> timedelta:
    """`30s`, `15m`, `1h`, `1d`."""
    found = _DURATION.match(text.strip().lower())
    if found is None:
        fail(f"{option} must be a duration like 30s, 15m, 1h or 1d, got {text!r}")
    value = timedelta(**{_UNITS[found.group(2)]: float(found.group(1))})
    if value <= timedelta(0):
        fail(f"{option} must be longer than 0")
    return value


def _line(handled: Handled) -> str:
    source = handled.source
    money = (
        f"; ${source.savings_realised_usd_per_month:,.2f}/month realised"
        if source.savings_realised_usd_per_month
        else ""
    )
    return f"{source.source_id} [{source.source_kind}] {source.status}: {source.reason}{money}"


@app.command()
def watch(
    queue: Annotated[
        str, typer.Option("--queue", help="The SQS queue URL to consume (subscribed to SNS / EventBridge).")
    ],
    once: Annotated[bool, typer.Option("--once", help="Drain the queue, then exit (for cron).")] = False,
    scan_every: Annotated[
        str | None, typer.Option("--scan-every", help="Also run the observe scan this often (30s, 15m, 1h, 1d).")
    ] = None,
    concurrency: Annotated[int, typer.Option("--concurrency", min=1, max=64, help="Messages in flight at once.")] = 4,
    visibility: Annotated[
        int, typer.Option("--visibility", min=10, max=43_200, help="Seconds a message stays hidden while worked on.")
    ] = 120,
    poll_wait: Annotated[
        int,
        typer.Option("--poll-wait", min=1, max=20, help="Seconds of SQS long polling (also: how soon a stop is seen)."),
    ] = 20,
    max_receives: Annotated[
        int, typer.Option("--max-receives", min=1, help="Deliveries of a failing message before it is deleted.")
    ] = 5,
    due_every: Annotated[
        str,
        typer.Option("--due-every", help="How often to look for plans whose grace period is over (30s, 15m, 1h)."),
    ] = "1m",
    metrics_port: Annotated[
        int | None, typer.Option("--metrics-port", help="Serve the watcher's Prometheus metrics on 127.0.0.1:PORT.")
    ] = None,
    db: DbOpt = None,
    policy: PolicyOpt = None,
    phase: PhaseOpt = None,
    as_json: JsonOpt = False,
    scripted_model: ScriptOpt = None,
) -> None:
    """Consume alert messages from SQS (AWS Cost Anomaly Detection, CloudWatch alarms, AWS Budgets, costguard's JSON).

    SIGTERM or Ctrl-C: no new message is taken, the ones in flight finish, exit 0.
    """
    settings = settings_for(db)
    every = parse_duration(scan_every, "--scan-every") if scan_every else None
    due_period = parse_duration(due_every, "--due-every")
    guard = guard_for(db, policy, phase, scripted_model)
    cloud = guard.deps.cloud
    if not isinstance(cloud, Ec2Cloud):  # pragma: no cover - the CLI always wires Ec2Cloud
        fail("watch needs the EC2 cloud")
    runner = SourceRunner(guard, cloud, guard.deps.prices, default_region=settings.aws_region)
    sqs = SqsQueue(queue, region=settings.aws_region, endpoint_url=settings.aws_endpoint_url)
    failed: list[str] = []

    def done(handled: Handled) -> None:
        failed.extend(o.thread_id for o in handled.outcomes if o.status == "failed")
        if as_json:
            emit_json(handled.source.model_dump(mode="json"))
        else:
            err.print(_line(handled), soft_wrap=True, markup=False)

    options = WatchOptions(
        concurrency=concurrency,
        visibility_s=visibility,
        wait_s=poll_wait,
        max_receives=max_receives,
        once=once,
        scan_every=every,
        scan_region=settings.aws_region,
        due_every=due_period,
    )

    def due(outcome: Outcome) -> None:
        failed.extend([outcome.thread_id] if outcome.status == "failed" else [])
        if as_json:
            emit_json(outcome_json(outcome))
        else:
            err.print(f"{outcome.thread_id} [grace period over] {outcome.status}: {outcome.reason}", markup=False)

    watcher = Watcher(runner, sqs, options, on_done=done, on_due=due)
    if metrics_port is not None:
        start_http_server(metrics_port, addr="127.0.0.1", registry=registry_for(watcher.stats))
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        err.print(f"{signal.Signals(signum).name}: finishing the messages in flight, taking no new one")
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        stats = watcher.run(stop)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    err.print(
        f"watch: {stats.received} received, {stats.done} done, {stats.deleted} deleted, "
        f"{stats.left_for_redelivery} left for redelivery, {stats.invalid} invalid, {stats.ignored} ignored, "
        f"{stats.due} scheduled plan(s) due",
        markup=False,
    )
    raise typer.Exit(EXIT_PARTIAL if once and failed else EXIT_OK)
