"""The alert parser: every malformed line gets a clear reason and its line number; nothing is lost."""

from __future__ import annotations

import json
import string
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from costguard.app.batch import invalid_outcome, parse_alert_line, read_alerts
from costguard.errors import InvalidAlert
from costguard.state import Alert

GOOD = {"alert_id": "a-1", "instance_id": "i-0123456789abcdef0", "monthly_cost_usd": 12.5}


@pytest.mark.parametrize(
    ("line", "fragment"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "expected a JSON object, got list"),
        ('"text"', "expected a JSON object, got str"),
        (json.dumps({"instance_id": "i-0123456789abcdef0"}), "alert_id: Field required"),
        (json.dumps({"alert_id": "a"}), "the alert names no resource: give resource_id (or instance_id)"),
        (json.dumps({**GOOD, "instance_id": "i-xyz"}), "instance_id: String should match pattern"),
        (json.dumps({**GOOD, "instance_id": "i-0123456"}), "instance_id: String should match pattern"),
        (json.dumps({**GOOD, "monthly_cost_usd": -1}), "monthly_cost_usd: Input should be greater than or equal to 0"),
        (json.dumps({**GOOD, "monthly_cost_usd": "lots"}), "monthly_cost_usd: Input should be a valid number"),
        (json.dumps({**GOOD, "summary": "x" * 4001}), "summary: String should have at most 4000 characters"),
        (json.dumps({**GOOD, "observed_at": "yesterday"}), "observed_at: Input should be a valid datetime"),
        (json.dumps({**GOOD, "colour": "red"}), "colour: Extra inputs are not permitted"),
        ('{"alert_id": "a", "instance_id": "i-01234567", "monthly_cost_usd": NaN}', "monthly_cost_usd"),
    ],
)
def test_malformed_lines_name_the_problem(line: str, fragment: str) -> None:
    with pytest.raises(InvalidAlert) as info:
        parse_alert_line(line, 7)
    assert info.value.line == 7
    assert fragment in info.value.reason
    outcome = invalid_outcome(info.value)
    assert outcome.status == "invalid_input"
    assert outcome.line == 7
    assert fragment in outcome.reason


@pytest.mark.parametrize(
    ("data", "reported_as"),
    [
        ({"alert_id": "bad-1", "instance_id": "not-an-id"}, "bad-1"),
        ({"alert_id": "bad-2"}, "bad-2"),
        ({"alert_id": 42, "instance_id": "i-0123456789abcdef0"}, "line-3"),
        ({"alert_id": "", "instance_id": "i-0123456789abcdef0"}, "line-3"),
        ({"alert_id": "x" * 201, "instance_id": "i-0123456789abcdef0"}, "line-3"),
        ({"instance_id": "i-0123456789abcdef0"}, "line-3"),
    ],
)
def test_an_invalid_alert_keeps_its_own_readable_id(data: dict[str, Any], reported_as: str) -> None:
    with pytest.raises(InvalidAlert) as info:
        parse_alert_line(json.dumps(data), 3)
    outcome = invalid_outcome(info.value)
    assert (outcome.alert_id, outcome.line, outcome.status) == (reported_as, 3, "invalid_input")


def test_both_id_lengths_are_accepted() -> None:
    assert parse_alert_line(json.dumps({"alert_id": "x", "instance_id": "i-0123abcd"}), 1).instance_id == "i-0123abcd"
    assert parse_alert_line(json.dumps(GOOD), 1).monthly_cost_usd == 12.5


def test_a_file_with_bad_lines_keeps_every_good_one(tmp_path: Path) -> None:
    path = tmp_path / "alerts.jsonl"
    lines = [json.dumps(GOOD), "garbage", "", json.dumps({**GOOD, "alert_id": "a-2"}), "\x00\xff"]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    items = list(read_alerts(path))
    assert [type(i).__name__ for i in items] == ["Alert", "InvalidAlert", "Alert", "InvalidAlert"]
    assert [i.line for i in items if isinstance(i, InvalidAlert)] == [2, 5]


