"""Publish AWS-shaped example alerts into the emulated account, as AWS itself would deliver them.

    costguard emulator --port 5077            # another terminal: moto, the demo fleet, the alert routes
    python examples/publish_alerts.py --endpoint http://127.0.0.1:5077

A CloudWatch alarm on `idle-dev-small` (SNS), a Cost Anomaly Detection event naming m5.4xlarge usage
(EventBridge), and an AWS Budgets notification (SNS, plain text), from examples/messages/; with `--each-resource`,
also one costguard alert (JSON, through SNS) for each resource of the demo fleet (instances, volumes, addresses,
databases). Never point it at a real account: it publishes to the topic and event bus it finds there.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import boto3

from costguard.sandbox.routes import TOPIC_NAME, create_alert_routes

MESSAGES = Path(__file__).parent / "messages"


def fleet_ids(ec2: Any) -> dict[str, str]:
    """The demo fleet's instance ids by Name tag."""
    found: dict[str, str] = {}
    for page in ec2.get_paginator("describe_instances").paginate():
        for reservation in page["Reservations"]:
            for instance in reservation["Instances"]:
                name = {t["Key"]: t["Value"] for t in instance.get("Tags", [])}.get("Name")
                if name:
                    found[name] = instance["InstanceId"]
    return found


def demo_resources(session: boto3.Session, endpoint: str) -> dict[str, dict[str, str]]:
    """Every demo resource (tagged costguard-demo) by name: its resource_id and resource_type."""
    ec2: Any = session.client("ec2", endpoint_url=endpoint)
    rds: Any = session.client("rds", endpoint_url=endpoint)
    found = {name: {"resource_id": iid} for name, iid in fleet_ids(ec2).items()}
    for volume in ec2.describe_volumes(Filters=[{"Name": "tag-key", "Values": ["costguard-demo"]}])["Volumes"]:
        name = {t["Key"]: t["Value"] for t in volume.get("Tags", [])}["costguard-demo"]
        found[name] = {"resource_id": volume["VolumeId"]}
    for address in ec2.describe_addresses()["Addresses"]:
        name = {t["Key"]: t["Value"] for t in address.get("Tags", [])}.get("costguard-demo")
        if name:
            found[name] = {"resource_id": address["AllocationId"]}
    for db in rds.describe_db_instances()["DBInstances"]:
        found[db["DBInstanceIdentifier"]] = {"resource_id": db["DBInstanceIdentifier"], "resource_type": "db_instance"}
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--endpoint", required=True, help="the emulator, e.g. http://127.0.0.1:5077")
    parser.add_argument("--each-resource", action="store_true", help="also one alert for each demo resource")
    args = parser.parse_args()
    session = boto3.Session(aws_access_key_id="demo", aws_secret_access_key="demo", region_name="us-east-1")  # noqa: S106
    routes = create_alert_routes(session, endpoint_url=args.endpoint)
    sns: Any = session.client("sns", endpoint_url=args.endpoint)
    events: Any = session.client("events", endpoint_url=args.endpoint)
    ids = fleet_ids(session.client("ec2", endpoint_url=args.endpoint))

    alarm = (MESSAGES / "cloudwatch-alarm.json").read_text().replace("{{idle-dev-small}}", ids["idle-dev-small"])
    sns.publish(TopicArn=routes.topic_arn, Message=json.dumps(json.loads(alarm)), Subject="ALARM: idle-dev-small")
    detail = (MESSAGES / "cost-anomaly.detail.json").read_text()
    events.put_events(Entries=[{"Source": "aws.ce", "DetailType": "Anomaly Detected", "Detail": detail}])
    budget = (MESSAGES / "budget.txt").read_text()
    sns.publish(TopicArn=routes.topic_arn, Message=budget, Subject="AWS Budgets: monthly-ec2 has exceeded")
    what = "an alarm, an anomaly and a budget notification"
    if args.each_resource:
        resources = demo_resources(session, args.endpoint)
        for name, resource in sorted(resources.items()):
            alert = {"alert_id": f"team-{name}", **resource, "kind": "demo", "summary": f"costguard demo: {name}"}
            sns.publish(TopicArn=routes.topic_arn, Message=json.dumps(alert), Subject=f"costguard: {name}")
        what += f", and {len(resources)} costguard alerts (one a resource)"
    print(f"published {what}; queue {routes.queue_url} (topic {TOPIC_NAME})")


if __name__ == "__main__":
    main()
