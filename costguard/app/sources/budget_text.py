"""The lines of an AWS Budgets notification: `Key: value` fields, the account line and the dated heading.

The text is written by Budgets for people; these are the lines it writes, compared after folding case and spacing.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from costguard.app.sources.errors import InvalidMessage

_FIELDS = {
    "budget name": "name",
    "budget type": "type",
    "budgeted amount": "budgeted",
    "alert type": "alert_type",
    "alert threshold": "threshold",
    "actual amount": "actual",
    "forecasted amount": "forecasted",
}
_ACCOUNT_LINE = re.compile(r"\s*AWS Account:?\s*(\d{12})\s*", re.ASCII)
_DATE_LINE = re.compile(r"\s*AWS Budget Notification\s+([A-Za-z]+)\s+(\d{1,2}),\s*(\d{4})\s*", re.ASCII)
_MONTHS = (
    "january", "february", "march", "april", "may", "june",
    "july", "august", "september", "october", "november", "december",
)  # fmt: skip


def _field(line: str) -> tuple[str | None, str]:
    key, colon, value = line.partition(":")
    return (_FIELDS.get(" ".join(key.split()).lower()) if colon else None), value.strip()


def is_budget_text(text: str) -> bool:
    """True when the text has a `Budget Name:` line: the mark of a Budgets notification."""
    return any(_field(line)[0] == "name" for line in text.splitlines())


def fields_of(text: str) -> dict[str, str]:
    """The known `Key: value` lines; a repeated one is refused rather than one of them picked."""
    found: dict[str, str] = {}
    for line in text.splitlines():
        name, value = _field(line)
        if name is None:
            continue
        if name in found:
            raise InvalidMessage(f"budget notification repeats its {name.replace('_', ' ')} line")
        found[name] = value
    return found


def account_named(text: str) -> str | None:
    """The account of the `AWS Account 123456789012` line, if the text has one."""
    named = {m[1] for line in text.splitlines() if (m := _ACCOUNT_LINE.fullmatch(line))}
    if len(named) > 1:
        raise InvalidMessage("budget notification names more than one AWS Account")
    return named.pop() if named else None


def notified_on(text: str) -> datetime | None:
    """The day in the `AWS Budget Notification March 05, 2023` heading; a heading that does not read is no date."""
    for line in text.splitlines():
        match = _DATE_LINE.fullmatch(line)
        if match and match[1].lower() in _MONTHS:
            try:
                return datetime(int(match[3]), _MONTHS.index(match[1].lower()) + 1, int(match[2]), tzinfo=UTC)
            except ValueError:
                return None
    return None
