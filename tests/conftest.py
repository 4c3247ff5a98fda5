"""Shared fixtures: a real moto EC2 server on 127.0.0.1, a guard against real model calls,
and a harness that builds costguard over either checkpointer."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import httpx
import openai
import psycopg
import pytest
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.memory import InMemorySaver

from costguard.app.runner import CheckpointMode, CostGuard
from costguard.app.wiring import build_deps
from costguard.graph.builder import compile_graph
from costguard.graph.checkpoint import checkpointer_for, serializer
from costguard.policy import Policy
from costguard.sandbox.emulator import MotoServer
from costguard.sandbox.postgres import PostgresServer
from costguard.sandbox.scripted_model import Answer, ScriptedChatModel
from costguard.settings import Settings
from costguard.tools.cloud import Ec2Cloud
from costguard.tools.notify import WebhookNotifier
from costguard.tools.store import Store, open_store
from tests.aws_routes import Routes, make_routes

if TYPE_CHECKING:
    from mypy_boto3_cloudwatch.type_defs import MetricDatumTypeDef

REGION = "us-east-1"
APPROVER = "alice@example.com"


class RealModelCallError(AssertionError):
    """A unit test tried to reach a real model server."""


@pytest.fixture(autouse=True)
def _no_real_model_calls(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Any request through the OpenAI client fails, unless the test is marked real_model."""
    if request.node.get_closest_marker("real_model"):
        return

    def refuse(*args: object, **kwargs: object) -> Any:
        raise RealModelCallError("a unit test tried to call a real model server")

    monkeypatch.setattr(openai._base_client.SyncAPIClient, "request", refuse)
    monkeypatch.setattr(openai._base_client.AsyncAPIClient, "request", refuse)
    real_send = httpx.Client.send

    def send(self: httpx.Client, request: httpx.Request, **kwargs: Any) -> httpx.Response:
        if request.url.path.endswith("/completions"):  # costguard's own readiness probe, or any other client
            raise RealModelCallError(f"a unit test tried to call a real model server: {request.url}")
        return real_send(self, request, **kwargs)

    monkeypatch.setattr(httpx.Client, "send", send)
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "unit-tests-have-no-key")


@pytest.fixture(scope="session")
def moto_url() -> Iterator[str]:
    """moto's EC2/CloudWatch server on a free loopback port, for the whole session."""
    with MotoServer() as server:
        yield server.url


@pytest.fixture
def aws_env(moto_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    return moto_url


@pytest.fixture
def session(aws_env: str) -> boto3.Session:
    return boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION)


@pytest.fixture
def ec2(session: boto3.Session, aws_env: str) -> Any:
    return session.client("ec2", endpoint_url=aws_env)


@pytest.fixture
def cloud(session: boto3.Session, aws_env: str) -> Ec2Cloud:
    return Ec2Cloud(session, default_region=REGION, endpoint_url=aws_env, poll_interval_s=0.05)


_IMAGES: dict[str, str] = {}


