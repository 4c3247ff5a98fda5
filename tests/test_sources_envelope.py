"""Envelopes: SNS notifications, raw delivery and EventBridge events are told apart, never guessed at.

Formats: https://docs.aws.amazon.com/sns/latest/dg/http-notification-json.html (SNS to SQS),
https://docs.aws.amazon.com/sns/latest/dg/sns-large-payload-raw-message-delivery.html (raw delivery),
https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-events-structure.html (EventBridge).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from costguard.app.sources import (
    Ignored,
    InvalidMessage,
    ScopeAlert,
    SnsNotification,
    parse_message,
    source_id_of,
    unwrap,
)
from costguard.app.sources.envelope import MAX_BODY_CHARS
from costguard.state import Alert

FIXTURES = Path(__file__).parent / "fixtures" / "aws"


def body(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


def sns_wrap(message: str, message_id: str = "11111111-2222-5333-8444-555555555555", **extra: Any) -> str:
    envelope = {
        "Type": "Notification",
        "MessageId": message_id,
        "TopicArn": "arn:aws:sns:us-east-1:123456789012:costguard",
        "Message": message,
        "Timestamp": "2021-05-26T04:12:09.757Z",
        **extra,
    }
    return json.dumps(envelope)


@pytest.mark.parametrize(
    ("name", "via_sns", "via_eventbridge", "payload_type"),
    [
        ("cost-anomaly.sns.json", True, False, dict),
        ("cost-anomaly.raw.json", False, False, dict),
        ("cost-anomaly.eventbridge.json", False, True, dict),
        ("cloudwatch-alarm.sns.json", True, False, dict),
        ("cloudwatch-alarm.raw.json", False, False, dict),
        ("cloudwatch-alarm.eventbridge.json", False, True, dict),
        ("budgets.sns.json", True, False, str),
        ("budgets.raw.txt", False, False, str),
        ("costguard-alert.json", False, False, dict),
        ("costguard-alert.sns.json", True, False, dict),
    ],
)
def test_each_route_is_recognised(name: str, via_sns: bool, via_eventbridge: bool, payload_type: type) -> None:
    opened = unwrap(body(name))
    assert (opened.sns is not None, opened.event is not None, type(opened.payload)) == (
        via_sns,
        via_eventbridge,
        payload_type,
    )


def test_the_sns_envelope_keeps_its_metadata() -> None:
    opened = unwrap(body("budgets.sns.json"))
    assert opened.sns == SnsNotification.model_validate(
        {
            "Type": "Notification",
            "MessageId": "0afa48ef-db9f-5b07-9359-149237adeae5",
            "TopicArn": "arn:aws:sns:us-east-1:123456789012:budget-alerts",
            "Subject": "AWS Budgets: monthly-ec2 has exceeded your alert threshold",
            "Message": body("budgets.raw.txt"),
            "Timestamp": "2021-05-26T01:01:38.638Z",
        }
    )
    assert opened.sns is not None
    assert opened.sns.timestamp == datetime(2021, 5, 26, 1, 1, 38, 638000, tzinfo=UTC)
    assert opened.payload == body("budgets.raw.txt")


def test_an_eventbridge_event_inside_sns_is_opened_twice() -> None:
    opened = unwrap(sns_wrap(body("cost-anomaly.eventbridge.json")))
    assert opened.sns is not None
    assert opened.event is not None
    assert (opened.event.source, opened.event.detail_type, opened.event.account) == (
        "aws.ce",
        "Anomaly Detected",
        "123456789012",
    )
    assert opened.payload == json.loads(body("cost-anomaly.eventbridge.json"))["detail"]


@pytest.mark.parametrize("kind", ["SubscriptionConfirmation", "UnsubscribeConfirmation"])
def test_sns_confirmations_are_ignored_with_a_reason(kind: str) -> None:
    message = sns_wrap("You have chosen to subscribe to the topic", message_id="c0ffee00-0000-5000-8000-000000000001")
    confirmation = json.loads(message) | {"Type": kind, "SubscribeURL": "https://sns.example/confirm", "Token": "t"}
    assert parse_message(json.dumps(confirmation)) == Ignored(
        reason=f"SNS {kind} message, not a notification", source_id="sns:sns:c0ffee00-0000-5000-8000-000000000001"
    )


def test_costguard_alerts_pass_through_directly_and_via_sns() -> None:
    expected = Alert(
        alert_id="cg-7",
        instance_id="i-0123456789abcdef0",
        region="us-east-1",
        monthly_cost_usd=61.32,
        kind="idle",
        summary="CPU below 2% for 14 days",
        observed_at=datetime(2026, 1, 5, 9, 0, tzinfo=UTC),
    )
    assert parse_message(body("costguard-alert.json")) == expected
    assert parse_message(body("costguard-alert.sns.json")) == expected
    assert source_id_of(expected) == "cg-7"


def test_an_oversized_body_is_refused_before_it_is_read() -> None:
    with pytest.raises(InvalidMessage) as info:
        parse_message(" " * (MAX_BODY_CHARS + 1))
    assert info.value.reason == f"message body of {MAX_BODY_CHARS + 1} characters is longer than SQS allows"


ANOMALY = json.loads(body("cost-anomaly.raw.json"))
EVENT = json.loads(body("cost-anomaly.eventbridge.json"))
SNS = json.loads(body("cost-anomaly.sns.json"))


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        ("", "message body is neither JSON nor an AWS Budgets notification"),
        ("hello", "message body is neither JSON nor an AWS Budgets notification"),
        ("[1, 2]", "message body is JSON but not an object (it is an array)"),
        ("null", "message body is JSON but not an object (it is null)"),
        ('"text"', "message body is JSON but not an object (it is a string)"),
        ("{}", "unrecognised JSON message (keys: none)"),
        ('{"colour": "red", "size": 3}', "unrecognised JSON message (keys: colour, size)"),
        ('{"alert_id": "a", "AlarmName": "b"}', "message matches more than one format (alarm, alert)"),
        (
            json.dumps({"Type": "Notification", "TopicArn": "t", "detail-type": "x", "source": "y"}),
            "message looks like both an SNS notification and an EventBridge event",
        ),
        (
            json.dumps({k: v for k, v in SNS.items() if k != "MessageId"}),
            "SNS notification: MessageId: Field required",
        ),
        (json.dumps(SNS | {"Message": 42}), "SNS notification: Message: Input should be a valid string"),
        (
            json.dumps(SNS | {"Type": "Surprise"}),
            "SNS notification: Type: Input should be 'Notification', 'SubscriptionConfirmation' or "
            "'UnsubscribeConfirmation'",
        ),
        (
            json.dumps(SNS | {"Timestamp": "yesterday"}),
            "SNS notification: Timestamp: Value error, not an ISO-8601 time",
        ),
        (sns_wrap("garbage"), "SNS Message is neither JSON nor an AWS Budgets notification"),
        (
            '{"alert_id": "a\\ud800", "instance_id": "i-0123abcd"}',
            ("message body holds a lone surrogate escape: not valid Unicode text"),
        ),
        (sns_wrap("[]"), "SNS Message is JSON but not an object (it is an array)"),
        (sns_wrap(json.dumps(SNS)), "SNS Message holds another SNS envelope"),
        (
            json.dumps(EVENT | {"source": "aws.ec2", "detail-type": "EC2 Instance State-change Notification"}),
            "unsupported EventBridge event 'aws.ec2' / 'EC2 Instance State-change Notification'",
        ),
        (
            json.dumps(EVENT | {"account": "12345"}),
            "EventBridge event: account: String should match pattern '^\\d{12}$'",
        ),
        (json.dumps(EVENT | {"detail": "{}"}), "EventBridge event: detail: Input should be a valid dictionary"),
        (
            json.dumps(EVENT | {"time": "2021-05-26T04:10:00"}),
            "EventBridge event: time: Value error, time has no time zone",
        ),
        (
            json.dumps(EVENT | {"time": "0001-01-01T00:00:00+01:00"}),
            "EventBridge event: time: Value error, time out of range",
        ),
        (
            json.dumps(EVENT | {"time": 1622002200}),
            "EventBridge event: time: Value error, expected an ISO-8601 time string",
        ),
        (
            json.dumps({"alert_id": "a", "instance_id": "i-nope"}),
            "costguard alert: instance_id: String should match pattern '^i-(?:[0-9a-f]{8}|[0-9a-f]{17})$'",
        ),
        (
            json.dumps({"alert_id": "a", "instance_id": "i-0123abcd", "colour": "red"}),
            "costguard alert: colour: Extra inputs are not permitted",
        ),
    ],
)
def test_malformed_messages_get_one_clear_line(message: str, reason: str) -> None:
    with pytest.raises(InvalidMessage) as info:
        parse_message(message)
    assert info.value.reason == reason
    assert str(info.value) == reason


def test_an_error_reason_quoting_input_stays_one_short_line() -> None:
    hostile = "aws.evil\n" + "x" * 500 + "\u202e\x00"
    with pytest.raises(InvalidMessage) as info:
        parse_message(json.dumps(EVENT | {"source": hostile}))
    assert "\n" not in info.value.reason
    assert "\x00" not in info.value.reason
    assert "\u202e" not in info.value.reason
    assert len(info.value.reason) <= 300
    assert info.value.reason.startswith("unsupported EventBridge event 'aws.evil xxxx")


def test_an_anomaly_published_by_eventbridge_through_sns_is_the_same_alert() -> None:
    direct = parse_message(body("cost-anomaly.eventbridge.json"))
    assert isinstance(direct, ScopeAlert)
    assert parse_message(sns_wrap(body("cost-anomaly.eventbridge.json"))) == direct


def test_an_escaped_surrogate_pair_is_just_a_character() -> None:
    parsed = parse_message('{"alert_id": "a\\ud83d\\ude00", "instance_id": "i-0123abcd"}')
    assert parsed == Alert(alert_id="a\U0001f600", instance_id="i-0123abcd")