hex_id = st.sampled_from([8, 17]).flatmap(
    lambda n: st.text(alphabet="0123456789abcdef", min_size=n, max_size=n).map(lambda s: "i-" + s)
)
valid_alert = st.fixed_dictionaries(
    {"alert_id": st.text(min_size=1, max_size=50), "instance_id": hex_id},
    optional={
        "region": st.sampled_from(["us-east-1", "eu-west-1"]),
        "monthly_cost_usd": st.floats(min_value=0, max_value=1e7, allow_nan=False),
        "kind": st.text(max_size=20),
        "summary": st.text(max_size=300),
    },
)


@settings(max_examples=300, deadline=None)
@given(valid_alert)
def test_every_valid_alert_round_trips(data: dict[str, Any]) -> None:
    alert = parse_alert_line(json.dumps(data), 1)
    assert alert == Alert.model_validate(data)
    again = parse_alert_line(alert.model_dump_json(exclude_none=True), 1)
    assert again == alert


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=10,
)


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.text(max_size=200), json_values.map(json.dumps), st.binary(max_size=100).map(repr)))
def test_any_line_is_an_alert_or_a_clear_invalid_alert(line: str) -> None:
    try:
        alert = parse_alert_line(line, 3)
    except InvalidAlert as exc:
        assert exc.line == 3
        assert exc.reason
    else:
        assert alert.instance_id is not None
        assert alert.instance_id == alert.resource_id
        assert alert.instance_id.startswith("i-")
        assert all(c in string.hexdigits for c in alert.instance_id[2:])


@pytest.mark.parametrize(
    ("fields", "resource_id", "resource_type"),
    [
        ({"resource_id": "vol-0123456789abcdef0"}, "vol-0123456789abcdef0", "volume"),
        ({"resource_id": "eipalloc-0123abcd"}, "eipalloc-0123abcd", "address"),
        ({"resource_id": "arn:aws:rds:us-east-1:123456789012:db:dev-pg"}, "dev-pg", "db_instance"),
        ({"resource_id": "dev-pg", "resource_type": "db_instance"}, "dev-pg", "db_instance"),
        ({"resource_id": "Vol-Data", "resource_type": "db_instance"}, "vol-data", "db_instance"),  # an RDS name
        ({"resource_id": "i-0123456789abcdef0"}, "i-0123456789abcdef0", "instance"),
        ({"instance_id": "i-0123abcd"}, "i-0123abcd", "instance"),
    ],
)
def test_an_alert_names_its_resource_by_id_and_kind(
    fields: dict[str, str], resource_id: str, resource_type: str
) -> None:
    alert = parse_alert_line(json.dumps({"alert_id": "a", **fields}), 1)
    assert (alert.resource_id, alert.resource_type) == (resource_id, resource_type)
    assert alert.instance_id == (resource_id if resource_type == "instance" else None)


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"resource_id": "dev-pg"}, "resource_type is needed"),
        ({"resource_id": "vol-0123abcd", "resource_type": "address"}, "does not match the id"),
        ({"resource_id": "vol-xyz"}, "resource_type is needed"),
        ({"resource_id": "vol-xyz", "resource_type": "volume"}, "is not a valid volume id"),
        ({"resource_id": "vol-12345678\n", "resource_type": "volume"}, "is not a valid volume id"),
        (
            {"resource_id": "arn:aws:rds:eu-west-1:123456789012:db:reports", "region": "us-east-1"},
            "the ARN is in eu-west-1",
        ),
        ({"resource_id": "vol-0123abcd", "instance_id": "i-0123abcd"}, "instance_id given for a volume"),
        ({"resource_id": "i-0123abcd", "instance_id": "i-0123abce"}, "name different instances"),
        ({"resource_id": "bad--name", "resource_type": "db_instance"}, "is not a valid db_instance id"),
        ({"resource_id": "vol-0123abcd", "resource_type": "bucket"}, "resource_type"),
    ],
)
def test_a_resource_that_cannot_be_told_is_invalid_input(fields: dict[str, str], problem: str) -> None:
    with pytest.raises(InvalidAlert) as caught:
        parse_alert_line(json.dumps({"alert_id": "a", **fields}), 2)
    assert problem in caught.value.reason
