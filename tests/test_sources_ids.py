"""Stable ids and thread keys, and the resource alert as costguard's own Alert."""

from __future__ import annotations

import hashlib
import re
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from costguard.app.sources import (
    Ignored,
    ResourceAlert,
    Scope,
    ScopeAlert,
    parse_message,
    source_id_of,
    thread_key,
    thread_uuid,
    to_alert,
)
from costguard.app.sources.ids import THREAD_KEY_MAX, alarm_source_id, text_source_id, utc_millis
from costguard.state import Alert, thread_id_for

FIXTURES = Path(__file__).parent / "fixtures" / "aws"
ALARM_ID = "cloudwatch_alarm:arn:aws:cloudwatch:us-east-1:123456789012:alarm:ServerCpuTooHigh@2019-10-02T17:04:40.985Z"
KEY_CHARS = re.compile(r"[A-Za-z0-9._:@+=~-]+")


def body(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


def test_a_short_plain_id_is_its_own_key() -> None:
    assert thread_key("cost_anomaly:12345678-abcd-ef12-3456-987654321a12") == (
        "cost_anomaly:12345678-abcd-ef12-3456-987654321a12"
    )


def test_a_long_or_unusual_id_becomes_its_kind_and_a_digest() -> None:
    # Pinned: a changed key would start a second thread for an alert already handled.
    assert thread_key(ALARM_ID) == "cloudwatch_alarm~b78e867b0151c4315dac3d6e9ef4ade71ea1f92a"
    assert thread_key("Idle web server") == "id~f8f62521b3bd36c9006b15774a20cb7f1f9407e6"


@given(st.text(max_size=400))
def test_any_source_id_gives_a_bounded_plain_deterministic_key(source_id: str) -> None:
    key = thread_key(source_id)
    assert len(key) <= THREAD_KEY_MAX
    assert KEY_CHARS.fullmatch(key)
    assert thread_key(source_id) == key
    assert thread_uuid(source_id) == thread_uuid(source_id)
    assert thread_uuid(source_id).version == 5


@given(st.text(min_size=1, max_size=120), st.text(min_size=1, max_size=120))
def test_different_source_ids_get_different_keys(first: str, second: str) -> None:
    if first != second:
        assert thread_key(first) != thread_key(second)
        assert thread_uuid(first) != thread_uuid(second)


def test_thread_uuids_are_fixed_forever() -> None:
    # A changed namespace would orphan every served thread already started: this pins it.
    digest = hashlib.sha256(ALARM_ID.encode()).hexdigest()
    assert thread_uuid(ALARM_ID) == uuid.uuid5(uuid.UUID("6f2b1a9e-3c1d-5e8f-9a7b-0c4d2e6f8a10"), digest)


def test_times_are_keyed_in_one_spelling() -> None:
    plus = datetime.fromisoformat("2019-10-02T17:04:40.985+0000")
    zulu = datetime.fromisoformat("2019-10-02T19:04:40.985+02:00")
    assert utc_millis(plus) == utc_millis(zulu) == "2019-10-02T17:04:40.985Z"
    assert alarm_source_id("arn", plus) == alarm_source_id("arn", zulu)


def test_text_ids_ignore_line_ends_and_spacing_only() -> None:
    assert text_source_id("aws_budgets", "a b\r\nc\n") == text_source_id("aws_budgets", "a  b\nc")
    assert text_source_id("aws_budgets", "a b c") != text_source_id("aws_budgets", "a b d")
    assert text_source_id("aws_budgets", "\ud800") == text_source_id("aws_budgets", "\ud800")  # lone surrogate


def test_an_instance_alarm_becomes_costguards_alert() -> None:
    resource = parse_message(body("cloudwatch-alarm.eventbridge.json"))
    assert isinstance(resource, ResourceAlert)
    alert = to_alert(resource)
    assert alert == Alert(
        alert_id=thread_key(ALARM_ID),
        instance_id="i-12345678901234567",
        region="us-east-1",
        monthly_cost_usd=None,
        kind="cloudwatch_alarm",
        summary=resource.summary,
        observed_at=datetime(2019, 10, 2, 17, 4, 40, 985000, tzinfo=UTC),
    )
    assert thread_id_for(alert.alert_id) == f"alert:{thread_key(ALARM_ID)}"
    via_sns = parse_message(body("cloudwatch-alarm.sns.json"))
    assert isinstance(via_sns, ResourceAlert)
    assert to_alert(via_sns) == alert


def test_the_alert_keeps_a_cost_figure_when_the_source_has_one() -> None:
    resource = ResourceAlert(
        source_kind="cloudwatch_alarm",
        source_id="x:1",
        resource_id="i-0123abcd",
        region="eu-west-1",
        monthly_cost_usd=70.08,
        summary="s",
    )
    assert to_alert(resource) == Alert(
        alert_id="x:1",
        instance_id="i-0123abcd",
        region="eu-west-1",
        monthly_cost_usd=70.08,
        kind="cloudwatch_alarm",
        summary="s",
    )


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        (Ignored(reason="r", source_id="s:1"), "s:1"),
        (ScopeAlert(source_kind="aws_budgets", source_id="b:1", scopes=(Scope(),), summary=""), "b:1"),
        (Alert(alert_id="cg-7", instance_id="i-0123abcd"), "cg-7"),
    ],
)
def test_every_result_has_a_source_id(item: Ignored | ScopeAlert | Alert, expected: str) -> None:
    assert source_id_of(item) == expected
