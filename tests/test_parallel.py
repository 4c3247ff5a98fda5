"""A batch across worker processes: same outcomes, input order, nothing done twice; a dead worker is reported."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from costguard.errors import InvalidAlert
from costguard.parallel import WorkerDied, process_in_workers
from costguard.service import CostGuard
from costguard.state import Alert
from tests.conftest import APPROVER, cli_env, launch, snapshots_of, state_of
from tests.test_cli import costguard, json_lines

SHUTDOWN = {
    "action": "shutdown",
    "confidence": 0.95,
    "reasoning": "idle",
    "parameters": {"instance_id": "{{instance_id}}", "target_instance_type": None},
    "requires_approval": False,
}


def test_cli_workers_keep_input_order_and_act_once(tmp_path: Path, aws_env: str, ec2: Any) -> None:
    idle = [launch(ec2, "t3.small", {"env": "dev"}) for _ in range(7)]
    critical = launch(ec2, "t3.small", {"Criticality": "critical"})
    lines = [json.dumps({"alert_id": f"w-{n}", "instance_id": iid}) for n, iid in enumerate(idle)]
    lines.insert(3, '{"alert_id": "bad"}')
    lines.append(json.dumps({"alert_id": "crit", "instance_id": critical}))
    alerts = tmp_path / "alerts.jsonl"
    alerts.write_text("\n".join(lines) + "\n")
    script = tmp_path / "model.json"
    script.write_text(json.dumps([SHUTDOWN]))
    policy = tmp_path / "policy.toml"
    policy.write_text(f'phase = "autonomous"\napprovers = ["{APPROVER}"]\n')
    env = cli_env(aws_env, tmp_path / "cg.db")
    args = ("process", str(alerts), "--policy", str(policy), "--scripted-model", str(script), "--json")

    run = costguard(*args, "--workers", "2", "--concurrency", "4", env=env)
    outcomes = json_lines(run.stdout)
    assert [o["alert_id"] for o in outcomes] == ["w-0", "w-1", "w-2", "line-4", "w-3", "w-4", "w-5", "w-6", "crit"]
    assert [o["status"] for o in outcomes].count("executed") == 7
    assert outcomes[3]["status"] == "invalid_input"
    assert outcomes[-1]["status"] == "rejected"
    assert all(state_of(ec2, i) == "stopped" for i in idle)
    assert state_of(ec2, critical) == "running"

    again = json_lines(costguard(*args, "--workers", "3", "--concurrency", "3", env=env).stdout)
    assert [o["status"] for o in again] == [o["status"] for o in outcomes]
    assert all(len(snapshots_of(ec2, i)) == 1 for i in idle)  # the second batch did nothing new


def _broken_factory() -> CostGuard:
    raise RuntimeError("cannot build costguard here")


def test_a_worker_that_dies_stops_the_batch_with_a_clear_error() -> None:
    alerts: list[Alert | InvalidAlert] = [Alert(alert_id="x", instance_id="i-0123456789abcdef0")]
    with pytest.raises(WorkerDied, match="costguard-worker-0 exited with code 1"):
        list(process_in_workers(_broken_factory, alerts, workers=1, concurrency=1))


def test_only_invalid_lines_need_no_worker() -> None:
    outcomes = list(process_in_workers(_broken_factory, [InvalidAlert(1, "not JSON")], workers=2, concurrency=2))
    assert [o.status for o in outcomes] == ["invalid_input"]
