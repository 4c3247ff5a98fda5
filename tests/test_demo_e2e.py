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

import httpx
import pytest

from tests.conftest import state_of

PROTECTED = {"prod-db", "nightly-etl", "batch-worker", "legacy-ledger", "ephemeral-cache"}


@pytest.mark.real_model
@pytest.mark.slow
def test_demo_runs_the_whole_job_on_the_embedded_defaults(tmp_path: Path, aws_env: str, ec2: Any) -> None:
    httpx.post(f"{aws_env}/moto-api/reset", timeout=10)  # the demo scans the whole account
    env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_BASE_URL", "OPENAI_API_KEY", "COSTGUARD_MODEL")}
    env["AWS_ENDPOINT_URL"] = aws_env  # reuse the test's emulator, so we can look at it afterwards
    proc = subprocess.run(
        [sys.executable, "-m", "costguard.run", "demo", "--json", "--workdir", str(tmp_path / "demo")],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout)

    assert any("local model server" in s for s in result["started"])
    statuses = [o["status"] for o in result["outcomes"]]
    assert "rejected" in statuses, statuses  # at least one rail refusal
    assert result["review_queue"], "no plan awaited review"
    (reviewed,) = [r for r in result["reviewed"] if r["decision"] == "approve"]
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
    model = result["metrics"]["model"]
    # every alert got an answer (a timeout on a loaded machine is retried, so errors may be > 0)
    assert model["calls"] - model["errors"] >= len(result["outcomes"])
