"""`costguard demo`: the whole job on the embedded defaults, no keys, no internet.

It starts (or reuses) moto's EC2 server and the local model server on 127.0.0.1, seeds the demo
fleet, observes it, runs the alerts through the graph with the real local model, approves one
plan from the review queue as a named demo reviewer, and gathers outcomes, audit and metrics.
It stops what it started, also on Ctrl-C. It never talks to a real cloud: a reused endpoint must
be a moto server on this machine.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import boto3

from costguard.app.metrics import collect
from costguard.app.runner import CostGuard, PendingReview
from costguard.app.scan import scan, write_jsonl
from costguard.app.scan_waste import scan_waste
from costguard.app.wiring import build_deps
from costguard.errors import DemoError, ModelServerError
from costguard.graph.builder import compile_graph
from costguard.graph.checkpoint import sqlite_checkpointer
from costguard.policy import Policy
from costguard.sandbox.emulator import MotoServer, is_up
from costguard.sandbox.fleet import FleetInstance, seed_fleet
from costguard.sandbox.waste import FleetResource, seed_waste
from costguard.settings import Settings
from costguard.state import Alert, Outcome, ReviewResponse
from costguard.tools.cloud import Ec2Cloud
from costguard.tools.llm.model_file import MODEL_ALIAS
from costguard.tools.llm.probe import is_healthy, probe_completion
from costguard.tools.llm.server import LocalModelServer
from costguard.tools.notify import WebhookNotifier
from costguard.tools.pricing import load_price_list
from costguard.tools.store import Store, StoredAudit

DEMO_REVIEWER = "demo-reviewer@costguard.local"
REGION = "us-east-1"
ReviewChoice = Literal["approve", "reject", "skip"]


@dataclass
class DemoHooks:
    """How the CLI follows along: progress and (interactive) review decisions."""

    step: Callable[[str], None] = lambda message: None
    alert_done: Callable[[Outcome], None] = lambda outcome: None
    choose: Callable[[PendingReview], ReviewChoice] | None = None  # None: approve the first plan of each kind


@dataclass
class DemoResult:
    cloud_endpoint: str
    model_endpoint: str
    fleet: list[FleetInstance]
    alerts: list[Alert]
    outcomes: list[Outcome]
    review_queue: list[PendingReview]
    reviewed: list[tuple[ReviewChoice, Outcome]]
    audit: list[StoredAudit]
    audit_ok: bool
    snapshots_in_emulator: list[str]
    recorded: dict[str, Any]  # costguard.app.metrics.collect on the demo's database
    model_name: str
    workdir: Path
    started: list[str] = field(default_factory=list)
    resources: list[FleetResource] = field(default_factory=list)  # the waste that is not an instance

    def final_outcomes(self) -> list[Outcome]:
        """Each alert's last outcome: the review's, where the demo reviewed it."""
        final = {o.alert_id: o for o in self.outcomes}
        for _, outcome in self.reviewed:
            final[outcome.alert_id] = outcome
        return list(final.values())

    def metrics(self) -> dict[str, Any]:
        """The business and model levels of `costguard metrics`, read from the demo's database."""
        business, model = self.recorded["business"], self.recorded["model"]
        return {
            "alerts": business["alerts"],
            "statuses": business["statuses"],
            "rail_refusals": business["statuses"].get("rejected", 0),
            "savings_proposed_usd_per_month": business["savings_proposed_usd_per_month"],
            "savings_realised_usd_per_month": business["savings_realised_usd_per_month"],
            "model": {**model, "model": self.model_name},
        }


@contextmanager
def _cloud(stack: ExitStack, workdir: Path, started: list[str]) -> Iterator[str]:
    url = os.environ.get("AWS_ENDPOINT_URL")
    if url:
        if not is_up(url):
            raise DemoError(f"AWS_ENDPOINT_URL={url} is not a running moto server; the demo never uses a real cloud")
        yield url
        return
    server = stack.enter_context(MotoServer(log_file=workdir / "moto.log"))
    started.append(f"moto EC2 emulator on {server.url}")
    yield server.url


def _model_endpoint(stack: ExitStack, workdir: Path, started: list[str]) -> tuple[str, str]:
    url = os.environ.get("OPENAI_BASE_URL")
    if url and is_healthy(url):
        model = os.environ.get("COSTGUARD_MODEL", MODEL_ALIAS)
        try:
            probe_completion(url, model)
        except ModelServerError as exc:
            raise DemoError(f"OPENAI_BASE_URL={url} is up but cannot answer: {exc}") from exc
        return url, model
    server = stack.enter_context(LocalModelServer(log_path=workdir / "model-server.log"))
    started.append(f"local model server ({server.model}) on {server.base_url}")
    return server.base_url, server.model


def _fresh_db(workdir: Path) -> Path:
    db = workdir / "demo.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    return db


