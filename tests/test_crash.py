"""Real processes, real kills: a 150-alert batch survives repeated SIGKILLs with no effect repeated.

The CLI runs in a child process against moto. It is killed with SIGKILL at random moments by
this test (a timer), and from inside at named points of `execute` (between a ledger intent and
the cloud call, and between the cloud call and its confirmation). After every kill the batch
is resumed (`process` again, or `resume --all`) until a run completes. Then: every thread is
terminal, each plan acted at most once (one snapshot per instance, one confirmed ledger entry
per step), every confirmed effect has its audit record, and the audit chain verifies.
"""

from __future__ import annotations

import json
import random
import signal
import sqlite3
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from costguard.state import TERMINAL_STATUSES
from tests.conftest import APPROVER, cli_env, client_like, create_database, put_cpu

N_ALERTS = 150
MIN_KILLS = 15
FIRST_KILLS = ("after_intent=1", "after_effect=1")  # the first two runs die at the first execute


def launch_many(ec2: Any, count: int, instance_type: str, tags: dict[str, str]) -> list[str]:
    image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    reply = ec2.run_instances(
        ImageId=image,
        MinCount=count,
        MaxCount=count,
        InstanceType=instance_type,
        TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}],
    )
    ids = [i["InstanceId"] for i in reply["Instances"]]
    put_cpu(ec2, ids, 1.5)
    return ids


def snapshot_counts(ec2: Any) -> Counter[str]:
    reply = ec2.describe_snapshots(
        OwnerIds=["self"], Filters=[{"Name": "tag-key", "Values": ["costguard:instance-id"]}]
    )
    counts: Counter[str] = Counter()
    for snap in reply["Snapshots"]:
        tags = {t["Key"]: t["Value"] for t in snap.get("Tags", [])}
        counts[tags["costguard:instance-id"]] += 1
    return counts


def states(ec2: Any, ids: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for page in ec2.get_paginator("describe_instances").paginate(InstanceIds=ids):
        for reservation in page["Reservations"]:
            for inst in reservation["Instances"]:
                out[inst["InstanceId"]] = inst["State"]["Name"]
    return out


def storm_until_done(
    alerts: Path, env: dict[str, str], policy: Path, model: Path, rng: random.Random, n_alerts: int
) -> tuple[list[dict[str, Any]], int, int, int]:
    """Run the batch in child processes killed at random (a timer) and inside execute (crash points), resuming
    (`process` again or `resume --all`) until a run completes after MIN_KILLS kills; its outcomes and the kills."""
    kills = internal_kills = timer_kills = 0
    final: list[dict[str, Any]] = []
    for attempt in range(200):
        storm = kills < MIN_KILLS
        run_env = dict(env)
        if attempt < len(FIRST_KILLS):  # both kinds of kill inside execute, certainly, then at random
            run_env["COSTGUARD_CRASHPOINTS"] = FIRST_KILLS[attempt]
        elif storm:
            run_env["COSTGUARD_CRASHPOINTS"] = "after_intent=0.02,after_effect=0.02"
        command = "process" if attempt % 3 != 2 else "resume"
        args = [str(alerts)] if command == "process" else ["--all"]
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "costguard.run",
                command,
                *args,
                "--json",
                "--policy",
                str(policy),
                "--scripted-model",
                str(model),
            ],
            env=run_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            timer = storm and attempt >= len(FIRST_KILLS)
            stdout, stderr = proc.communicate(timeout=rng.uniform(0.5, 6.0) if timer else 600)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            stdout, _ = proc.communicate()
            kills += 1
            timer_kills += 1
            continue
        if proc.returncode == -signal.SIGKILL:
            kills += 1
            internal_kills += 1
            continue
        assert proc.returncode in (0, 3), f"{command} exited {proc.returncode}: {stderr[-2000:]}"
        if command == "process" and not storm:
            final = [json.loads(line) for line in stdout.splitlines() if line.strip()]
            break
    assert kills >= MIN_KILLS
    assert internal_kills >= len(FIRST_KILLS), "a kill inside execute did not land"
    assert len(final) == n_alerts
    return final, kills, internal_kills, timer_kills


