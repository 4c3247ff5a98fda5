"""Workload 7: alerts from SQS (moto's server) to a durable outcome, next to `process` on the same alerts.

The queue is real (moto's SQS on 127.0.0.1: long polls, deletes, visibility); the model is the scripted rule
model and the cloud the in-memory fake, as in the other workloads, so the figure is costguard's own cost of
taking work from a queue. Baseline: `CostGuard.process` on the same alerts at the same concurrency.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3

from bench.fakes import FakeCloud
from bench.harness import RuleModel, build_costguard, close
from bench.report import Row
from bench.stats import Stat, ratios
from bench.workloads import idle_fleet, scratch
from costguard.app.sourcing import SourceRunner
from costguard.app.watch import Watcher, WatchOptions
from costguard.sandbox.emulator import MotoServer
from costguard.sandbox.scripted_model import ScriptedChatModel
from costguard.tools.queue import SqsQueue

REGION = "us-east-1"


def _fill(sqs: Any, url: str, bodies: list[str]) -> None:
    for start in range(0, len(bodies), 10):
        entries = [{"Id": str(i), "MessageBody": b} for i, b in enumerate(bodies[start : start + 10])]
        sqs.send_message_batch(QueueUrl=url, Entries=entries)


def _watch_once(built: Any, queue: SqsQueue, concurrency: int) -> float:
    runner = SourceRunner(built.guard, None, built.guard.deps.prices, default_region=REGION)
    watcher = Watcher(runner, queue, WatchOptions(once=True, concurrency=concurrency, wait_s=1))
    started = time.perf_counter()
    stats = watcher.run(threading.Event())
    elapsed = time.perf_counter() - started
    if stats.deleted != stats.received:
        raise RuntimeError(f"watch left {stats.received - stats.deleted} message(s) on the queue")
    return elapsed


def _drain(sqs: Any, url: str) -> float:
    """The queue alone: receive and delete every message, no work (what the emulator itself costs)."""
    started = time.perf_counter()
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages"):
        for message in messages:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return time.perf_counter() - started


def watch(
    n: int, reps: int, root: Path | None, log: Callable[[str], None], *, latency: float, concurrency: int
) -> list[Row]:
    """Messages per second (zero-latency model) or wall time against the ideal (a slow model)."""
    fleet = idle_fleet(n, seed=17, prefix="w")
    alerts = [m.alert for m in fleet]
    bodies = [json.dumps(a.model_dump(mode="json", exclude_none=True)) for a in alerts]
    watched: list[float] = []
    processed: list[float] = []
    drained: list[float] = []
    with MotoServer() as server:
        session = boto3.Session(aws_access_key_id="bench", aws_secret_access_key="bench", region_name=REGION)
        sqs: Any = session.client("sqs", endpoint_url=server.url)
        for rep in range(reps):
            url = sqs.create_queue(QueueName=f"bench-{rep}")["QueueUrl"]
            _fill(sqs, url, bodies)
            with scratch(root) as d:
                model = ScriptedChatModel(rule=RuleModel(fleet), latency_s=latency)
                built = build_costguard(d / "cg.db", FakeCloud.of(m.instance for m in fleet), model)
                watched.append(_watch_once(built, SqsQueue(url, session=session, endpoint_url=server.url), concurrency))
                close(built)
            with scratch(root) as d:
                model = ScriptedChatModel(rule=RuleModel(fleet), latency_s=latency)
                built = build_costguard(d / "cg.db", FakeCloud.of(m.instance for m in fleet), model)
                started = time.perf_counter()
                list(built.guard.process(alerts, concurrency=concurrency))
                processed.append(time.perf_counter() - started)
                close(built)
            url = sqs.create_queue(QueueName=f"bench-drain-{rep}")["QueueUrl"]
            _fill(sqs, url, bodies)
            drained.append(_drain(sqs, url))
            log(
                f"  watch rep {rep + 1}/{reps}: watch {watched[-1]:.2f} s, process {processed[-1]:.2f} s, "
                f"the queue alone {drained[-1]:.2f} s"
            )
    what = f"{n} alerts, {latency * 1e3:.0f} ms model, concurrency {concurrency}"
    note = (
        "costguard watch --once (SqsQueue on moto's SQS server: receive up to 10, delete after the outcome, "
        "visibility heartbeat) against CostGuard.process on the same alerts in-process; same model and fake EC2."
    )
    both = [p + q for p, q in zip(processed, drained, strict=True)]
    rows = [
        Row(
            "7 watch",
            f"wall time from SQS to durable outcomes, {what}",
            "s",
            Stat.of(watched),
            "process + the queue alone (receive and delete, no work), one after the other",
            Stat.of(both),
            ratios(watched, both),
            note=f"the queue alone: {Stat.of(drained).median:.2f} s for {n} messages on moto's SQS server (same "
            "2 cores): the emulator's own cost, most of the difference to process.",
        ),
        Row(
            "7 watch",
            f"wall time from SQS to durable outcomes, {what}",
            "s",
            Stat.of(watched),
            "process on the same alerts",
            Stat.of(processed),
            ratios(watched, processed),
            note=note,
        ),
    ]
    if latency == 0:
        rows.append(
            Row(
                "7 watch",
                "messages per second (zero-latency model)",
                "msg/s",
                Stat.of([n / t for t in watched]),
                "process, alerts per second",
                Stat.of([n / t for t in processed]),
                ratios([n / t for t in watched], [n / t for t in processed]),
                note=note,
            )
        )
    else:
        ideal = n * latency / concurrency
        rows.append(
            Row(
                "7 watch",
                f"wall time against the ideal, {what}",
                "s",
                Stat.of(watched),
                "ideal N×latency/concurrency",
                Stat.of([ideal]),
                Stat.of([t / ideal for t in watched]),
                note=note,
            )
        )
    return rows
