"""A batch across worker processes: same outcomes, input order, nothing done twice; a dead worker is reported."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from costguard.app.runner import CostGuard
from costguard.app.workers import process_in_workers
from costguard.errors import InvalidAlert, WorkerDied
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
    assert outcomes, f"exit {run.returncode}: {run.stderr[-3000:]}"
    assert [o["alert_id"] for o in outcomes] == ["w-0", "w-1", "w-2", "bad", "w-3", "w-4", "w-5", "w-6", "crit"]
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


SCRIPT = """
import os, sys, time
from costguard.app.workers import process_in_workers
from costguard.errors import WorkerDied
from costguard.state import Alert, Outcome

class SlowGuard:
    def process_alert(self, alert):
        with open(os.environ["PIDS"], "a") as fh:
            fh.write(f"{os.getpid()}\\n")
        time.sleep(0.05)
        return Outcome(alert_id=alert.alert_id, thread_id="t", status="monitoring")

def slow():
    return SlowGuard()

def broken():
    raise RuntimeError("no guard here")

count = int(sys.argv[2])
alerts = [Alert(alert_id=f"a{n}", instance_id="i-0123456789abcdef0", summary="x" * 300) for n in range(count)]
if sys.argv[1] == "broken":
    try:
        list(process_in_workers(broken, alerts, workers=2, concurrency=4))
    except WorkerDied as exc:
        print("died:", exc, flush=True)
else:
    for outcome in process_in_workers(slow, alerts, workers=2, concurrency=4):
        print(outcome.alert_id, flush=True)
"""


def _script(tmp_path: Path, *args: str) -> subprocess.Popen[str]:
    env = dict(os.environ, PIDS=str(tmp_path / "pids"))
    return subprocess.Popen(
        [sys.executable, "-c", SCRIPT, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def test_a_dead_worker_with_many_queued_alerts_does_not_hang_the_parent(tmp_path: Path) -> None:
    # 400 queued alerts fill the queue's pipe: its feeder thread must not keep the process alive
    proc = _script(tmp_path, "broken", "400")
    stdout, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0
    assert "died: costguard-worker-" in stdout


def test_workers_take_no_new_alert_once_the_parent_is_killed(tmp_path: Path) -> None:
    proc = _script(tmp_path, "slow", "2000")
    assert proc.stdout is not None
    for _ in range(10):  # let the batch get going
        assert proc.stdout.readline()
    proc.kill()
    proc.wait()
    pids = {int(p) for p in (tmp_path / "pids").read_text().split()}
    assert len(pids) == 2  # both workers took alerts
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(_alive(pid) for pid in pids):
        time.sleep(0.1)
    assert not any(_alive(pid) for pid in pids), "orphaned workers kept going"
    started = len((tmp_path / "pids").read_text().split())
    assert started < 200  # of 2,000: they stopped soon after the parent died


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie (exited, not yet reaped by init) counts as gone
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    return False