@pytest.mark.slow
@pytest.mark.parametrize("durability", ["exit", "sync"])
def test_sigkill_storm_never_repeats_an_effect(tmp_path: Path, aws_env: str, ec2: Any, durability: str) -> None:
    """Both checkpoint modes: "exit" (the default: durable at pauses, before execute, at the end) and "sync"."""
    rng = random.Random(20261125)
    cheap = launch_many(ec2, 120, "t3.micro", {"env": "dev"})
    critical = launch_many(ec2, 18, "t3.micro", {"Criticality": "Critical"})
    pricey = launch_many(ec2, 12, "m5.xlarge", {"env": "dev"})
    ids = cheap + critical + pricey
    rng.shuffle(ids)
    assert len(ids) == N_ALERTS
    alerts = tmp_path / "alerts.jsonl"
    alerts.write_text(
        "".join(json.dumps({"alert_id": f"crash-{n}", "instance_id": i}) + "\n" for n, i in enumerate(ids))
    )
    model = tmp_path / "model.json"
    model.write_text(
        json.dumps(
            [
                {
                    "action": "shutdown",
                    "confidence": 0.95,
                    "reasoning": "idle",
                    "parameters": {"instance_id": "{{instance_id}}", "target_instance_type": None},
                    "requires_approval": False,
                }
            ]
        )
    )
    policy = tmp_path / "policy.toml"
    policy.write_text(f'phase = "autonomous"\napprovers = ["{APPROVER}"]\n')
    db = tmp_path / "cg.db"
    env = cli_env(aws_env, db)
    env["COSTGUARD_DURABILITY"] = durability

    final, kills, internal_kills, timer_kills = storm_until_done(alerts, env, policy, model, rng, N_ALERTS)
    statuses = Counter(o["status"] for o in final)
    assert set(statuses) <= TERMINAL_STATUSES | {"awaiting_review"}
    by_instance = {o["alert_id"]: o for o in final}
    executed = {ids[int(a.split("-")[1])] for a, o in by_instance.items() if o["status"] == "executed"}
    assert statuses["executed"] == len(cheap)
    assert statuses["rejected"] == len(critical)
    assert statuses["awaiting_review"] == len(pricey)

    # at most once: one snapshot per acted instance, none for the others
    mine = set(ids)  # the emulator is shared with other tests: look at this test's instances only
    snaps = Counter({i: c for i, c in snapshot_counts(ec2).items() if i in mine})
    duplicates = {i: c for i, c in snaps.items() if c > 1}
    assert duplicates == {}
    assert set(snaps) == executed
    now = states(ec2, ids)
    assert {i for i, s in now.items() if s == "stopped"} == executed
    assert all(now[i] == "running" for i in critical + pricey)

    with sqlite3.connect(db) as conn:
        ledger = conn.execute("SELECT thread_id, step, confirmed_at FROM cg_ledger").fetchall()
        audit = conn.execute("SELECT thread_id, event FROM cg_audit").fetchall()
        running = conn.execute("SELECT COUNT(*) FROM cg_threads WHERE status = 'running'").fetchone()[0]
    assert running == 0
    assert all(confirmed for _, _, confirmed in ledger)
    assert Counter(step for _, step, _ in ledger) == {"snapshot": len(cheap), "shutdown": len(cheap)}
    audited = Counter(audit)
    for thread_id, step, _ in ledger:
        done_event = "snapshot_created" if step == "snapshot" else "shutdown"
        assert audited[(thread_id, f"{step}_intent")] == 1
        assert audited[(thread_id, done_event)] == 1

    verify = subprocess.run(
        [sys.executable, "-m", "costguard.run", "audit", "verify", "--json"], env=env, capture_output=True, text=True
    )
    report = json.loads(verify.stdout)
    assert report["ok"] is True
    assert report["records"] == len(audit)
    (tmp_path / "crash-stats.json").write_text(
        json.dumps(
            {
                "kills": kills,
                "internal_kills": internal_kills,
                "timer_kills": timer_kills,
                "duplicates": len(duplicates),
                "audit_records": len(audit),
                "statuses": statuses,
            }
        )
    )


