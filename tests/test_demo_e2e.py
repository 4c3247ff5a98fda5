"""End to end: `costguard demo --json` with the real local model server and moto's EC2 server.

Slow (tens of seconds: the model answers in ~2 s per call on 2 cores); one test only.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest

from costguard.tools.llm.launcher import CRASH_ENV
from costguard.tools.net import free_port, port_is_open
from tests.conftest import state_of
from tests.fake_openai import FakeOpenAI, ok_text

PROTECTED = {"prod-db", "nightly-etl", "batch-worker", "legacy-ledger", "ephemeral-cache"}


@pytest.mark.real_model
@pytest.mark.slow
def test_demo_runs_the_whole_job_on_the_embedded_defaults(tmp_path: Path, aws_env: str, ec2: Any) -> None:
    httpx.post(f"{aws_env}/moto-api/reset", timeout=10)  # the demo scans the whole account
    env = _env_without_model(AWS_ENDPOINT_URL=aws_env)  # reuse the test's emulator, to look at it afterwards
    proc = _run_cli(["demo", "--json", "--workdir", str(tmp_path / "demo")], env, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout)

    assert any("local model server" in s for s in result["started"])
    statuses = [o["status"] for o in result["outcomes"]]
    assert "rejected" in statuses, statuses  # at least one rail refusal
    assert result["review_queue"], "no plan awaited review"
    approved = [r for r in result["reviewed"] if r["decision"] == "approve"]
    kinds = [r["outcome"]["resource_type"] for r in approved]
    assert len(kinds) == len(set(kinds)), "the demo approves the first plan of each kind"
    (reviewed,) = [r for r in approved if r["outcome"]["resource_type"] == "instance"]
    assert reviewed["outcome"]["status"] == "executed"
    snapshot_ids = reviewed["outcome"]["snapshot_ids"]
    assert snapshot_ids
    found = ec2.describe_snapshots(SnapshotIds=snapshot_ids)["Snapshots"]
    assert sorted(s["SnapshotId"] for s in found) == sorted(snapshot_ids)
    assert result["audit_chain_ok"] is True

    fleet = {f["name"]: f["instance_id"] for f in result["fleet"]}
    for name in PROTECTED:
        assert state_of(ec2, fleet[name]) == "running", f"{name} was stopped"
    assert state_of(ec2, fleet["busy-web"]) == "running"
    # every kind of waste went through the graph; whatever the model proposed, the rails kept the protected ones
    resources = {r["name"]: r for r in result["resources"]}
    by_resource = {o["resource_id"]: o for o in result["outcomes"]}
    assert {o["resource_type"] for o in result["outcomes"]} == {"instance", "volume", "address", "db_instance"}
    for name, rule in (("orders-db", "production_database"), ("web-eip", "address_associated")):
        outcome = by_resource[resources[name]["resource_id"]]
        assert not outcome["executed"]
        if outcome["status"] == "rejected":
            assert rule in outcome["rules"]
    rds = boto3.client(
        "rds", endpoint_url=aws_env, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    assert (
        rds.describe_db_instances(DBInstanceIdentifier="orders-db")["DBInstances"][0]["DBInstanceStatus"] == "available"
    )
    held = ec2.describe_addresses(AllocationIds=[resources["web-eip"]["resource_id"]])["Addresses"]
    assert held[0].get("AssociationId")
    for volume in [r for r in approved if r["outcome"]["resource_type"] == "volume"]:
        if volume["outcome"]["status"] == "executed" and volume["outcome"]["action"] == "delete":
            assert volume["outcome"]["snapshot_ids"]  # the snapshot taken first is named
            assert volume["outcome"]["snapshot_ids"][0] in volume["outcome"]["reason"]
    model = result["metrics"]["model"]
    # every alert got an answer (a timeout on a loaded machine is retried, so errors may be > 0)
    assert model["calls"] - model["errors"] >= len(result["outcomes"])


def _run_cli(args: list[str], env: dict[str, str], timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "costguard.run", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def _env_without_model(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_BASE_URL", "OPENAI_API_KEY", "COSTGUARD_MODEL")}
    env.update(extra)
    return env


@pytest.mark.real_model
@pytest.mark.slow
def test_demo_stops_at_once_with_exit_1_when_the_model_server_dies_on_its_first_answer(
    tmp_path: Path, aws_env: str
) -> None:
    env = _env_without_model(AWS_ENDPOINT_URL=aws_env, **{CRASH_ENV: "first_completion"})
    proc = _run_cli(["demo", "--json", "--workdir", str(tmp_path / "demo")], env, timeout=300)
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert proc.stdout == ""  # no outcomes: nothing was sent to a dead model
    assert "died answering its first completion: killed by signal SIGSEGV" in proc.stderr
    assert str(tmp_path / "demo" / "model-server.log") in proc.stderr
    assert "OPENAI_BASE_URL" in proc.stderr
    assert "ConnectionError" not in proc.stderr


@pytest.mark.real_model
@pytest.mark.slow
def test_llm_serve_exits_1_with_the_reason_when_the_model_dies_on_its_first_answer(tmp_path: Path) -> None:
    port = str(free_port())
    proc = _run_cli(["llm", "serve", "--port", port], _env_without_model(**{CRASH_ENV: "first_completion"}), 300)
    assert proc.returncode == 1
    assert "killed by signal SIGSEGV" in proc.stderr
    assert "what to do" in proc.stderr
    assert not port_is_open("127.0.0.1", int(port))


@pytest.mark.real_model  # a fake model server on 127.0.0.1, reached by the demo's subprocess
@pytest.mark.slow
def test_demo_exits_3_when_an_alert_failed(tmp_path: Path, aws_env: str) -> None:
    def fail_decisions(body: dict[str, Any]) -> tuple[int, bytes]:
        return (503, b'{"error": {"message": "overloaded"}}') if "tools" in body else ok_text(body)

    httpx.post(f"{aws_env}/moto-api/reset", timeout=10)
    with FakeOpenAI(completion=fail_decisions) as fake:
        env = _env_without_model(AWS_ENDPOINT_URL=aws_env, OPENAI_BASE_URL=fake.base_url, COSTGUARD_MODEL="m")
        proc = _run_cli(["demo", "--json", "--workdir", str(tmp_path / "demo")], env)
    assert proc.returncode == 3, proc.stderr[-3000:]
    result = json.loads(proc.stdout)
    statuses = {o["status"] for o in result["outcomes"]}
    assert statuses == {"failed"}, statuses
    assert {o["error_class"] for o in result["outcomes"]} == {"ModelUnavailable"}


@pytest.mark.real_model  # a fake model server on 127.0.0.1
def test_demo_exits_1_when_the_configured_model_server_cannot_answer(tmp_path: Path, aws_env: str) -> None:
    with FakeOpenAI(completion=lambda body: (500, b"no model loaded")) as fake:
        env = _env_without_model(AWS_ENDPOINT_URL=aws_env, OPENAI_BASE_URL=fake.base_url, COSTGUARD_MODEL="m")
        proc = _run_cli(["demo", "--json", "--workdir", str(tmp_path / "demo")], env, timeout=120)
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert "is up but cannot answer" in proc.stderr
    assert "HTTP 500: no model loaded" in proc.stderr
