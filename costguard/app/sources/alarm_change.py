"""A CloudWatch alarm state change, whichever AWS form it came in, and the alarm ARN it is keyed by."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from costguard.app.sources.errors import InvalidMessage
from costguard.app.sources.text import is_printable, quoted

State = Literal["OK", "ALARM", "INSUFFICIENT_DATA"]
ALARM_ARN = re.compile(
    r"arn:aws[a-z-]*:cloudwatch:([a-z]{2}(?:-[a-z]+)+-\d{1,2}):(\d{12}):alarm:.+", re.ASCII | re.DOTALL
)


@dataclass(frozen=True)
class Metric:
    namespace: str | None
    name: str | None
    dimensions: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class AlarmChange:
    """One alarm state change, whichever form it came in."""

    name: str
    arn: str
    account: str
    region: str
    new_state: State
    old_state: State | None
    changed_at: datetime
    reason: str | None
    description: str | None
    metrics: tuple[Metric, ...]


def arn_parts(arn: str) -> tuple[str, str]:
    """(Region code, account) of a CloudWatch alarm ARN; InvalidMessage for anything else."""
    match = ALARM_ARN.fullmatch(arn)
    if match is None or not is_printable(arn):
        raise InvalidMessage(f"{quoted(arn)} is not a CloudWatch alarm ARN")
    return match[1], match[2]
