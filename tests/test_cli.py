"""The CLI in real processes: a run pauses for review, a new process approves it from the same DB file."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.conftest import APPROVER, cli_env, decision, launch, snapshots_of, state_of


def costguard(*args: str, env: dict[str, str], check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "costguard.run", *args], env=env, capture_output=True, text=True, timeout=120
    )
    if check and proc.returncode not in (0, 3):
        raise AssertionError(f"costguard {args} exited {proc.returncode}: {proc.stderr}")
    return proc


def json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_process_review_and_approve_across_processes(tmp_path: Path, aws_env: str, ec2: Any) -> None:
    cheap = launch(ec2, "t3.small", {"env": "dev"})
    big = launch(ec2, "m5.2xlarge", {"env": "dev"})
    prod_db = launch(ec2, "r5.large", {"Environment": "Production", "Service": "mysql"})
    alerts = tmp_path / "alerts.jsonl"
    alerts.write_text(
        "\n".join(
            [
                json.dumps({"alert_id": "cheap", "instance_id": cheap}),
                json.dumps({"alert_id": "big", "instance_id": big}),
                json.dumps({"alert_id": "db", "instance_id": prod_db}),
                '{"alert_id": "broken", "instance_id": "i-nothex"}',
            ]
        )
        + "\n"
    )
    # a model that always proposes shutdown of whatever instance the alert names
    script = tmp_path / "model.json"
    script.write_text(json.dumps([decision(cheap), decision(big), decision(prod_db)]))
    policy = tmp_path / "policy.toml"
    policy.write_text(f'phase = "autonomous"\napprovers = ["{APPROVER}"]\n')
    env = cli_env(aws_env, tmp_path / "cg.db")

    first = costguard(
        "process", str(alerts), "--policy", str(policy), "--scripted-model", str(script), "--json", env=env
    )
    assert first.returncode == 0, first.stderr
    outcomes = {o["alert_id"]: o for o in json_lines(first.stdout)}
    assert outcomes["cheap"]["status"] == "executed"
    assert outcomes["big"]["status"] == "awaiting_review"
    assert outcomes["db"]["status"] == "rejected"
    assert "production_database" in outcomes["db"]["rules"]
    assert outcomes["broken"]["status"] == "invalid_input"
    assert "instance_id" in outcomes["broken"]["reason"]
    assert set(outcomes["cheap"]) >= {
        "alert_id",
        "thread_id",
        "status",
        "action",
        "executed",
        "reason",
        "savings_usd_per_month",
    }

    pending = json.loads(costguard("review", "list", "--json", env=env).stdout)
    assert [p["thread_id"] for p in pending] == ["alert:big"]
    digest = pending[0]["digest"]

    wrong = costguard(
        "review",
        "approve",
        "alert:big",
        "--reviewer",
        "mallory",
        "--digest",
        digest,
        "--policy",
        str(policy),
        "--json",
        env=env,
        check=False,
    )
    assert wrong.returncode == 1
    assert json.loads(wrong.stdout)["refused"] == "review response refused: reviewer_not_allowed"
    assert state_of(ec2, big) == "running"

    ok = costguard(
        "review",
        "approve",
        "alert:big",
        "--reviewer",
        APPROVER,
        "--digest",
        digest,
        "--policy",
        str(policy),
        "--json",
        env=env,
    )
    assert json.loads(ok.stdout)["status"] == "executed"
    assert state_of(ec2, big) == "stopped"
    assert len(snapshots_of(ec2, big)) == 1
    assert state_of(ec2, prod_db) == "running"

    # the same batch again: nothing new happens, finished outcomes are reported
    again = costguard(
        "process", str(alerts), "--policy", str(policy), "--scripted-model", str(script), "--json", env=env
    )
    assert {o["alert_id"]: o["status"] for o in json_lines(again.stdout)} == {
        "cheap": "executed",
        "big": "executed",
        "db": "rejected",
        "broken": "invalid_input",
    }
    assert len(snapshots_of(ec2, big)) == 1

    verify = costguard("audit", "verify", "--json", env=env)
    assert json.loads(verify.stdout)["ok"] is True
    history = json.loads(costguard("history", "alert:big", "--json", env=env).stdout)
    assert history[0]["status"] == "executed"
    # default durability: checkpoints at the end, before execute and at the review pause (and a resume input)
    nexts = [h["next"] for h in history]
    assert nexts[:2] == [[], ["execute"]]
    assert ["human_review"] in nexts


def test_bad_policy_is_a_usage_error(tmp_path: Path, aws_env: str) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text("confidence_threshold = 7\n")
    alerts = tmp_path / "a.jsonl"
    alerts.write_text("")
    proc = costguard(
        "process", str(alerts), "--policy", str(policy), env=cli_env(aws_env, tmp_path / "x.db"), check=False
    )
    assert proc.returncode == 1
    assert "confidence_threshold" in proc.stderr


def test_unreachable_cloud_fails_cleanly_with_exit_code_3(tmp_path: Path, aws_env: str) -> None:
    from costguard.tools.net import free_port

    alerts = tmp_path / "a.jsonl"
    alerts.write_text(json.dumps({"alert_id": "x", "instance_id": "i-0123456789abcdef0"}) + "\n")
    script = tmp_path / "model.json"
    script.write_text(json.dumps([decision("i-0123456789abcdef0")]))
    env = cli_env(f"http://127.0.0.1:{free_port()}", tmp_path / "cg.db")
    proc = costguard("process", str(alerts), "--scripted-model", str(script), "--json", env=env, check=False)
    assert proc.returncode == 3
    (outcome,) = json_lines(proc.stdout)
    assert outcome["status"] == "failed"
    assert outcome["error_class"] == "CloudUnavailable"
    assert "after 3 attempts" in outcome["reason"]


def test_the_db_setting_takes_a_path_a_file_name_or_a_postgres_url(tmp_path: Path) -> None:
    """Code passes a Path (the demo, the watch tests); the environment passes text. Both mean the same store."""
    from costguard.settings import Settings

    assert Settings(COSTGUARD_DB=tmp_path / "cg.db").db == str(tmp_path / "cg.db")
    assert Settings(COSTGUARD_DB="cg.db").db == "cg.db"
    url = "postgresql://u@127.0.0.1:5432/cg"
    assert Settings(COSTGUARD_DB=url).db == url