@pytest.mark.slow
def test_sigkill_storm_over_a_mixed_batch_of_kinds_never_repeats_an_effect(
    tmp_path: Path, aws_env: str, ec2: Any
) -> None:
    """Instances, unattached volumes, free and associated addresses, idle databases: killed and resumed; each effect
    once (one snapshot, one delete, one release, one stop), the associated addresses never released."""
    from datetime import UTC, datetime

    rng = random.Random(20261204)
    stamp = f"{datetime.now(UTC):%H%M%S}"
    instances = launch_many(ec2, 20, "t3.micro", {"env": "dev"})
    volumes = [
        ec2.create_volume(AvailabilityZone="us-east-1a", Size=10, VolumeType="gp3")["VolumeId"] for _ in range(15)
    ]
    free = [ec2.allocate_address(Domain="vpc")["AllocationId"] for _ in range(10)]
    held = [ec2.allocate_address(Domain="vpc")["AllocationId"] for _ in range(5)]
    for alloc, iid in zip(held, instances, strict=False):
        ec2.associate_address(AllocationId=alloc, InstanceId=iid)
    now = datetime.now(UTC)
    databases = [create_database(ec2, f"crash-{stamp}-{n}", {"env": "dev"}, stamp=now) for n in range(5)]
    resources = instances + volumes + free + held + databases
    order = list(range(len(resources)))
    rng.shuffle(order)
    alerts = tmp_path / "alerts.jsonl"
    lines = []
    for n in order:
        rid = resources[n]
        kind = {"resource_type": "db_instance"} if rid in databases else {}
        lines.append(json.dumps({"alert_id": f"mixed-{n}", "resource_id": rid, **kind}) + "\n")
    alerts.write_text("".join(lines))
    model = tmp_path / "model.json"
    model.write_text(
        json.dumps(
            [
                {
                    "action": "{{action}}",
                    "confidence": 0.95,
                    "reasoning": "idle",
                    "parameters": "{{parameters}}",
                    "requires_approval": False,
                }
            ]
        )
    )
    policy = tmp_path / "policy.toml"
    policy.write_text(
        f'phase = "autonomous"\napprovers = ["{APPROVER}"]\n'
        "irreversible_autonomous_max_usd_per_month = 1000.0\nunattached_volume_min_days = 0.0\n"
    )
    db = tmp_path / "cg.db"
    env = cli_env(aws_env, db)

    final, kills, internal_kills, _ = storm_until_done(alerts, env, policy, model, rng, len(resources))
    status = {resources[int(o["alert_id"].split("-")[1])]: o for o in final}
    assert {r for r, o in status.items() if o["status"] == "executed"} == set(instances + volumes + free + databases)
    assert {o["status"] for r, o in status.items() if r in held} == {"rejected"}
    assert all("address_associated" in status[r]["rules"] for r in held)

    # each effect once: one snapshot per instance and volume, the volumes gone, the free addresses released,
    # the held ones kept, the databases stopped with one manual snapshot each
    snaps = snapshot_counts(ec2)
    assert {r: snaps[r] for r in instances + volumes} == dict.fromkeys(instances + volumes, 1)
    assert ec2.describe_volumes(Filters=[{"Name": "volume-id", "Values": volumes}])["Volumes"] == []
    left = {a["AllocationId"] for a in ec2.describe_addresses()["Addresses"]}
    assert left.isdisjoint(free)
    assert set(held) <= left
    rds = client_like(ec2, "rds")
    for name in databases:
        assert rds.describe_db_instances(DBInstanceIdentifier=name)["DBInstances"][0]["DBInstanceStatus"] == "stopped"
        assert len(rds.describe_db_snapshots(DBInstanceIdentifier=name, SnapshotType="manual")["DBSnapshots"]) == 1

    with sqlite3.connect(db) as conn:
        ledger = conn.execute("SELECT step, confirmed_at FROM cg_ledger").fetchall()
    assert all(confirmed for _, confirmed in ledger)
    assert Counter(step for step, _ in ledger) == {
        "snapshot": len(instances) + len(volumes) + len(databases),
        "shutdown": len(instances) + len(databases),
        "delete": len(volumes),
        "release": len(free),
    }
    verify = subprocess.run(
        [sys.executable, "-m", "costguard.run", "audit", "verify", "--json"], env=env, capture_output=True, text=True
    )
    assert json.loads(verify.stdout)["ok"] is True
    assert kills >= MIN_KILLS
    assert internal_kills >= len(FIRST_KILLS)
