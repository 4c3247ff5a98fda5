"""The one error of the alert sources: a message costguard cannot read."""

from __future__ import annotations

from costguard.app.sources.text import one_line
from costguard.errors import CostguardError

REASON_MAX = 300


class InvalidMessage(CostguardError):
    """A queue message that is malformed, unknown, or not what its envelope claims.

    The reason is one short line: it reaches outcomes and the audit trail, and may quote untrusted input.
    """

    def __init__(self, reason: str) -> None:
        self.reason = one_line(reason, REASON_MAX) or "unreadable message"
        super().__init__(self.reason)