def put_cpu(ec2: Any, instance_ids: list[str], cpu: float, *, at: datetime | None = None) -> None:
    """CPU datapoints an hour before both the real clock and the tests' fixed Clock, so any window sees them (with
    `at`: an hour before that time only, for a Clock moved on)."""
    cloudwatch = boto3.client(
        "cloudwatch",
        endpoint_url=ec2.meta.endpoint_url,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    stamps = (
        [at - timedelta(hours=1)] if at else [datetime.now(UTC) - timedelta(hours=1), Clock().now - timedelta(hours=1)]
    )
    data: list[MetricDatumTypeDef] = [
        {
            "MetricName": "CPUUtilization",
            "Dimensions": [{"Name": "InstanceId", "Value": iid}],
            "Timestamp": stamp,
            "Value": cpu,
            "Unit": "Percent",
        }
        for iid in instance_ids
        for stamp in stamps
    ]
    for start in range(0, len(data), 500):
        cloudwatch.put_metric_data(Namespace="AWS/EC2", MetricData=data[start : start + 500])


def client_like(ec2: Any, service: str) -> Any:
    """A boto3 client of another service on the same emulator as `ec2`."""
    return boto3.client(  # type: ignore[call-overload]
        service,
        endpoint_url=ec2.meta.endpoint_url,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def create_database(
    ec2: Any,
    name: str,
    tags: dict[str, str],
    *,
    cpu: float = 1.0,
    connections: float = 0.0,
    stamp: datetime | None = None,
    **options: Any,
) -> str:
    """An RDS PostgreSQL db.t3.medium with a CPU and a connections data point an hour before `stamp`."""
    client_like(ec2, "rds").create_db_instance(
        DBInstanceIdentifier=name,
        DBInstanceClass="db.t3.medium",
        Engine="postgres",
        MasterUsername="admin",
        MasterUserPassword="not-a-secret-1",
        AllocatedStorage=20,
        Tags=[{"Key": k, "Value": v} for k, v in tags.items()],
        **options,
    )
    put_db_metrics(ec2, name, cpu=cpu, connections=connections, at=stamp or Clock().now)
    return name


def put_db_metrics(ec2: Any, name: str, *, cpu: float, connections: float, at: datetime) -> None:
    """A database's CPU and connections data points an hour before `at`."""
    client_like(ec2, "cloudwatch").put_metric_data(
        Namespace="AWS/RDS",
        MetricData=[
            {
                "MetricName": metric,
                "Dimensions": [{"Name": "DBInstanceIdentifier", "Value": name}],
                "Timestamp": at - timedelta(hours=1),
                "Value": value,
            }
            for metric, value in (("CPUUtilization", cpu), ("DatabaseConnections", connections))
        ],
    )


def launch(
    ec2: Any, instance_type: str = "t3.large", tags: dict[str, str] | None = None, cpu: float | None = 2.0, **extra: Any
) -> str:
    """One instance in the emulator, with tags and (unless cpu is None) a low CPU utilisation."""
    endpoint = ec2.meta.endpoint_url
    if endpoint not in _IMAGES:
        _IMAGES[endpoint] = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    image = _IMAGES[endpoint]
    kwargs: dict[str, Any] = {"ImageId": image, "MinCount": 1, "MaxCount": 1, "InstanceType": instance_type}
    if tags:
        kwargs["TagSpecifications"] = [
            {"ResourceType": "instance", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}
        ]
    kwargs.update(extra)
    instance_id = str(ec2.run_instances(**kwargs)["Instances"][0]["InstanceId"])
    if cpu is not None:
        put_cpu(ec2, [instance_id], cpu)
    return instance_id


def state_of(ec2: Any, instance_id: str) -> str:
    reply = ec2.describe_instances(InstanceIds=[instance_id])
    return str(reply["Reservations"][0]["Instances"][0]["State"]["Name"])


def type_of(ec2: Any, instance_id: str) -> str:
    reply = ec2.describe_instances(InstanceIds=[instance_id])
    return str(reply["Reservations"][0]["Instances"][0]["InstanceType"])


def snapshots_of(ec2: Any, instance_id: str) -> list[str]:
    reply = ec2.describe_snapshots(
        OwnerIds=["self"], Filters=[{"Name": "tag:costguard:instance-id", "Values": [instance_id]}]
    )
    return sorted(s["SnapshotId"] for s in reply["Snapshots"])


def decision(
    instance_id: str,
    action: str = "shutdown",
    confidence: float = 0.9,
    target: str | None = None,
    requires_approval: bool = False,
) -> dict[str, Any]:
    return {
        "action": action,
        "confidence": confidence,
        "reasoning": f"scripted {action}",
        "parameters": {"instance_id": instance_id, "target_instance_type": target},
        "requires_approval": requires_approval,
    }


class Clock:
    """A clock the test moves."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@dataclass
class Harness:
    guard: CostGuard
    model: ScriptedChatModel
    store: Store
    clock: Clock
    alerts_sink: Path
    db: str  # a SQLite file path, or a postgresql:// URL


# the sqlite saver twice: costguard's default durability ("exit": checkpoints at pauses, before
# execute, at the end) and a checkpoint per step ("sync"); and PostgreSQL (store and checkpoints), as a team runs it
SAVERS = ["memory", "sqlite", "sqlite-sync", "postgres"]


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One PostgreSQL server for the session, on a free loopback port (started as an unprivileged user)."""
    with PostgresServer() as server:
        yield server


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> str:
    """A fresh database on the session's server, for one test."""
    name = f"t_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(postgres_server.url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return postgres_server.url.rsplit("/", 1)[0] + f"/{name}"


@pytest.fixture(params=SAVERS)
def saver_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def make_harness(
    saver_kind: str, tmp_path: Path, session: boto3.Session, aws_env: str, request: pytest.FixtureRequest
) -> Callable[..., Harness]:
    """Build costguard with a scripted model over the parametrized checkpointer (and store)."""
    location = request.getfixturevalue("postgres_url") if saver_kind == "postgres" else str(tmp_path / "costguard.db")

    def build(
        script: list[Answer],
        *,
        policy: Policy | None = None,
        cloud_url: str | None = None,
        webhook: str | None = None,
        durability: CheckpointMode | None = None,
        **policy_kw: Any,
    ) -> Harness:
        db = location
        checkpointer: BaseCheckpointSaver[str] = (
            InMemorySaver(serde=serializer()) if saver_kind == "memory" else checkpointer_for(db)
        )
        mode: CheckpointMode = durability or ("sync" if saver_kind == "sqlite-sync" else "exit")
        model = ScriptedChatModel(script=script)
        store = open_store(db)
        request.addfinalizer(lambda: _close(store, checkpointer))  # a pool left to the GC fails a later test
        clock = Clock()
        sink = tmp_path / "alerts.jsonl"
        base = policy or Policy(approvers=(APPROVER,), **policy_kw)
        cloud = Ec2Cloud(
            session, default_region=REGION, endpoint_url=cloud_url or aws_env, poll_interval_s=0.05, clock=clock
        )
        settings = Settings(COSTGUARD_DB=db, COSTGUARD_ALERT_WEBHOOK=webhook)
        notifier = WebhookNotifier(webhook, sink)
        deps = build_deps(settings, base, model=model, cloud=cloud, store=store, notifier=notifier, clock=clock)
        guard = CostGuard(compile_graph(checkpointer), deps, durability=mode)
        return Harness(guard, model, store, clock, sink, db)

    return build


def _close(store: Store, checkpointer: BaseCheckpointSaver[str]) -> None:
    """Close what holds connections: the store, and a PostgresSaver's pool (SQLite's closes with the process)."""
    store.close()
    pool = getattr(checkpointer, "conn", None)
    if pool is not None and hasattr(pool, "close") and type(pool).__module__.startswith("psycopg_pool"):
        pool.close()


def cli_env(aws_env: str, db: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "AWS_ENDPOINT_URL": aws_env,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": REGION,
            "COSTGUARD_DB": str(db),
            "OPENAI_BASE_URL": "http://127.0.0.1:9/v1",
        }
    )
    return env


@pytest.fixture
def routes(aws_env: str) -> Routes:
    """A fresh emulated account whose queue is fed by an SNS topic and an EventBridge rule."""
    return make_routes(aws_env)
