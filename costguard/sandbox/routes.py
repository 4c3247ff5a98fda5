"""The alert routes of the demo account: an SQS queue fed by an SNS topic and an EventBridge rule (in moto).

In a real account: subscribe the queue to the SNS topics your Cost Anomaly Detection subscription, AWS Budgets
and CloudWatch alarms publish to, and/or add it as the target of an EventBridge rule matching `aws.ce` and
`aws.cloudwatch` events (see the README). Idempotent: creating what exists returns it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import boto3

QUEUE_NAME = "costguard-alerts"
TOPIC_NAME = "cost-alerts"
RULE_NAME = "costguard-cost-events"
EVENT_PATTERN = {
    "source": ["aws.ce", "aws.cloudwatch"],
    "detail-type": ["Anomaly Detected", "CloudWatch Alarm State Change"],
}


@dataclass(frozen=True)
class AlertRoutes:
    queue_url: str
    queue_arn: str
    topic_arn: str
    rule_name: str


def create_alert_routes(session: boto3.Session, *, endpoint_url: str | None = None) -> AlertRoutes:
    """The queue, the topic subscribed to it (SNS envelope kept) and the EventBridge rule targeting it."""
    kwargs: dict[str, Any] = {"endpoint_url": endpoint_url} if endpoint_url else {}
    sqs: Any = session.client("sqs", **kwargs)
    sns: Any = session.client("sns", **kwargs)
    events: Any = session.client("events", **kwargs)
    queue_url = sqs.create_queue(QueueName=QUEUE_NAME)["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    topic_arn = sns.create_topic(Name=TOPIC_NAME)["TopicArn"]
    subscribed = sns.list_subscriptions_by_topic(TopicArn=topic_arn).get("Subscriptions", [])
    if not any(s.get("Endpoint") == queue_arn for s in subscribed):
        sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn)
    events.put_rule(Name=RULE_NAME, EventPattern=json.dumps(EVENT_PATTERN))
    events.put_targets(Rule=RULE_NAME, Targets=[{"Id": "costguard", "Arn": queue_arn}])
    return AlertRoutes(queue_url, queue_arn, topic_arn, RULE_NAME)
