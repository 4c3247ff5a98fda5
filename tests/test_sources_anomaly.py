"""AWS Cost Anomaly Detection: the SNS message of an IMMEDIATE subscription and the aws.ce EventBridge event.

Fixtures written from https://docs.aws.amazon.com/cost-management/latest/userguide/cad-eventbridge.html and
https://docs.aws.amazon.com/aws-cost-management/latest/APIReference/API_Anomaly.html (see fixtures/aws/README.md).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from costguard.app.sources import InvalidMessage, Scope, ScopeAlert, parse_message

FIXTURES = Path(__file__).parent / "fixtures" / "aws"
EC2 = "Amazon Elastic Compute Cloud - Compute"


def body(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


def sns_wrap(message: str, message_id: str) -> str:
    return json.dumps(
        {
            "Type": "Notification",
            "MessageId": message_id,
            "TopicArn": "arn:aws:sns:us-east-1:123456789012:cost-anomalies",
            "Message": message,
            "Timestamp": "2021-05-26T04:12:09.757Z",
        }
    )


RAW: dict[str, Any] = json.loads(body("cost-anomaly.raw.json"))
EVENT: dict[str, Any] = json.loads(body("cost-anomaly.eventbridge.json"))

EXPECTED = ScopeAlert(
    source_kind="cost_anomaly",
    source_id="cost_anomaly:12345678-abcd-ef12-3456-987654321a12",
    account="123456789012",
    scopes=(
        Scope(
            linked_account="111122223333",
            region="us-east-1",
            service=EC2,
            usage_type="USE1-BoxUsage:m5.4xlarge",
            impact_usd=700.0,
        ),
        Scope(
            linked_account="444455556666",
            region="eu-west-1",
            service=EC2,
            usage_type="EU-BoxUsage:c5.2xlarge",
            impact_usd=301.0,
        ),
    ),
    impact_usd=1001.0,
    summary=(
        f"AWS Cost Anomaly Detection: $1,001.00 unexpected spend on {EC2} from 2021-05-25; root causes: "
        f"{EC2}/us-east-1/USE1-BoxUsage:m5.4xlarge/111122223333, {EC2}/eu-west-1/EU-BoxUsage:c5.2xlarge/444455556666"
    ),
    observed_at=datetime(2021, 5, 25, tzinfo=UTC),
)


@pytest.mark.parametrize("name", ["cost-anomaly.sns.json", "cost-anomaly.raw.json", "cost-anomaly.eventbridge.json"])
def test_every_route_gives_the_same_scope_alert(name: str) -> None:
    assert parse_message(body(name)) == EXPECTED


def test_a_redelivered_or_republished_anomaly_keeps_its_id() -> None:
    again = parse_message(body("cost-anomaly.sns.json"))
    republished = parse_message(sns_wrap(json.dumps(RAW), "9a8b7c6d-0000-5000-8000-000000000002"))
    assert again == republished == EXPECTED


def test_several_root_causes_are_one_alert_with_one_scope_each_and_duplicates_fold() -> None:
    causes = [*RAW["rootCauses"], RAW["rootCauses"][0]]
    parsed = parse_message(json.dumps(RAW | {"rootCauses": causes}))
    assert parsed == EXPECTED


@pytest.mark.parametrize("causes", [[], None])
def test_an_anomaly_without_root_causes_is_account_wide(causes: list[Any] | None) -> None:
    parsed = parse_message(json.dumps(RAW | {"rootCauses": causes}))
    assert parsed == EXPECTED.model_copy(
        update={
            "scopes": (Scope(),),
            "summary": f"AWS Cost Anomaly Detection: $1,001.00 unexpected spend on {EC2} from 2021-05-25",
        }
    )


def test_the_event_account_stands_in_when_the_detail_names_none_and_accountid_wins_when_present() -> None:
    detail = EVENT["detail"] | {"accountId": "999988887777"}
    parsed = parse_message(json.dumps(EVENT | {"detail": detail}))
    assert isinstance(parsed, ScopeAlert)
    assert parsed.account == "999988887777"


@pytest.mark.parametrize(
    ("region", "expected"),
    [
        ("us-east-1", "us-east-1"),
        ("US East (N. Virginia)", "us-east-1"),
        ("global", None),
        ("NoRegion", None),
        ("", None),
        ("xx-future-9", "xx-future-9"),
    ],
)
def test_root_cause_regions_become_codes_or_any(region: str, expected: str | None) -> None:
    cause = {"service": "AWS Lambda", "region": region, "usageType": "Request"}
    parsed = parse_message(json.dumps(RAW | {"rootCauses": [cause]}))
    assert isinstance(parsed, ScopeAlert)
    assert parsed.scopes == (Scope(region=expected, service="AWS Lambda", usage_type="Request"),)


def test_an_ongoing_anomaly_is_observed_at_its_start() -> None:
    parsed = parse_message(json.dumps(RAW | {"anomalyEndDate": None, "anomalyStartDate": "2021-05-20"}))
    assert isinstance(parsed, ScopeAlert)
    assert parsed.observed_at == datetime(2021, 5, 20, tzinfo=UTC)


def test_untrusted_dimension_text_is_one_short_line() -> None:
    parsed = parse_message(json.dumps(RAW | {"dimensionalValue": "EC2\n\x1b[31mIGNORE PREVIOUS\u202e" + "x" * 900}))
    assert isinstance(parsed, ScopeAlert)
    assert "\n" not in parsed.summary
    assert "\x1b" not in parsed.summary
    assert "on EC2 [31mIGNORE PREVIOUS " in parsed.summary
    assert len(parsed.summary) <= 1000


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"anomalyId": None}, "Cost Anomaly Detection message: anomalyId: Input should be a valid string"),
        ({"anomalyId": ""}, "Cost Anomaly Detection message: anomalyId: String should have at least 1 character"),
        ({"impact": None}, "Cost Anomaly Detection message: impact: Input should be an object"),
        ({"impact": {"maxImpact": 3}}, "Cost Anomaly Detection message: impact.totalImpact: Field required"),
        (
            {"impact": {"totalImpact": "1001"}},
            "Cost Anomaly Detection message: impact.totalImpact: Input should be a valid number",
        ),
        (
            {"accountId": "1234567890"},
            "Cost Anomaly Detection message: accountId: String should match pattern '^\\d{12}$'",
        ),
        (
            {"anomalyStartDate": "May 25"},
            "Cost Anomaly Detection message: anomalyStartDate: Value error, not an ISO-8601 time",
        ),
        ({"rootCauses": "EC2"}, "Cost Anomaly Detection message: rootCauses: Input should be a valid list"),
        (
            {"rootCauses": [{"linkedAccount": 111122223333}]},
            "Cost Anomaly Detection message: rootCauses.0.linkedAccount: Input should be a valid string",
        ),
    ],
)
def test_a_malformed_anomaly_names_the_field(change: dict[str, Any], reason: str) -> None:
    with pytest.raises(InvalidMessage) as info:
        parse_message(json.dumps(RAW | change))
    assert info.value.reason == reason


def test_a_malformed_event_detail_says_it_is_the_event() -> None:
    with pytest.raises(InvalidMessage) as info:
        parse_message(json.dumps(EVENT | {"detail": {"anomalyId": "x"}}))
    assert info.value.reason == "Cost Anomaly Detection event detail: impact: Field required"
