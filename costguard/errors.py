"""The error taxonomy: every failure costguard routes is one of these classes.

critical  -> alert a human, stop the thread in `failed`, audit record
retryable -> backoff, at most 3 attempts, then `failed`
minor     -> logged, the run goes on
(low confidence is not an exception: it is a routing decision, see policy.evaluate)
"""

from __future__ import annotations


class CostguardError(Exception):
    """Base class of costguard's own errors."""


class CriticalError(CostguardError):
    """Production impact, a rail tripped at execute time, a permission failure: stop and alert."""


class RailTrippedAtExecution(CriticalError):
    """Fresh facts at execute time no longer allow the approved plan."""

    def __init__(self, instance_id: str, rules: tuple[str, ...]) -> None:
        super().__init__(f"rails refused {instance_id} at execution: {', '.join(rules)}")
        self.instance_id = instance_id
        self.rules = rules


class CloudPermissionError(CriticalError):
    """The cloud API refused the call for lack of permission."""


class RetryableError(CostguardError):
    """Throttling, 5xx, timeouts, an unreachable endpoint: worth another attempt."""


class CloudUnavailable(RetryableError):
    """The cloud API could not be reached or answered with a server error."""


class ModelUnavailable(RetryableError):
    """The model server could not be reached, timed out, or rate-limited us."""


class MinorError(CostguardError):
    """Non-blocking: a missing datum, a notifier or metrics failure."""


class CloudError(CostguardError):
    """Any other cloud error (a bad request, an unknown instance type, ...)."""


class InvalidAlert(CostguardError):
    """An alert line that is not valid JSON or does not match the schema."""

    def __init__(self, line: int, reason: str, alert_id: str | None = None) -> None:
        super().__init__(f"line {line}: {reason}")
        self.line = line
        self.reason = reason
        self.alert_id = alert_id  # the line's own id, when it has a readable one


class ReviewError(CostguardError):
    """A review command that cannot be carried out (no such thread, not awaiting review, ...)."""
