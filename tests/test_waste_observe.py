"""The demo's other kinds of waste (seeded into moto idempotently) and observe's scan for them."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import httpx
import pytest

from costguard.app.scan_waste import ADDRESS_KIND, DATABASE_KIND, GP2_KIND, UNATTACHED_KIND, scan_waste
from costguard.sandbox.fleet import seed_fleet
from costguard.sandbox.waste import FleetResource, seed_waste
from costguard.tools.cloud import Ec2Cloud
from costguard.tools.pricing import load_price_list
from tests.conftest import REGION


@pytest.fixture
def waste(aws_env: str, session: boto3.Session) -> list[FleetResource]:
    httpx.post(f"{aws_env}/moto-api/reset", timeout=10).raise_for_status()
    fleet = seed_fleet(session, endpoint_url=aws_env, region=REGION)
    return seed_waste(session, endpoint_url=aws_env, fleet=fleet, region=REGION)


def test_seeding_twice_finds_the_same_resources(
    waste: list[FleetResource], session: boto3.Session, aws_env: str
) -> None:
    fleet = seed_fleet(session, endpoint_url=aws_env, region=REGION)
    again = seed_waste(session, endpoint_url=aws_env, fleet=fleet, region=REGION)
    assert [(r.name, r.resource_id) for r in again] == [(r.name, r.resource_id) for r in waste]
    ec2 = session.client("ec2", endpoint_url=aws_env, region_name=REGION)
    assert len(ec2.describe_addresses()["Addresses"]) == 2


def test_observe_finds_each_kind_of_waste_and_not_the_associated_address(
    waste: list[FleetResource], cloud: Ec2Cloud
) -> None:
    by_name = {r.name: r for r in waste}
    now = datetime.now(UTC) + timedelta(hours=1)
    alerts = scan_waste(cloud, load_price_list(), region=REGION, now=now)
    found = {(a.resource_id, a.kind) for a in alerts}
    assert found == {
        (by_name["orphan-volume"].resource_id, UNATTACHED_KIND),
        (by_name["web-data-gp2"].resource_id, GP2_KIND),
        (by_name["idle-eip"].resource_id, ADDRESS_KIND),
        ("dev-reports-db", DATABASE_KIND),
        ("orders-db", DATABASE_KIND),  # idle too: the rails refuse it, observe only reports
    }
    costs = {a.resource_id: a.monthly_cost_usd for a in alerts}
    assert costs[by_name["orphan-volume"].resource_id] == 16.0  # 200 GiB gp3 x $0.08
    assert costs[by_name["idle-eip"].resource_id] == 3.65
    assert costs["dev-reports-db"] == round(0.072 * 730, 2)
    assert all(a.alert_id.endswith(f"{now:%Y%m%d}") for a in alerts)
    # 500 GiB: $10 of storage, less $5 for the 250 MiB/s gp2 gave it
    assert "as gp3, as fast, it would cost $5.00/month less" in next(a.summary for a in alerts if a.kind == GP2_KIND)
    # a root volume of 8 GiB gp2 (every moto instance has one) is not worth an alert
    assert sum(a.kind == GP2_KIND for a in alerts) == 1


def test_a_busy_database_is_not_idle(
    waste: list[FleetResource], cloud: Ec2Cloud, session: boto3.Session, aws_env: str
) -> None:
    cloudwatch = session.client("cloudwatch", endpoint_url=aws_env, region_name=REGION)
    cloudwatch.put_metric_data(
        Namespace="AWS/RDS",
        MetricData=[
            {
                "MetricName": "DatabaseConnections",
                "Dimensions": [{"Name": "DBInstanceIdentifier", "Value": "dev-reports-db"}],
                "Timestamp": datetime.now(UTC) - timedelta(minutes=30),
                "Value": 25,
            }
        ],
    )
    alerts = scan_waste(cloud, load_price_list(), region=REGION, now=datetime.now(UTC))
    assert "dev-reports-db" not in {a.resource_id for a in alerts}


def test_the_observe_command_writes_every_kind_and_parses_back(
    waste: list[FleetResource], aws_env: str, tmp_path: Path
) -> None:
    from costguard.app.batch import parse_alert_line
    from tests.conftest import cli_env

    out = tmp_path / "alerts.jsonl"
    proc = subprocess.run(
        [sys.executable, "-m", "costguard.run", "observe", "--out", str(out), "--json"],
        env=cli_env(aws_env, tmp_path / "cg.db"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    written = [parse_alert_line(line, n) for n, line in enumerate(out.read_text().splitlines(), 1)]
    printed = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    assert [a.alert_id for a in written] == [p["alert_id"] for p in printed]
    kinds = {a.resource_type for a in written}
    assert kinds == {"instance", "volume", "address", "db_instance"}
    assert {r.resource_id for r in waste if r.name != "web-eip"} <= {a.resource_id for a in written}


def test_a_kind_that_cannot_be_read_is_named_and_the_others_are_still_scanned(
    waste: list[FleetResource], aws_env: str, tmp_path: Path
) -> None:
    """No rds:DescribeDBInstances (a role without RDS read): observe writes what it found, names what it could not
    read, and exits 3; before, the whole scan failed."""
    from costguard.app.batch import parse_alert_line
    from tests.conftest import cli_env
    from tests.faultproxy import FaultPlan, FaultProxy

    out = tmp_path / "alerts.jsonl"
    plan = FaultPlan(deny=frozenset({"DescribeDBInstances"}))
    with FaultProxy(aws_env, plan) as proxy:
        proc = subprocess.run(
            [sys.executable, "-m", "costguard.run", "observe", "--out", str(out), "--json"],
            env=cli_env(proxy.url, tmp_path / "cg.db"),
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert proc.returncode == 3, proc.stderr[-2000:]
    assert plan.injected["DescribeDBInstances:UnauthorizedOperation"] >= 1
    assert "databases in us-east-1 could not be read" in proc.stderr
    written = [parse_alert_line(line, n) for n, line in enumerate(out.read_text().splitlines(), 1)]
    assert {a.resource_type for a in written} == {"instance", "volume", "address"}
    assert len(proc.stdout.splitlines()) == len(written)


def test_the_emulator_command_seeds_every_kind_then_stops_on_ctrl_c() -> None:
    import signal
    import time

    from costguard.tools.net import free_port, port_is_open

    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "costguard.run", "emulator", "--port", str(port), "--no-routes"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while "export AWS_ENDPOINT_URL" not in _peek(proc):
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            assert time.monotonic() < deadline, "the emulator never said it was ready"
            time.sleep(0.5)
        url = f"http://127.0.0.1:{port}"
        session = boto3.Session(aws_access_key_id="x", aws_secret_access_key="x", region_name=REGION)
        ec2 = session.client("ec2", endpoint_url=url)
        rds = session.client("rds", endpoint_url=url)
        assert len(ec2.describe_volumes(Filters=[{"Name": "tag-key", "Values": ["costguard-demo"]}])["Volumes"]) == 2
        assert len(ec2.describe_addresses()["Addresses"]) == 2
        assert {d["DBInstanceIdentifier"] for d in rds.describe_db_instances()["DBInstances"]} == {
            "dev-reports-db",
            "orders-db",
        }
    finally:
        proc.send_signal(signal.SIGINT)
        stdout, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0
    assert "orphan-volume" in stdout
    assert not port_is_open("127.0.0.1", port)


_SEEN: dict[int, str] = {}


def _peek(proc: subprocess.Popen[str]) -> str:
    """What the process wrote on stderr so far (a line at a time, without blocking for long)."""
    import select

    assert proc.stderr is not None
    while select.select([proc.stderr], [], [], 0.1)[0]:
        line = proc.stderr.readline()
        if not line:
            break
        _SEEN[proc.pid] = _SEEN.get(proc.pid, "") + line
    return _SEEN.get(proc.pid, "")
