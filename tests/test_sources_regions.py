"""Region display names (as CloudWatch's SNS alarms give them) and codes round-trip, in every spelling AWS used.

https://docs.aws.amazon.com/global-infrastructure/latest/regions/aws-regions.html; the table is held to botocore's
own list of the `aws` partition.
"""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path

import botocore
import pytest
from hypothesis import given
from hypothesis import strategies as st

from costguard.app.sources import display_name, region_code
from costguard.app.sources.regions import REGION_NAMES, fold, normalize_region


def test_the_table_is_every_commercial_region_botocore_knows() -> None:
    endpoints = json.loads((Path(botocore.__file__).parent / "data" / "endpoints.json").read_text(encoding="utf-8"))
    commercial = next(p for p in endpoints["partitions"] if p["partition"] == "aws")
    botocore_names = {code: info["description"] for code, info in commercial["regions"].items()}
    ascii_table = {
        code: unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
        for code, name in REGION_NAMES.items()
    }
    assert ascii_table == botocore_names


def test_no_two_regions_fold_to_the_same_name() -> None:
    assert len({fold(name) for name in REGION_NAMES.values()}) == len(REGION_NAMES)


def _respell(name: str, style: int) -> str:
    if style == 0:
        return name
    if style == 1:
        return name.upper()
    if style == 2:
        return "  " + name.lower().replace(" ", "   ") + " "
    if style == 3:
        return unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()  # "Sao Paulo"
    if style == 4:
        return name.replace("Europe (", "EU (")  # CloudWatch's older spelling
    return name.replace("Europe (", "EU - ").replace(")", "")  # older still: "EU - Ireland"


@given(st.sampled_from(sorted(REGION_NAMES)), st.integers(min_value=0, max_value=5))
def test_every_region_round_trips_through_its_display_name(code: str, style: int) -> None:
    assert region_code(_respell(display_name(code), style)) == code
    assert region_code(code) == code


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("US East (N. Virginia)", "us-east-1"),
        ("EU (Ireland)", "eu-west-1"),
        ("EU - Ireland", "eu-west-1"),
        ("Europe (Frankfurt)", "eu-central-1"),
        ("South America (São Paulo)", "sa-east-1"),
        ("South America (Sao Paulo)", "sa-east-1"),
        ("Asia Pacific (Tokyo)", "ap-northeast-1"),
        ("Atlantis (Central)", None),
        ("", None),
        ("us-east-1 ", "us-east-1"),
    ],
)
def test_known_spellings(name: str, code: str | None) -> None:
    assert region_code(name) == code


def test_display_name_refuses_an_unknown_code() -> None:
    with pytest.raises(KeyError):
        display_name("us-gov-west-1")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("us-west-2", "us-west-2"),
        ("US West (Oregon)", "us-west-2"),
        ("global", None),
        ("NoRegion", None),
        ("eu-future-3", "eu-future-3"),
        ("US-WEST-2x", None),
    ],
)
def test_cost_explorer_regions_normalize_to_codes(value: str | None, expected: str | None) -> None:
    assert normalize_region(value) == expected


@given(st.text(max_size=60))
def test_any_text_maps_to_a_known_code_or_none(text: str) -> None:
    code = region_code(text)
    assert code is None or code in REGION_NAMES
