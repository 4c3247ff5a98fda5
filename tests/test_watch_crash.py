"""The watcher killed with SIGKILL mid-batch and restarted: every message handled, no effect twice. SIGTERM: exit 0."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from costguard.tools.store import Store
from tests.aws_routes import Routes, alarm_for, queue_is_empty
from tests.conftest import APPROVER, cli_env, decision, launch, snapshots_of, state_of

VISIBILITY_S = 10


def watch(routes: Routes, tmp_path: Path, env: dict[str, str], *extra: str) -> subprocess.Popen[str]:
    script = tmp_path / "model.json"
    script.write_text(json.dumps([decision("{{instance_id}}", confidence=0.95)]))
    policy = tmp_path / "policy.toml"
    policy.write_text(f'phase = "autonomous"\napprovers = ["{APPROVER}"]\n')
    command = [
        sys.executable, "-m", "costguard.run", "watch", "--queue", routes.queue_url, "--policy", str(policy),
        "--scripted-model", str(script), "--visibility", str(VISIBILITY_S), "--poll-wait", "1", "--json", *extra,
    ]  # fmt: skip
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.slow
def test_sigkill_mid_batch_then_restart_handles_every_message_once(
    tmp_path: Path, aws_env: str, routes: Routes, ec2: Any
) -> None:
    instances = [launch(ec2, "t3.small", {"env": "dev"}) for _ in range(6)]
    for iid in instances:
        routes.sns.publish(TopicArn=routes.topic_arn, Message=alarm_for(iid))
    env = cli_env(aws_env, tmp_path / "cg.db")

    # 1. killed (by itself, SIGKILL) right after its first effect, before the ledger confirms it
    crashing = watch(routes, tmp_path, {**env, "COSTGUARD_CRASHPOINTS": "after_effect=1.0"}, "--once")
    crashing.communicate(timeout=120)
    assert crashing.returncode == -signal.SIGKILL
    # 2. killed from outside while it works
    busy = watch(routes, tmp_path, env)
    time.sleep(2.0)
    busy.send_signal(signal.SIGKILL)
    busy.communicate(timeout=60)
    assert busy.returncode == -signal.SIGKILL
    # 3. after the visibility timeout the unfinished messages come back; a clean run drains the queue
    time.sleep(VISIBILITY_S + 1)
    final = watch(routes, tmp_path, env, "--once")
    _, stderr = final.communicate(timeout=300)
    assert final.returncode == 0, stderr[-2000:]

    assert queue_is_empty(routes)
    for iid in instances:
        assert state_of(ec2, iid) == "stopped"
        assert len(snapshots_of(ec2, iid)) == 1, iid  # every effect once, across three processes
    store = Store(tmp_path / "cg.db")
    assert store.verify().ok
    assert {t["status"] for t in store.threads(limit=100)} == {"executed"}


@pytest.mark.slow
def test_sigterm_takes_nothing_new_finishes_and_exits_0(tmp_path: Path, aws_env: str, routes: Routes, ec2: Any) -> None:
    iid = launch(ec2, "t3.small", {"env": "dev"})
    routes.sns.publish(TopicArn=routes.topic_arn, Message=alarm_for(iid))
    proc = watch(routes, tmp_path, cli_env(aws_env, tmp_path / "cg.db"))
    deadline = time.monotonic() + 60
    while not queue_is_empty(routes) and time.monotonic() < deadline:
        time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 0, stderr[-2000:]
    assert "SIGTERM" in stderr
    (line,) = [json.loads(x) for x in stdout.splitlines() if x.strip()]
    assert line["status"] == "handled"
    assert state_of(ec2, iid) == "stopped"
