"""An emulated account's alert routes: one SQS queue fed by an SNS topic and an EventBridge rule (moto)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import httpx

REGION = "us-east-1"  # as tests/conftest.py

FIXTURES = Path(__file__).parent / "fixtures" / "aws"


@dataclass
class Routes:
    queue_url: str
    topic_arn: str
    sns: Any
    sqs: Any
    events: Any


def client(name: str, endpoint: str) -> Any:
    session = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION)
    return session.client(name, endpoint_url=endpoint)  # type: ignore[call-overload]


def make_routes(aws_env: str) -> Routes:
    """A fresh account: one queue, fed by an SNS topic (the envelope kept) and by an EventBridge rule."""
    httpx.post(f"{aws_env}/moto-api/reset", timeout=10)  # fan-out scans the whole region: start empty
    sqs, sns, events = client("sqs", aws_env), client("sns", aws_env), client("events", aws_env)
    queue_url = sqs.create_queue(QueueName="costguard-alerts")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    topic_arn = sns.create_topic(Name="cost-alerts")["TopicArn"]
    sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn)
    events.put_rule(Name="cost-events", EventPattern=json.dumps({"source": ["aws.ce", "aws.cloudwatch"]}))
    events.put_targets(Rule="cost-events", Targets=[{"Id": "queue", "Arn": queue_arn}])
    return Routes(queue_url, topic_arn, sns, sqs, events)


def alarm_for(instance_id: str, *, state: str = "ALARM", at: str = "2026-12-01T10:00:00.000+0000") -> str:
    """AWS's CloudWatch alarm SNS message for one instance (the documented example, retargeted)."""
    body = json.loads((FIXTURES / "cloudwatch-alarm.raw.json").read_text())
    body["Trigger"]["Dimensions"] = [{"value": instance_id, "name": "InstanceId"}]
    body["NewStateValue"], body["OldStateValue"] = state, "OK" if state == "ALARM" else "ALARM"
    body["StateChangeTime"] = at
    body["AlarmArn"] = f"arn:aws:cloudwatch:{REGION}:123456789012:alarm:idle-{instance_id}"
    return json.dumps(body)


def queue_is_empty(routes: Routes) -> bool:
    attrs = routes.sqs.get_queue_attributes(
        QueueUrl=routes.queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return bool(attrs["ApproximateNumberOfMessages"] == "0" == attrs["ApproximateNumberOfMessagesNotVisible"])
