"""Autonomy earned by evidence, then a grace period: a class of plans earns the right to act alone from a series of
reviews, and its next plan waits out a grace period, its owner told, before it acts.

    python examples/earned_autonomy.py                      # 20 reviews, a 5-second grace period
    python examples/earned_autonomy.py --reviews 30 --grace-seconds 10

It runs offline: the cloud is an EC2 emulator (the moto server at AWS_ENDPOINT_URL, or one the example starts for
itself), the model a scripted one that proposes stopping each idle instance. Never point AWS_ENDPOINT_URL at a
real account: the example launches instances and stops them.

1. The policy: the autonomous phase, with `[autonomy] required = true`: a class (kind, action, savings band) acts
   without a person only after ≥ N agreeing reviews and a 95 % lower bound on agreement ≥ 0.8; and a grace period.
2. N alerts about idle t3.small instances: each goes to a person (`autonomy_not_earned`), who approves it.
3. The class has earned autonomy. Two more alerts: both are scheduled, not executed; the resources are tagged
   `costguard:planned`, the owner (their `owner` tag) is told through the webhook (here: a JSONL file), once.
4. The owner of the second adds the opt-out tag. At the due time the first acts, the second is cancelled.
5. The audit records of both, and the audit chain's verification.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import tempfile
import time
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import structlog

from costguard.app.runner import CostGuard
from costguard.app.wiring import build_costguard, build_deps
from costguard.policy import AutonomyPolicy, Policy, standing
from costguard.sandbox.emulator import MotoServer
from costguard.sandbox.scripted_model import ScriptedChatModel
from costguard.settings import Settings
from costguard.state import Alert, ReviewResponse
from costguard.tools.cloud import Ec2Cloud
from costguard.tools.notify import WebhookNotifier
from costguard.tools.store.agreements import votes_by_class

REVIEWER = "alice@example.com"
OWNER = "bob@example.com"
OPT_OUT = "costguard:opt-out"


def launch_idle(session: boto3.Session, endpoint: str, count: int) -> list[str]:
    """`count` t3.small instances owned by OWNER, with two weeks of ~2 % CPU in CloudWatch."""
    ec2 = session.client("ec2", endpoint_url=endpoint)
    image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    reply = ec2.run_instances(
        ImageId=image,
        MinCount=count,
        MaxCount=count,
        InstanceType="t3.small",
        TagSpecifications=[
            {"ResourceType": "instance", "Tags": [{"Key": "env", "Value": "dev"}, {"Key": "owner", "Value": OWNER}]}
        ],
    )
    ids = [i["InstanceId"] for i in reply["Instances"]]
    cloudwatch = session.client("cloudwatch", endpoint_url=endpoint)
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    for iid in ids:
        cloudwatch.put_metric_data(
            Namespace="AWS/EC2",
            MetricData=[
                {
                    "MetricName": "CPUUtilization",
                    "Dimensions": [{"Name": "InstanceId", "Value": iid}],
                    "Timestamp": hour - timedelta(hours=h),
                    "Value": 2.0,
                }
                for h in range(0, 24, 6)
            ],
        )
    return ids


def shutdown_answer() -> dict[str, Any]:
    return {
        "action": "shutdown",
        "confidence": 0.9,
        "reasoning": "idle for two weeks: CPU about 2 %",
        "parameters": {"instance_id": "{{instance_id}}"},
        "requires_approval": False,
    }


def show_standing(guard: CostGuard) -> None:
    rule = guard.deps.policy.autonomy
    for plan_class, votes in votes_by_class(guard.deps.store).items():
        s = standing(plan_class, votes, rule)
        more = f" ({s.more_needed} more agreeing reviews needed)" if s.more_needed else ""
        print(
            f"autonomy: {plan_class}: {s.reviews} reviews, {s.agreement_rate:.0%} agreeing, "
            f"95 % lower bound {s.lower_bound:.3f} -> {s.standing}{more}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reviews", type=int, default=20, help="agreeing reviews a class needs (default 20)")
    parser.add_argument("--grace-seconds", type=float, default=5.0, help="the grace period (default 5 s)")
    parser.add_argument("--db", type=Path, help="the SQLite file (default: a temporary one)")
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))  # the story, not logs

    with ExitStack() as stack:
        endpoint = os.environ.get("AWS_ENDPOINT_URL") or stack.enter_context(MotoServer()).url
        region = os.environ.get("AWS_DEFAULT_REGION", "us-east-1")
        session = boto3.Session(  # any credentials do for the emulator
            aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID", "testing"),
            aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY", "testing"),
            region_name=region,
        )
        ids = launch_idle(session, endpoint, args.reviews + 2)
        print(f"emulator: {endpoint}; {len(ids)} idle t3.small instances owned by {OWNER}")

        policy = Policy(
            phase="autonomous",
            approvers=(REVIEWER,),
            autonomy=AutonomyPolicy(
                required=True,
                min_reviews=args.reviews,
                min_agreement_lower_bound=0.8,
                grace_period_hours=args.grace_seconds / 3600,
                opt_out_tag=OPT_OUT,
            ),
        )
        rule = policy.autonomy
        print(
            f"policy: autonomous phase; autonomy required (>= {rule.min_reviews} agreeing reviews, 95 % lower bound "
            f">= {rule.min_agreement_lower_bound}); grace period {args.grace_seconds:g} s"
        )
        db = args.db or Path(stack.enter_context(tempfile.TemporaryDirectory())) / "costguard.db"
        notices = db.with_name(db.stem + "-notices.jsonl")  # the webhook, as a file
        settings = Settings(COSTGUARD_DB=db)
        deps = build_deps(
            settings,
            policy,
            model=ScriptedChatModel(script=[shutdown_answer()] * (args.reviews + 2)),
            cloud=Ec2Cloud(session, default_region=region, endpoint_url=endpoint, poll_interval_s=0.05),
            notifier=WebhookNotifier(None, notices),
        )
        guard = build_costguard(settings, policy, deps=deps)

        # 2. a person reviews each plan of the class until it has earned autonomy
        for n, iid in enumerate(ids[: args.reviews], start=1):
            waiting = guard.process_alert(Alert(alert_id=f"idle-{n}", instance_id=iid, monthly_cost_usd=15))
            plan = guard.snapshot(waiting.thread_id).values["plan"]
            answer = ReviewResponse(decision="approve", reviewer=REVIEWER, digest=plan.digest)
            done = guard.review(waiting.thread_id, answer)
            if n in (1, args.reviews):
                print(
                    f"alert idle-{n}: {waiting.status} ({', '.join(waiting.rules)}); {REVIEWER} approves: {done.status}"
                )
            elif n == 2:
                print("...")
        show_standing(guard)

        # 3. the class acts alone now, after a grace period
        first, second = ids[args.reviews], ids[args.reviews + 1]
        scheduled = [
            guard.process_alert(Alert(alert_id=f"idle-{args.reviews + k}", instance_id=iid, monthly_cost_usd=15))
            for k, iid in ((1, first), (2, second))
        ]
        ec2 = session.client("ec2", endpoint_url=endpoint)
        for outcome in scheduled:
            tags = ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": [outcome.resource_id or ""]}])["Tags"]
            mark = next(t["Value"] for t in tags if t["Key"] == "costguard:planned")
            print(f"alert {outcome.alert_id}: {outcome.status}: {outcome.reason}; tag costguard:planned={mark}")
        for notice in (json.loads(line) for line in notices.read_text().splitlines()):
            if notice["kind"] == "owner_notice":
                print(f"webhook -> {notice['text']}")

        # 4. the second one's owner says no; the watcher (here: run_due) acts when the grace period is over
        ec2.create_tags(Resources=[second], Tags=[{"Key": OPT_OUT, "Value": "needed for the demo on Friday"}])
        print(f"{OWNER} tags {second} {OPT_OUT}")
        wait = max(o.due_at for o in scheduled if o.due_at) - datetime.now(UTC)
        print(f"waiting {max(wait.total_seconds(), 0):.1f} s for the grace period to end ...")
        time.sleep(max(wait.total_seconds(), 0) + 0.2)
        for outcome in guard.run_due():
            print(f"due: {outcome.alert_id}: {outcome.status}: {outcome.reason}")
        states = {
            i["InstanceId"]: i["State"]["Name"]
            for r in ec2.describe_instances(InstanceIds=[first, second])["Reservations"]
            for i in r["Instances"]
        }
        print(f"instances now: {first} {states[first]}, {second} {states[second]}")

        # 5. the proof
        for outcome in scheduled:
            print(f"audit of {outcome.thread_id}:")
            for record in guard.deps.store.audit_rows(outcome.thread_id):
                detail = record.detail if len(record.detail) <= 100 else record.detail[:97] + "..."
                print(f"  {record.at[11:19]} {record.actor:<20} {record.event:<18} {record.result:<10} {detail}")
        report = guard.deps.store.verify()
        print(f"audit chain verifies: {report.ok} ({report.records} records)")


if __name__ == "__main__":
    main()
