"""AWS Region display names and codes, for CloudWatch's SNS alarms (they name the Region, not its code).

The table is every commercial Region (the `aws` partition) as botocore 1.44 lists them; a test holds it to
botocore's own list. Older messages say "EU (Ireland)" or "EU - Ireland" where the console now says
"Europe (Ireland)"; names are compared after folding case, accents and punctuation, so each spelling maps.
https://docs.aws.amazon.com/global-infrastructure/latest/regions/aws-regions.html
"""

from __future__ import annotations

import re
import unicodedata

REGION_NAMES: dict[str, str] = {
    "af-south-1": "Africa (Cape Town)",
    "ap-east-1": "Asia Pacific (Hong Kong)",
    "ap-east-2": "Asia Pacific (Taipei)",
    "ap-northeast-1": "Asia Pacific (Tokyo)",
    "ap-northeast-2": "Asia Pacific (Seoul)",
    "ap-northeast-3": "Asia Pacific (Osaka)",
    "ap-south-1": "Asia Pacific (Mumbai)",
    "ap-south-2": "Asia Pacific (Hyderabad)",
    "ap-southeast-1": "Asia Pacific (Singapore)",
    "ap-southeast-2": "Asia Pacific (Sydney)",
    "ap-southeast-3": "Asia Pacific (Jakarta)",
    "ap-southeast-4": "Asia Pacific (Melbourne)",
    "ap-southeast-5": "Asia Pacific (Malaysia)",
    "ap-southeast-6": "Asia Pacific (New Zealand)",
    "ap-southeast-7": "Asia Pacific (Thailand)",
    "ca-central-1": "Canada (Central)",
    "ca-west-1": "Canada West (Calgary)",
    "eu-central-1": "Europe (Frankfurt)",
    "eu-central-2": "Europe (Zurich)",
    "eu-north-1": "Europe (Stockholm)",
    "eu-south-1": "Europe (Milan)",
    "eu-south-2": "Europe (Spain)",
    "eu-west-1": "Europe (Ireland)",
    "eu-west-2": "Europe (London)",
    "eu-west-3": "Europe (Paris)",
    "il-central-1": "Israel (Tel Aviv)",
    "me-central-1": "Middle East (UAE)",
    "me-south-1": "Middle East (Bahrain)",
    "mx-central-1": "Mexico (Central)",
    "sa-east-1": "South America (São Paulo)",
    "us-east-1": "US East (N. Virginia)",
    "us-east-2": "US East (Ohio)",
    "us-west-1": "US West (N. California)",
    "us-west-2": "US West (Oregon)",
}
REGION_CODE_PATTERN = re.compile(r"[a-z]{2}(?:-[a-z]+)+-\d{1,2}")


def fold(name: str) -> str:
    """A display name reduced to lowercase ASCII words: accents, punctuation and the "Europe"/"EU" split gone."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    words = re.sub(r"[^a-z0-9]+", " ", ascii_name.lower()).split()
    if words[:1] == ["europe"]:
        words[0] = "eu"
    return " ".join(words)


_BY_FOLDED_NAME = {fold(name): code for code, name in REGION_NAMES.items()}


def display_name(code: str) -> str:
    """The console name of a commercial Region code; KeyError for any other code."""
    return REGION_NAMES[code]


def region_code(name: str) -> str | None:
    """The code of a commercial Region given by display name (any spelling above) or by code; None if unknown."""
    stripped = name.strip()
    if stripped in REGION_NAMES:
        return stripped
    return _BY_FOLDED_NAME.get(fold(stripped))


def normalize_region(value: str | None) -> str | None:
    """A Region as Cost Explorer reports it, as a code; None for "global"-like or unrecognisable values.

    A well-formed code not in the table (a Region newer than the table) is kept: it narrows a scan, never widens it.
    """
    if value is None:
        return None
    known = region_code(value)
    if known is not None:
        return known
    candidate = value.strip()
    return candidate if REGION_CODE_PATTERN.fullmatch(candidate) else None
