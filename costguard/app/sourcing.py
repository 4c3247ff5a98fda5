"""One source alert through the graph: parsed, fanned out where it names a scope, summarised, recorded.

Shared by `costguard watch` (a queue message) and `costguard process` (a line of a file). A source alert's
threads derive from its source id, so the same alert delivered twice runs nothing twice: finished threads
report their outcome, paused ones stay paused, interrupted ones resume.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime

from costguard import errors
from costguard.app.fanout import expand
from costguard.app.runner import CostGuard
from costguard.app.sources import (
    Ignored,
    InvalidMessage,
    Parsed,
    ResourceAlert,
    ScopeAlert,
    parse_message,
    source_id_of,
    to_alert,
)
from costguard.errors import ConfigError
from costguard.state import Alert, Outcome, SourceOutcome
from costguard.tools.cloud import Ec2Cloud
from costguard.tools.pricing import PriceList
from costguard.tools.store.sources import record_source


@dataclass(frozen=True)
class Handled:
    """A source alert's outcome and the outcomes of the threads it started."""

    source: SourceOutcome
    outcomes: list[Outcome]

    @property
    def durable(self) -> bool:
        """Every thread finished or paused for review: the message may go (else it comes back and resumes)."""
        return self.source.status != "in_progress"


def retryable(outcome: Outcome) -> bool:
    """A failure worth another delivery (the model or the cloud was unreachable); not a refusal or a bug."""
    error = getattr(errors, outcome.error_class or "", None)
    return outcome.status == "failed" and isinstance(error, type) and issubclass(error, errors.RetryableError)


def summarise(
    source_id: str, kind: str, outcomes: list[Outcome], *, message_id: str | None, note: str
) -> SourceOutcome:
    """The source's outcome from its children's."""
    by_status = Counter(o.status for o in outcomes)
    proposed = sum(o.savings_usd_per_month or 0 for o in outcomes if o.digest)
    realised = sum(o.savings_usd_per_month or 0 for o in outcomes if o.status == "executed")
    counts = ", ".join(f"{n} {status}" for status, n in sorted(by_status.items())) or "no resource to look at"
    return SourceOutcome(
        source_id=source_id,
        source_kind=kind,
        status="in_progress" if any(retryable(o) for o in outcomes) else "handled",
        reason=f"{note}: {counts}" if note else counts,
        message_id=message_id,
        children=tuple(o.thread_id for o in outcomes),
        by_status=dict(sorted(by_status.items())),
        savings_proposed_usd_per_month=round(proposed, 2),
        savings_realised_usd_per_month=round(realised, 2),
    )


class SourceRunner:
    """Runs source alerts through a CostGuard; the cloud and prices are for the fan-out's read-only scan."""

    def __init__(
        self,
        guard: CostGuard,
        cloud: Ec2Cloud | None,
        prices: PriceList,
        *,
        default_region: str,
        now: datetime | None = None,
    ) -> None:
        self.guard = guard
        self.cloud = cloud
        self.prices = prices
        self.default_region = default_region
        self._now = now

    def handle_body(self, body: str, *, message_id: str) -> Handled:
        """One message body: malformed → `invalid_input` (recorded, audited, never run)."""
        try:
            parsed = parse_message(body)
        except InvalidMessage as exc:
            source = SourceOutcome(
                source_id=f"message:{message_id}",
                source_kind="unknown",
                status="invalid_input",
                reason=exc.reason,
                message_id=message_id,
            )
            record_source(self.guard.deps.store, source)
            return Handled(source, [])
        return self.handle(parsed, message_id=message_id)

    def handle(self, parsed: Parsed, *, message_id: str | None = None) -> Handled:
        source_id = source_id_of(parsed)
        if isinstance(parsed, Ignored):
            kind = source_id.split(":", 1)[0]
            source = SourceOutcome(
                source_id=source_id, source_kind=kind, status="ignored", reason=parsed.reason, message_id=message_id
            )
            record_source(self.guard.deps.store, source)
            return Handled(source, [])
        alerts, kind, note = self._alerts(parsed)
        outcomes = [self.guard.process_alert(alert) for alert in alerts]
        source = summarise(source_id, kind, outcomes, message_id=message_id, note=note)
        record_source(self.guard.deps.store, source)
        return Handled(source, outcomes)

    def _alerts(self, parsed: Alert | ResourceAlert | ScopeAlert) -> tuple[list[Alert], str, str]:
        if isinstance(parsed, Alert):
            return [parsed], "costguard", ""
        if isinstance(parsed, ResourceAlert):
            return [to_alert(parsed)], parsed.source_kind, f"{parsed.resource_id} in {parsed.region}"
        if self.cloud is None:
            raise ConfigError("a scope alert fans out by a scan of the account, which needs the EC2 cloud")
        now = self._now or self.guard.deps.clock()
        fan = expand(
            parsed, self.cloud, self.prices, default_region=self.default_region, now=now, policy=self.guard.deps.policy
        )
        return fan.alerts, parsed.source_kind, fan.note
