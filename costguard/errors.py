"""The error taxonomy: every failure costguard raises is one of these classes.

How each is routed (the design's error table):
  critical   CriticalError     alert a human, stop the thread in `failed`, audit record
  retryable  RetryableError    backoff, at most 3 attempts, then `failed`
  minor      MinorError        logged, the run goes on
  (low confidence is not an exception: it is a routing decision, see policy.evaluate)
What a user can cause (a bad alert, policy, flag or answer; a server that will not start) ends the
command with one line and exit code 1 (`costguard.cli`); a bug is an InternalError.
"""

from __future__ import annotations


class CostguardError(Exception):
    """Base class of costguard's own errors."""


# --- routed inside a run ---------------------------------------------------------------------


class CriticalError(CostguardError):
    """Production impact, a rail tripped at execute time, a permission failure: stop and alert."""


class RailTrippedAtExecution(CriticalError):
    """Fresh facts at execute time no longer allow the approved plan."""

    def __init__(self, instance_id: str, rules: tuple[str, ...]) -> None:
        super().__init__(f"rails refused {instance_id} at execution: {', '.join(rules)}")
        self.instance_id = instance_id
        self.rules = rules


class CloudPermissionError(CriticalError):
    """The cloud API refused the call for lack of permission (a read too: a gap would hide it)."""


class UndoRefused(CriticalError):
    """The instance is no longer in the state costguard left it in: undoing could clobber someone's change."""


class RetryableError(CostguardError):
    """Throttling, 5xx, timeouts, an unreachable endpoint: worth another attempt."""


class CloudUnavailable(RetryableError):
    """The cloud API could not be reached or answered with a server error."""


class ResourceBusy(RetryableError):
    """Another thread is acting on the same resource right now: wait, then find it handled."""


class ModelUnavailable(RetryableError):
    """The model server could not be reached, timed out, or rate-limited us."""


class MinorError(CostguardError):
    """Non-blocking: a missing datum, a notifier or metrics failure."""


class CloudError(CostguardError):
    """Any other cloud error (a bad request, an unknown instance type, ...)."""


class ResourceNotFound(CloudError):
    """The cloud says the resource does not exist (a typed answer, not a message to search)."""


# --- what a user can cause: one line, exit code 1 -----------------------------------------------


class InvalidAlert(CostguardError):
    """An alert line that is not valid JSON or does not match the schema."""

    def __init__(self, line: int, reason: str, alert_id: str | None = None) -> None:
        super().__init__(f"line {line}: {reason}")
        self.line = line
        self.reason = reason
        self.alert_id = alert_id  # the line's own id, when it has a readable one


class ReviewError(CostguardError):
    """A review command that cannot be carried out (no such thread, not awaiting review, ...)."""


class ConfigError(CostguardError):
    """A setting, file or flag that costguard cannot use."""


class PolicyError(ConfigError):
    """The policy file is missing, unreadable or invalid."""


class PriceListError(ConfigError):
    """The price list is missing or malformed."""


class SetupError(CostguardError):
    """A local server costguard starts (model, emulator) could not start or does not work."""


class ModelServerError(SetupError):
    """The local model server cannot be found, started, or reached, or dies or talks nonsense when asked."""


class BackendLoadError(SetupError):
    """No llama.cpp CPU backend of the build can run on this machine, or the requested one is missing."""


class EmulatorError(SetupError):
    """The local cloud emulator could not start."""


class DemoError(SetupError):
    """The demo cannot run (an endpoint that is not a local emulator, a model that cannot answer)."""


class WorkerDied(CostguardError):
    """A worker process of `process --workers` died; what it had started is resumable."""


# --- bugs ---------------------------------------------------------------------------------------


class InternalError(CostguardError):
    """An invariant does not hold: a bug in costguard, never a user's mistake."""


class RoutingError(InternalError):
    """The state does not say where to go: a bug, never a silent default."""
