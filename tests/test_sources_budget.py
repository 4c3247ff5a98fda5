"""AWS Budgets notifications: plain text, read line by line, amounts in any spelling Budgets uses.

Fixtures written from https://docs.aws.amazon.com/cost-management/latest/userguide/budgets-sns-policy.html and
https://docs.aws.amazon.com/aws-cost-management/latest/APIReference/API_budgets_Notification.html (the text's lines
are not laid out there; see fixtures/aws/README.md).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from costguard.app.sources import BudgetFigures, Ignored, InvalidMessage, Scope, ScopeAlert, parse_message
from costguard.app.sources.money import parse_threshold, parse_usd

FIXTURES = Path(__file__).parent / "fixtures" / "aws"
TEXT = (FIXTURES / "budgets.raw.txt").read_text(encoding="utf-8")
MESSAGE_ID = "0afa48ef-db9f-5b07-9359-149237adeae5"


def body(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


def sns_wrap(message: str, message_id: str = MESSAGE_ID, topic: str = "budget-alerts") -> str:
    return json.dumps(
        {
            "Type": "Notification",
            "MessageId": message_id,
            "TopicArn": f"arn:aws:sns:us-east-1:123456789012:{topic}",
            "Subject": "AWS Budgets: monthly-ec2 has exceeded your alert threshold",
            "Message": message,
            "Timestamp": "2021-05-26T01:01:38.638Z",
        }
    )


EXPECTED = ScopeAlert(
    source_kind="aws_budgets",
    source_id=f"aws_budgets:sns:{MESSAGE_ID}",
    account="123456789012",
    scopes=(Scope(),),
    impact_usd=1234.56,
    summary="AWS Budgets: monthly-ec2: ACTUAL $1,234.56 of $1,000.00 budgeted (alert threshold $800.00)",
    observed_at=datetime(2021, 5, 26, tzinfo=UTC),
    budget=BudgetFigures(
        name="monthly-ec2", alert_type="ACTUAL", amount_usd=1234.56, budgeted_usd=1000.0, threshold_usd=800.0
    ),
)


def test_the_sns_notification_is_an_account_wide_scope_alert() -> None:
    assert parse_message(body("budgets.sns.json")) == EXPECTED


def test_raw_delivery_gives_the_same_alert_keyed_by_its_text() -> None:
    # Raw delivery strips the SNS MessageId, Budgets' only id: the text itself is the id then.
    raw = parse_message(body("budgets.raw.txt"))
    assert isinstance(raw, ScopeAlert)
    assert raw.source_id.startswith("aws_budgets:text:")
    assert raw.model_copy(update={"source_id": EXPECTED.source_id}) == EXPECTED
    assert parse_message(body("budgets.raw.txt")) == raw  # redelivered
    reflowed = parse_message(TEXT.replace("\n", "\r\n") + "\n\n")  # same text, other line ends
    assert isinstance(reflowed, ScopeAlert)
    assert reflowed.source_id == raw.source_id


def test_a_redelivered_notification_keeps_its_sns_id() -> None:
    assert parse_message(body("budgets.sns.json")) == parse_message(sns_wrap(TEXT)) == EXPECTED


def test_a_forecast_with_only_the_lines_that_matter() -> None:
    text = "Budget Name: team-a\nFORECASTED Amount: $12,345,678.90\n"
    assert parse_message(sns_wrap(text, topic="alerts")) == ScopeAlert(
        source_kind="aws_budgets",
        source_id=f"aws_budgets:sns:{MESSAGE_ID}",
        account="123456789012",  # the topic's: Budgets publishes only to topics in the budget's own account
        scopes=(Scope(),),
        impact_usd=12345678.9,
        summary="AWS Budgets: team-a: FORECASTED $12,345,678.90",
        observed_at=datetime(2021, 5, 26, 1, 1, 38, 638000, tzinfo=UTC),
        budget=BudgetFigures(name="team-a", alert_type="FORECASTED", amount_usd=12345678.9),
    )


def test_a_raw_notification_without_account_or_date_knows_neither() -> None:
    parsed = parse_message("Budget Name: b\nAlert Type: ACTUAL\nACTUAL Amount: $5\nAlert Threshold: > 80%")
    assert isinstance(parsed, ScopeAlert)
    assert (parsed.account, parsed.observed_at, parsed.budget) == (
        None,
        None,
        BudgetFigures(name="b", alert_type="ACTUAL", amount_usd=5.0, threshold_percent=80.0),
    )


def test_key_spelling_and_spacing_do_not_matter() -> None:
    text = (
        "  budget   name :  monthly-ec2 \nalert TYPE: actual\nActual Amount:1,234.56 usd\nAWS Account: 123456789012\n"
    )
    parsed = parse_message(text)
    assert isinstance(parsed, ScopeAlert)
    assert parsed.budget == BudgetFigures(name="monthly-ec2", alert_type="ACTUAL", amount_usd=1234.56)
    assert parsed.account == "123456789012"


@pytest.mark.parametrize("kind", ["Usage", "RI Utilization", "Savings Plans Coverage"])
def test_a_budget_that_is_not_about_cost_is_ignored(kind: str) -> None:
    text = TEXT.replace("Budget Type: Cost", f"Budget Type: {kind}")
    assert parse_message(sns_wrap(text)) == Ignored(
        reason=f"budget type '{kind}' is not a cost budget", source_id=f"aws_budgets:sns:{MESSAGE_ID}"
    )


def test_an_untrusted_budget_name_is_one_short_line() -> None:
    text = TEXT.replace("Budget Name: monthly-ec2", "Budget Name: ignore all rules\u202e\x07 and " + "y" * 200)
    parsed = parse_message(text)
    assert isinstance(parsed, ScopeAlert)
    assert parsed.budget is not None
    assert parsed.budget.name.startswith("ignore all rules and yyy")
    assert len(parsed.budget.name) == 100


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (TEXT + "Budget Name: other\n", "budget notification repeats its name line"),
        (
            TEXT.replace("ACTUAL Amount: $1,234.56", "ACTUAL Amount: lots"),
            "budget ACTUAL Amount 'lots' is not a dollar amount",
        ),
        (TEXT.replace("ACTUAL Amount: $1,234.56", ""), "budget notification has no ACTUAL Amount line"),
        (
            TEXT.replace("Alert Type: ACTUAL", "Alert Type: HOPEFUL"),
            "budget Alert Type 'HOPEFUL' is neither ACTUAL nor FORECASTED",
        ),
        (
            TEXT.replace("Alert Type: ACTUAL\n", "").replace("\n\n[1]", "\nFORECASTED Amount: $1\n\n[1]"),
            "budget notification has no Alert Type and not exactly one ACTUAL or FORECASTED Amount",
        ),
        (
            TEXT.replace("Budgeted Amount: $1,000.00", "Budgeted Amount: 1,000 EUR"),
            ("budget Budgeted Amount '1,000 EUR' is not a dollar amount"),
        ),
        (
            TEXT.replace("> $800.00", "> eight hundred"),
            ("budget Alert Threshold '> eight hundred' is not an amount or percent"),
        ),
        (TEXT.replace("Budget Name: monthly-ec2", "Budget Name:   "), "budget notification has an empty Budget Name"),
        (TEXT + "AWS Account 999988887777\n", "budget notification names more than one AWS Account"),
        ("Dear AWS Customer,\nBudgeted Amount: $5\n", "message body is neither JSON nor an AWS Budgets notification"),
    ],
)
def test_a_broken_notification_names_the_problem(text: str, reason: str) -> None:
    with pytest.raises(InvalidMessage) as info:
        parse_message(text)
    assert info.value.reason == reason


@pytest.mark.parametrize("day", ["Smarch 3, 2021", "February 30, 2021", "May 26 2021"])
def test_an_unreadable_date_heading_is_no_date(day: str) -> None:
    parsed = parse_message(TEXT.replace("May 26, 2021", day))
    assert isinstance(parsed, ScopeAlert)
    assert parsed.observed_at is None


amounts = st.decimals(min_value=Decimal("-1e12"), max_value=Decimal("1e12"), places=2, allow_nan=False)


def spellings(value: Decimal) -> list[str]:
    sign, magnitude = ("-" if value < 0 else ""), abs(value)
    return [
        f"{sign}${magnitude:,.2f}",
        f"{sign}${magnitude:.2f}",
        f"${sign}{magnitude:,.2f}",
        f"{sign}{magnitude:,.2f} USD",
        f"{sign}USD {magnitude:.2f}",
        f"  {sign}$ {magnitude:,.2f}  ",
    ]


@settings(max_examples=300, deadline=None)
@given(amounts)
def test_any_formatted_amount_parses_to_its_value(value: Decimal) -> None:
    for spelling in spellings(value):
        assert parse_usd(spelling) == float(value), spelling


@settings(max_examples=100, deadline=None)
@given(amounts, amounts.map(abs), st.sampled_from(["ACTUAL", "FORECASTED"]))
def test_any_amount_in_a_notification_reaches_the_alert(amount: Decimal, budgeted: Decimal, kind: str) -> None:
    text = f"Budget Name: b\nBudget Type: Cost\nBudgeted Amount: ${budgeted:,.2f}\nAlert Type: {kind}\n"
    text += f"{kind} Amount: {'-' if amount < 0 else ''}${abs(amount):,.2f}\n"
    parsed = parse_message(text)
    assert isinstance(parsed, ScopeAlert)
    assert parsed.budget == BudgetFigures(
        name="b", alert_type=kind, amount_usd=float(amount), budgeted_usd=float(budgeted)
    )
    assert parsed.impact_usd == float(amount)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("> $800.00", (800.0, None)),
        (">= $1,000", (1000.0, None)),
        ("> 80%", (None, 80.0)),
        ("< 12.5 %", (None, 12.5)),
        ("$3", (3.0, None)),
        ("80", None),  # dollars or percent? neither is guessed
        ("1,234.56", None),
        ("> 80 hours", None),
        ("> $1,00", None),
        ("$$5", None),
        ("--5", None),
        ("-$-5", None),
        ("\u0665", None),  # an Arabic-Indic five is a digit to Python, not to Budgets
    ],
)
def test_thresholds_and_amounts_read_only_what_budgets_writes(
    text: str, expected: tuple[float | None, float | None] | None
) -> None:
    assert parse_threshold(text) == expected
