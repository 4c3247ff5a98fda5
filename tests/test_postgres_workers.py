"""Many workers, one PostgreSQL: a crash storm with three workers on the same alerts, and two workers racing.

Real processes (`costguard process` on one alerts file and one database), killed with SIGKILL at random moments
and from inside `execute`, restarted until a clean run. Then: every thread terminal, each plan acted once (one
snapshot per instance), the audit chain one chain that verifies.
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from costguard.state import TERMINAL_STATUSES
from costguard.tools.store import open_store
from tests.conftest import APPROVER, cli_env
from tests.test_crash import launch_many, snapshot_counts, states

N_ALERTS = 60
WORKERS = 3
MIN_KILLS = 12


def _files(tmp_path: Path, ids: list[str]) -> tuple[Path, Path, Path]:
    alerts = tmp_path / "alerts.jsonl"
    alerts.write_text("".join(json.dumps({"alert_id": f"pg-{n}", "instance_id": i}) + "\n" for n, i in enumerate(ids)))
    model = tmp_path / "model.json"
    shutdown = {
        "action": "shutdown",
        "confidence": 0.95,
        "reasoning": "idle",
        "parameters": {"instance_id": "{{instance_id}}", "target_instance_type": None},
        "requires_approval": False,
    }
    model.write_text(json.dumps([shutdown]))
    policy = tmp_path / "policy.toml"
    policy.write_text(f'phase = "autonomous"\napprovers = ["{APPROVER}"]\n')
    return alerts, model, policy


def _worker(env: dict[str, str], alerts: Path, model: Path, policy: Path) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "costguard.run", "process", str(alerts), "--json", "--concurrency", "4"]
    command += ["--policy", str(policy), "--scripted-model", str(model)]
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.slow
def test_three_workers_sigkilled_at_random_never_repeat_an_effect(
    tmp_path: Path, aws_env: str, ec2: Any, postgres_url: str
) -> None:
    rng = random.Random(20261202)
    cheap = launch_many(ec2, 45, "t3.micro", {"env": "dev"})
    critical = launch_many(ec2, 15, "t3.micro", {"Criticality": "Critical"})
    ids = cheap + critical
    rng.shuffle(ids)
    alerts, model, policy = _files(tmp_path, ids)
    env = {**cli_env(aws_env, tmp_path / "unused.db"), "COSTGUARD_DB": postgres_url}

    kills = 0
    inside = 0
    for _ in range(40):
        storm = kills < MIN_KILLS
        procs = []
        for _ in range(WORKERS):
            worker_env = dict(env)
            if storm:  # some die inside execute, at random, between an intent and its effect or confirmation
                worker_env["COSTGUARD_CRASHPOINTS"] = "after_intent=0.05,after_effect=0.05"
            procs.append(_worker(worker_env, alerts, model, policy))
        if storm:  # and one is killed from outside, at a random moment
            time.sleep(rng.uniform(0.5, 3.0))
            victim = procs[rng.randrange(WORKERS)]
            if victim.poll() is None:
                victim.send_signal(signal.SIGKILL)
        results = [p.communicate(timeout=600) for p in procs]
        codes = [p.returncode for p in procs]
        kills += sum(1 for c in codes if c == -signal.SIGKILL)
        inside += sum(1 for c, (_, err) in zip(codes, results, strict=True) if c == -signal.SIGKILL and not err)
        assert all(c in (0, 3, -signal.SIGKILL) for c in codes), [r[1][-1500:] for r in results]
        if not storm and all(c in (0, 3) for c in codes):
            finals = [[json.loads(x) for x in out.splitlines() if x.strip()] for out, _ in results]
            break
    else:
        pytest.fail(f"no clean round after {kills} kills")
    assert kills >= MIN_KILLS

    # every worker reports every alert, the same way: one outcome per thread, whoever ran it
    for final in finals:
        statuses = Counter(o["status"] for o in final)
        assert len(final) == N_ALERTS
        assert set(statuses) <= TERMINAL_STATUSES
        assert statuses["executed"] == len(cheap)
        assert statuses["rejected"] == len(critical)

    mine = set(ids)
    snaps = Counter({i: c for i, c in snapshot_counts(ec2).items() if i in mine})
    assert {i: c for i, c in snaps.items() if c > 1} == {}  # at most once, across 3 workers and the kills
    assert set(snaps) == set(cheap)
    now = states(ec2, ids)
    assert {i for i, s in now.items() if s == "stopped"} == set(cheap)
    with closing(open_store(postgres_url)) as store:
        report = store.verify()
        ledger = store.ledger_rows()
        threads = store.threads(limit=1000)
    assert report.ok, report
    assert all(e.confirmed for e in ledger)
    assert Counter(e.step for e in ledger) == {"snapshot": len(cheap), "shutdown": len(cheap)}
    assert {t["status"] for t in threads} <= TERMINAL_STATUSES


@pytest.mark.slow
def test_two_workers_given_the_same_alert_at_once_one_acts_the_other_reports(
    tmp_path: Path, aws_env: str, ec2: Any, postgres_url: str
) -> None:
    ids = launch_many(ec2, 8, "t3.micro", {"env": "dev"})
    alerts, model, policy = _files(tmp_path, ids)
    env = {**cli_env(aws_env, tmp_path / "unused.db"), "COSTGUARD_DB": postgres_url}
    procs = [_worker(env, alerts, model, policy) for _ in range(2)]
    results = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [r[1][-1500:] for r in results]
    for out, _ in results:
        assert Counter(json.loads(x)["status"] for x in out.splitlines() if x.strip()) == {"executed": len(ids)}
    snaps = Counter({i: c for i, c in snapshot_counts(ec2).items() if i in set(ids)})
    assert snaps == dict.fromkeys(ids, 1)
    with closing(open_store(postgres_url)) as store:
        assert store.verify().ok


@pytest.mark.slow
@pytest.mark.parametrize("saver_kind", ["postgres"])
def test_more_alerts_in_flight_than_pooled_connections_all_finish(make_harness: Any, ec2: Any) -> None:
    """Each run holds a thread lease (a connection) for its whole length: with more runs in flight than the store
    has connections for statements, the leases come from a pool of their own, so no run starves the others."""
    from costguard.state import Alert
    from costguard.tools.store.postgres import POOL_MAX

    ids = launch_many(ec2, POOL_MAX + 8, "t3.micro", {"env": "dev"})
    h = make_harness(
        [
            {
                "action": "monitor",
                "confidence": 0.95,
                "reasoning": "keep",
                "parameters": {"instance_id": "{{instance_id}}", "target_instance_type": None},
                "requires_approval": False,
            }
        ],
        phase="autonomous",
    )
    h.model.cycle = True
    h.model.latency_s = 0.5  # every run is in flight at once
    alerts = [Alert(alert_id=f"many-{n}", instance_id=i) for n, i in enumerate(ids)]
    started = time.monotonic()
    outcomes = list(h.guard.process(alerts, concurrency=len(alerts)))
    assert [o.status for o in outcomes] == ["monitoring"] * len(alerts)
    assert time.monotonic() - started < 50  # the statements' pool waits 60 s before it gives up