def run_demo(workdir: Path, hooks: DemoHooks | None = None) -> DemoResult:
    hooks = hooks or DemoHooks()
    workdir.mkdir(parents=True, exist_ok=True)
    started: list[str] = []
    with ExitStack() as stack:
        hooks.step("starting the local EC2 emulator and the local model server")
        cloud_url = stack.enter_context(_cloud(stack, workdir, started))
        model_url, model_name = _model_endpoint(stack, workdir, started)

        # the emulator accepts any credentials; these never reach a real cloud
        session = boto3.Session(aws_access_key_id="demo", aws_secret_access_key="demo", region_name=REGION)  # noqa: S106
        hooks.step("seeding the demo fleet")
        fleet = seed_fleet(session, endpoint_url=cloud_url, region=REGION)
        resources = seed_waste(session, endpoint_url=cloud_url, fleet=fleet, region=REGION)
        cloud = Ec2Cloud(session, default_region=REGION, endpoint_url=cloud_url, poll_interval_s=0.1)
        prices = load_price_list()

        hooks.step("observe: scanning the account for idle instances, volumes, addresses, databases (read-only)")
        now = datetime.now(UTC)
        alerts = scan(cloud, prices, region=REGION, now=now) + scan_waste(cloud, prices, region=REGION, now=now)
        alerts += _associated_address_alerts(resources, now)
        write_jsonl(alerts, workdir / "alerts.jsonl")

        db = _fresh_db(workdir)
        store = Store(db)
        settings = Settings(
            OPENAI_BASE_URL=model_url, OPENAI_API_KEY="not-needed", COSTGUARD_MODEL=model_name, COSTGUARD_DB=db
        )
        deps = build_deps(
            settings,
            # the emulator's volumes were created a minute ago: the age rule (7 days by default) would refuse them all
            Policy(phase="autonomous", approvers=(DEMO_REVIEWER,), unattached_volume_min_days=0),
            cloud=cloud,
            store=store,
            notifier=WebhookNotifier(None, workdir / "critical-alerts.jsonl"),
            prices=prices,
            method="function_calling",
        )
        guard = CostGuard(compile_graph(sqlite_checkpointer(db)), deps)

        hooks.step(f"processing {len(alerts)} alert(s) with the local model (autonomous phase, rails on)")
        outcomes = []
        for outcome in guard.process(alerts):
            outcomes.append(outcome)
            hooks.alert_done(outcome)

        queue = guard.pending()
        reviewed: list[tuple[ReviewChoice, Outcome]] = []
        first_of_kind: set[str] = set()
        for item in queue:
            kind = item.plan.resource_type
            choice: ReviewChoice = (
                hooks.choose(item) if hooks.choose else ("skip" if kind in first_of_kind else "approve")
            )
            first_of_kind.add(kind)
            if choice == "skip":
                continue
            response = ReviewResponse(
                decision=choice, reviewer=DEMO_REVIEWER, digest=item.plan.digest, note="costguard demo"
            )
            reviewed.append((choice, guard.review(item.thread_id, response)))

        snapshot_ids = [s for _, o in reviewed for s in o.snapshot_ids] + [s for o in outcomes for s in o.snapshot_ids]
        present = _snapshots_present(cloud, [s for s in snapshot_ids if s.startswith("snap-")])  # not DB snapshots
        return DemoResult(
            cloud_endpoint=cloud_url,
            model_endpoint=model_url,
            fleet=fleet,
            alerts=alerts,
            outcomes=outcomes,
            review_queue=queue,
            reviewed=reviewed,
            audit=deps.store.audit_rows(limit=10_000),
            audit_ok=deps.store.verify().ok,
            snapshots_in_emulator=present,
            recorded=collect(db),
            model_name=model_name,
            workdir=workdir,
            started=started,
            resources=resources,
        )


def _associated_address_alerts(resources: list[FleetResource], now: datetime) -> list[Alert]:
    """Observe never reports an address in use; the demo sends an alert for one anyway (as a person might, about
    its public IPv4 charge) to show the rail that keeps it."""
    return [
        Alert(
            alert_id=f"eip-charge-{r.resource_id}-{now:%Y%m%d}",
            resource_id=r.resource_id,
            region=REGION,
            kind="public_ipv4_charge",
            summary=f"public IPv4 charge for {r.resource_id} ({r.name}); is it still needed?",
            observed_at=now,
        )
        for r in resources
        if r.resource_type == "address" and r.expected.startswith("refused")
    ]


def _snapshots_present(cloud: Ec2Cloud, snapshot_ids: list[str]) -> list[str]:
    if not snapshot_ids:
        return []
    reply = cloud.ec2(REGION).describe_snapshots(SnapshotIds=snapshot_ids)
    return sorted(s["SnapshotId"] for s in reply["Snapshots"])
