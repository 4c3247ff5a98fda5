"""CloudWatch alarm state changes: SNS and EventBridge forms agree, and only a transition into ALARM acts.

Fixtures written from https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/cloudwatch-and-eventbridge.html
(EventBridge) and https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/Notify_Users_Alarm_Changes.html with
AWS's aws-lambda-go test data (SNS); see fixtures/aws/README.md.
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from costguard.app.sources import Ignored, InvalidMessage, ResourceAlert, Scope, ScopeAlert, parse_message

FIXTURES = Path(__file__).parent / "fixtures" / "aws"
ARN = "arn:aws:cloudwatch:us-east-1:123456789012:alarm:ServerCpuTooHigh"
SOURCE_ID = f"cloudwatch_alarm:{ARN}@2019-10-02T17:04:40.985Z"
REASON = (
    "Threshold Crossed: 1 out of the last 1 datapoints [99.50160229693434 (02/10/19 16:59:00)] was greater than the "
    "threshold (50.0) (minimum 1 datapoint for OK -> ALARM transition)."
)


def body(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


def sns_wrap(message: str, message_id: str = "95df01b4-ee98-5cb9-9903-4c221d41eb5e") -> str:
    return json.dumps(
        {
            "Type": "Notification",
            "MessageId": message_id,
            "TopicArn": "arn:aws:sns:us-east-1:123456789012:cost-alarms",
            "Message": message,
            "Timestamp": "2019-10-02T17:04:41.062Z",
        }
    )


RAW: dict[str, Any] = json.loads(body("cloudwatch-alarm.raw.json"))
EVENT: dict[str, Any] = json.loads(body("cloudwatch-alarm.eventbridge.json"))

EXPECTED = ResourceAlert(
    source_kind="cloudwatch_alarm",
    source_id=SOURCE_ID,
    resource_id="i-12345678901234567",
    region="us-east-1",
    account="123456789012",
    summary=(
        f"CloudWatch alarm ServerCpuTooHigh went OK -> ALARM on i-12345678901234567 (AWS/EC2 CPUUtilization): "
        f"{REASON} (alarm description: Goes into alarm when server CPU utilization is too high!)"
    ),
    observed_at=datetime(2019, 10, 2, 17, 4, 40, 985000, tzinfo=UTC),
)


@pytest.mark.parametrize(
    "name", ["cloudwatch-alarm.sns.json", "cloudwatch-alarm.raw.json", "cloudwatch-alarm.eventbridge.json"]
)
def test_every_route_gives_the_same_resource_alert(name: str) -> None:
    assert parse_message(body(name)) == EXPECTED


def test_a_redelivered_or_duplicated_alarm_keeps_its_id() -> None:
    duplicate = parse_message(sns_wrap(json.dumps(RAW), message_id="0e0e0e0e-1111-5222-8333-444444444444"))
    respelled = parse_message(json.dumps(RAW | {"StateChangeTime": "2019-10-02T19:04:40.985+02:00"}))
    assert parse_message(body("cloudwatch-alarm.sns.json")) == duplicate == respelled == EXPECTED


def test_a_later_state_change_of_the_same_alarm_is_a_new_id() -> None:
    later = parse_message(json.dumps(RAW | {"StateChangeTime": "2019-10-03T08:00:00.000+0000"}))
    assert isinstance(later, ResourceAlert)
    assert later.source_id == f"cloudwatch_alarm:{ARN}@2019-10-03T08:00:00.000Z"


def test_a_metric_math_alarm_names_its_instance_and_a_display_name_gives_the_region() -> None:
    assert parse_message(body("cloudwatch-alarm-metric-math.sns.json")) == ResourceAlert(
        source_kind="cloudwatch_alarm",
        source_id=(
            "cloudwatch_alarm:arn:aws:cloudwatch:eu-west-1:123456789012:alarm:NetworkOutLow@2015-06-03T17:43:27.123Z"
        ),
        resource_id="i-0abcd1234ef567890",
        region="eu-west-1",
        account="123456789012",
        summary=(
            "CloudWatch alarm NetworkOutLow went INSUFFICIENT_DATA -> ALARM on i-0abcd1234ef567890 "
            "(AWS/EC2 NetworkOut): Threshold Crossed: 1 out of the last 1 datapoints [1234.0 (06/03/15 17:43:27)] "
            "was less than the threshold (1048576.0) (minimum 1 datapoint for OK -> ALARM transition). "
            "(alarm description: Network out below 1 MB per minute: the instance looks idle)"
        ),
        observed_at=datetime(2015, 6, 3, 17, 43, 27, 123000, tzinfo=UTC),
    )


def test_an_old_message_without_an_alarm_arn_is_keyed_by_the_arn_it_would_have() -> None:
    parsed = parse_message(body("cloudwatch-alarm-legacy.raw.json"))
    assert isinstance(parsed, ResourceAlert)
    assert (parsed.source_id, parsed.resource_id, parsed.region) == (
        "cloudwatch_alarm:arn:aws:cloudwatch:eu-west-1:123456789012:alarm:Idle web server@2017-01-12T16:30:42.236Z",
        "i-0123abcd",
        "eu-west-1",
    )


STATES = ["OK", "ALARM", "INSUFFICIENT_DATA"]
TRANSITIONS = [(old, new) for old in [*STATES, None] for new in STATES]


def _sns_change(old: str | None, new: str) -> str:
    raw = RAW | {"NewStateValue": new}
    if old is None:
        raw.pop("OldStateValue")
    else:
        raw["OldStateValue"] = old
    return json.dumps(raw)


def _event_change(old: str | None, new: str) -> str:
    event = copy.deepcopy(EVENT)
    event["detail"]["state"]["value"] = new
    if old is None:
        event["detail"].pop("previousState")
    else:
        event["detail"]["previousState"]["value"] = old
    return json.dumps(event)


@pytest.mark.parametrize(("old", "new"), TRANSITIONS)
@pytest.mark.parametrize("route", ["sns", "raw", "eventbridge"])
def test_only_a_transition_into_alarm_acts(route: str, old: str | None, new: str) -> None:
    message = {
        "sns": lambda: sns_wrap(_sns_change(old, new)),
        "raw": lambda: _sns_change(old, new),
        "eventbridge": lambda: _event_change(old, new),
    }[route]()
    parsed = parse_message(message)
    if new != "ALARM":
        assert parsed == Ignored(reason=f"state {new}, not ALARM", source_id=SOURCE_ID)
    elif old == "ALARM":
        reason = "state ALARM, already ALARM before: not a transition into ALARM"
        assert parsed == Ignored(reason=reason, source_id=SOURCE_ID)
    else:
        assert isinstance(parsed, ResourceAlert)
        assert parsed.model_dump(exclude={"summary"}) == EXPECTED.model_dump(exclude={"summary"})
        assert parsed.summary.startswith(f"CloudWatch alarm ServerCpuTooHigh went {old or 'unknown'} -> ALARM")


def _event_with_metrics(metrics: list[dict[str, Any]] | None) -> str:
    event = copy.deepcopy(EVENT)
    if metrics is None:
        event["detail"]["configuration"] = {"alarmRule": "ALARM(a) OR ALARM(b)", "description": "composite"}
    else:
        event["detail"]["configuration"]["metrics"] = metrics
    return json.dumps(event)


def _metric(namespace: str, name: str, dimensions: dict[str, str]) -> dict[str, Any]:
    return {"id": "m1", "metricStat": {"metric": {"namespace": namespace, "name": name, "dimensions": dimensions}}}


NO_RESOURCE = "alarm has no InstanceId dimension and is not a billing alarm: it names no resource or spend"


@pytest.mark.parametrize(
    ("metrics", "reason"),
    [
        ([_metric("AWS/Lambda", "Errors", {"FunctionName": "f"})], NO_RESOURCE),
        ([], NO_RESOURCE),
        (None, NO_RESOURCE),
        (
            [
                _metric("AWS/EC2", "CPUUtilization", {"InstanceId": "i-0123abcd"}),
                _metric("AWS/EC2", "CPUUtilization", {"InstanceId": "i-0456abcd"}),
            ],
            "alarm watches 2 EC2 instances, so it names no single one to act on",
        ),
    ],
)
def test_an_alarm_that_names_no_single_instance_is_ignored_with_its_reason(
    metrics: list[dict[str, Any]] | None, reason: str
) -> None:
    assert parse_message(_event_with_metrics(metrics)) == Ignored(reason=reason, source_id=SOURCE_ID)


def test_the_same_instance_on_two_metrics_is_still_one_instance() -> None:
    metrics = [
        _metric("AWS/EC2", "CPUUtilization", {"InstanceId": "i-12345678901234567"}),
        _metric("AWS/EC2", "NetworkOut", {"InstanceId": "i-12345678901234567"}),
    ]
    parsed = parse_message(_event_with_metrics(metrics))
    assert isinstance(parsed, ResourceAlert)
    assert parsed.resource_id == "i-12345678901234567"


def test_a_billing_alarm_is_a_scope_alert_on_its_account() -> None:
    metrics = [
        _metric(
            "AWS/Billing",
            "EstimatedCharges",
            {"Currency": "USD", "ServiceName": "AmazonEC2", "LinkedAccount": "111122223333"},
        )
    ]
    assert parse_message(_event_with_metrics(metrics)) == ScopeAlert(
        source_kind="cloudwatch_alarm",
        source_id=SOURCE_ID,
        account="123456789012",
        scopes=(Scope(linked_account="111122223333", service="AmazonEC2"),),
        summary=(
            "CloudWatch alarm ServerCpuTooHigh went OK -> ALARM on account 123456789012 estimated charges "
            f"(AWS/Billing EstimatedCharges): {REASON} "
            "(alarm description: Goes into alarm when server CPU utilization is too high!)"
        ),
        observed_at=datetime(2019, 10, 2, 17, 4, 40, 985000, tzinfo=UTC),
    )


def _with(raw: dict[str, Any], **changes: Any) -> str:
    """The message with some keys changed; a key changed to `...` is removed."""
    merged = raw | changes
    return json.dumps({k: v for k, v in merged.items() if v is not ...})


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        (
            _with(RAW, Trigger=RAW["Trigger"] | {"Dimensions": [{"name": "InstanceId", "value": "TestInstance"}]}),
            "alarm's InstanceId dimension 'TestInstance' is not an EC2 instance id",
        ),
        (
            _with(RAW, NewStateValue="ON_FIRE"),
            ("CloudWatch alarm message: NewStateValue: Input should be 'OK', 'ALARM' or 'INSUFFICIENT_DATA'"),
        ),
        (_with(RAW, StateChangeTime=...), "CloudWatch alarm message: StateChangeTime: Field required"),
        (
            _with(RAW, AlarmName="a\x00b"),
            ("CloudWatch alarm message: AlarmName: Value error, contains control or invisible characters"),
        ),
        (_with(RAW, Region="EU (Ireland)"), "alarm Region 'EU (Ireland)' disagrees with its ARN's us-east-1"),
        (
            _with(RAW, AWSAccountId="999988887777"),
            "alarm AWSAccountId 999988887777 disagrees with its ARN's 123456789012",
        ),
        (
            _with(RAW, AlarmArn="arn:aws:sns:us-east-1:123456789012:x"),
            ("'arn:aws:sns:us-east-1:123456789012:x' is not a CloudWatch alarm ARN"),
        ),
        (
            _with(RAW, AlarmArn=..., Region="Atlantis (Central)"),
            "alarm Region 'Atlantis (Central)' is not a known Region name",
        ),
        (
            _with(RAW, AlarmArn=..., AWSAccountId=...),
            ("alarm has no AlarmArn, and no AWSAccountId and Region to name it by"),
        ),
        (
            _with(RAW, Trigger={"Dimensions": [{"name": "InstanceId"}]}),
            "CloudWatch alarm message: Trigger.Dimensions.0.value: Field required",
        ),
        (
            json.dumps(EVENT | {"resources": []}),
            "alarm event lists 0 CloudWatch alarm ARNs in resources, expected 1",
        ),
        (
            json.dumps(EVENT | {"region": "eu-west-1"}),
            "alarm ARN disagrees with the event's region or account",
        ),
        (
            json.dumps(EVENT | {"detail": EVENT["detail"] | {"state": {"value": "ALARM"}}}),
            "CloudWatch alarm event detail: state.timestamp: Field required",
        ),
        (
            _event_with_metrics([_metric("AWS/Billing", "EstimatedCharges", {"LinkedAccount": "me"})]),
            "billing alarm's LinkedAccount 'me' is not an account id",
        ),
    ],
)
def test_a_malformed_alarm_names_the_problem(message: str, reason: str) -> None:
    with pytest.raises(InvalidMessage) as info:
        parse_message(message)
    assert info.value.reason == reason
