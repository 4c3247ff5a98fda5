"""Dollar amounts as AWS Budgets writes them in text: `$1,234.56`, `$80`, `-$3.10`, `1234.56 USD`."""

from __future__ import annotations

import re
from decimal import Decimal

_AMOUNT = re.compile(
    r"(?P<sign>-)?\s*(?P<prefix>\$|USD)?\s*(?P<sign2>-)?\s*"
    r"(?P<whole>\d{1,3}(?:,\d{3}){1,5}|\d{1,15})(?:\.(?P<fraction>\d{1,6}))?"
    r"\s*(?P<suffix>USD)?",
    re.IGNORECASE | re.ASCII,
)
_PERCENT = re.compile(r"(?P<number>\d{1,15}(?:\.\d{1,6})?)\s*%", re.ASCII)
_COMPARISON = re.compile(r"^\s*(?:>=|<=|>|<|=)?\s*")


def parse_usd(text: str) -> float | None:
    """The amount in dollars, or None when `text` is not one dollar amount (units, another currency, words).

    The `$` or `USD` is required: a bare number could be hours or a percentage, and is not read as dollars.
    """
    match = _AMOUNT.fullmatch(text.strip())
    if match is None or (match["sign"] and match["sign2"]) or not (match["prefix"] or match["suffix"]):
        return None
    digits = match["whole"].replace(",", "") + "." + (match["fraction"] or "0")
    value = Decimal(digits)
    return float(-value if match["sign"] or match["sign2"] else value)


def parse_threshold(text: str) -> tuple[float | None, float | None] | None:
    """An alert threshold (`> $80.00` or `> 80%`) as (dollars, percent), or None if it is neither."""
    body = _COMPARISON.sub("", text, count=1).strip()
    percent = _PERCENT.fullmatch(body)
    if percent is not None:
        return None, float(percent["number"])
    dollars = parse_usd(body)
    return None if dollars is None else (dollars, None)
