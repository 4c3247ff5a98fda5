"""Whatever a queue delivers, parse_message returns a result or raises InvalidMessage, and nothing else.

Bodies are arbitrary text, arbitrary JSON, arbitrary JSON inside real envelopes, and every fixture with any one
part replaced by arbitrary JSON (so the fuzzing reaches deep into each format, not just the first check).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from costguard.app.sources import Ignored, InvalidMessage, Parsed, ResourceAlert, ScopeAlert, parse_message, to_alert
from costguard.app.sources.errors import REASON_MAX
from costguard.state import Alert

FIXTURES = Path(__file__).parent / "fixtures" / "aws"
JSON_FIXTURES = sorted(p.name for p in FIXTURES.glob("*.json"))

any_text = st.text(st.characters(exclude_categories=()), max_size=30)  # surrogates and controls included
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | any_text
    | st.sampled_from(["ALARM", "OK", "i-0123abcd", "us-east-1", "2021-05-25T00:00:00Z", "$1,234.56", "123456789012"]),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(any_text, children, max_size=4),
    max_leaves=12,
)


def check(body: str) -> Parsed | None:
    """The property itself: a result, or an InvalidMessage whose reason is one short line."""
    try:
        parsed = parse_message(body)
    except InvalidMessage as exc:
        assert exc.reason
        assert len(exc.reason) <= REASON_MAX
        assert exc.reason == " ".join(exc.reason.split())
        return None
    assert isinstance(parsed, ResourceAlert | ScopeAlert | Alert | Ignored)
    if isinstance(parsed, ResourceAlert):
        to_alert(parsed)  # every resource alert is a valid costguard Alert
    if isinstance(parsed, ResourceAlert | ScopeAlert):
        assert parsed.summary == " ".join(parsed.summary.split())
    parsed.model_dump_json()  # serialisable: nothing unencodable slipped through
    return parsed


def sns(message: str) -> str:
    return json.dumps(
        {
            "Type": "Notification",
            "MessageId": "11111111-2222-5333-8444-555555555555",
            "TopicArn": "arn:aws:sns:us-east-1:123456789012:t",
            "Message": message,
            "Timestamp": "2021-05-26T04:12:09.757Z",
        }
    )


@settings(max_examples=500, deadline=None)
@given(st.text(st.characters(exclude_categories=()), max_size=300))
def test_any_text(body: str) -> None:
    check(body)


@settings(max_examples=500, deadline=None)
@given(json_values)
def test_any_json_value(value: Any) -> None:
    check(json.dumps(value))


@settings(max_examples=300, deadline=None)
@given(st.one_of(json_values.map(json.dumps), st.text(max_size=200)))
def test_anything_inside_an_sns_notification(message: str) -> None:
    check(sns(message))


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from([("aws.ce", "Anomaly Detected"), ("aws.cloudwatch", "CloudWatch Alarm State Change")]),
    st.dictionaries(
        st.sampled_from(["anomalyId", "impact", "rootCauses", "alarmName", "state", "previousState", "configuration"]),
        json_values,
    ),
)
def test_any_detail_inside_an_eventbridge_event(kind: tuple[str, str], detail: dict[str, Any]) -> None:
    event = json.loads((FIXTURES / "cost-anomaly.eventbridge.json").read_text(encoding="utf-8"))
    event |= {"source": kind[0], "detail-type": kind[1], "detail": detail}
    check(json.dumps(event))


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            found += _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += _paths(child, (*prefix, index))
    return found


def _replace(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    copied = copy.deepcopy(value)
    target = copied
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = new
    return copied


@settings(max_examples=1500, deadline=None)
@given(st.sampled_from(JSON_FIXTURES), st.booleans(), st.integers(min_value=0), json_values | st.just(...))
def test_any_fixture_with_one_part_replaced_or_removed(name: str, inner: bool, pick: int, new: Any) -> None:
    document = json.loads((FIXTURES / name).read_text(encoding="utf-8"))
    payload_in_message = inner and isinstance(document.get("Message"), str) and document["Message"].startswith("{")
    target = json.loads(document["Message"]) if payload_in_message else document
    paths = _paths(target)
    path = paths[pick % len(paths)]
    if new is ... and path:  # remove the key or item instead of replacing it
        mutated = copy.deepcopy(target)
        holder = mutated
        for step in path[:-1]:
            holder = holder[step]
        del holder[path[-1]]
    else:
        mutated = _replace(target, path, None if new is ... else new)
    body = json.dumps(document | {"Message": json.dumps(mutated)}) if payload_in_message else json.dumps(mutated)
    check(body)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            [
                "Budget Name",
                "Budget Type",
                "Budgeted Amount",
                "Alert Type",
                "Alert Threshold",
                "ACTUAL Amount",
                "FORECASTED Amount",
                "AWS Account",
                "AWS Budget Notification",
            ]
        ),
        max_size=8,
    ),
    st.lists(st.text(max_size=30), min_size=8, max_size=8),
)
def test_any_budget_like_text(keys: list[str], values: list[str]) -> None:
    lines = [f"{key}: {value}" for key, value in zip(keys, values, strict=False)]
    check("\n".join(lines))
    check(sns("\n".join(lines)))


def test_the_fixtures_themselves_all_parse() -> None:
    for name in [*JSON_FIXTURES, "budgets.raw.txt"]:
        assert check((FIXTURES / name).read_text(encoding="utf-8")) is not None, name
