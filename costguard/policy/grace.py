"""The grace period before a plan acts without a person (Cloud Custodian's mark-for-op). Pure.

An autonomous plan is scheduled instead of executed: the resource is tagged `MARK_TAG = "<action>@<due time>"`, its
owner (the first owner tag the policy names) is told once, and at the due time the plan is checked again on fresh
facts. It is called off when the mark was removed or changed, or the opt-out tag was added (`cancelled`); refused
when a rail now says no, or the policy changed meanwhile (`rejected`); handed to a person when the fresh facts
now need one (busy, tagged production, ...); otherwise it goes on to `execute`, which checks the rails once more.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from costguard.policy.model import Policy
from costguard.state import Approval, Facts, Plan, Status

MARK_TAG = "costguard:planned"
_DUE_FORMAT = "%Y-%m-%dT%H:%M:%SZ"  # the due time in a mark (a tag value allows letters, digits and `@:-`)


def grace_applies(plan: Plan | None, approval: Approval | None, policy: Policy) -> bool:
    """A plan allowed to act alone waits out the grace period; a person's approval, or a dry run, does not."""
    return (
        plan is not None
        and approval is not None
        and approval.mode == "autonomous"
        and policy.autonomy.grace_period_hours > 0
        and not policy.dry_run
    )


def due_time(plan: Plan, policy: Policy) -> datetime:
    """When the plan may act: its creation plus the grace period (the same however often the step re-runs)."""
    return plan.created_at + timedelta(hours=policy.autonomy.grace_period_hours)


def mark_value(plan: Plan, due: datetime) -> str:
    """The mark tag's value: the action and its due time (a tag value allows letters, digits and `@:-`)."""
    return f"{plan.action}@{due.strftime(_DUE_FORMAT)}"


def waiting_mark(tags: dict[str, str] | None, plan: Plan, own_mark: str, now: datetime) -> str | None:
    """Another plan's mark for the same action whose due time is still ahead (a plan waiting its grace period), or
    None. A later alert for the resource then joins it: a new mark would push the due time on, cancel the waiting
    plan and tell the owner again. Our own mark (a re-run) and a mark whose time has passed (left after acting) are
    not in the way; a mark for another action is replaced (the newer plan is announced)."""
    value = (tags or {}).get(MARK_TAG)
    if value is None or value == own_mark:
        return None
    action, _, when = value.partition("@")
    try:
        due = datetime.strptime(when, _DUE_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        return None
    return value if action == plan.action and due > now else None


def owner_of(tags: dict[str, str] | None, policy: Policy) -> str | None:
    """The owner to tell: the value of the first owner tag the policy names (keys compared without case)."""
    lowered = {key.lower(): value for key, value in (tags or {}).items() if value.strip()}
    for key in policy.autonomy.owner_tags:
        if key.lower() in lowered:
            return lowered[key.lower()].strip()
    return None


@dataclass(frozen=True)
class CalledOff:
    """Why a scheduled plan does not act at its due time."""

    status: Status  # "cancelled" (the owner said no) or "rejected" (the facts, or the policy, say no)
    rules: tuple[str, ...]
    reason: str


def called_off(mark: str, fresh: Facts, policy: Policy) -> CalledOff | None:
    """At the due time: did the owner call the plan off? (None: not by the tags; the rails are asked next.)"""
    if not fresh.exists:
        return CalledOff("rejected", ("resource_missing",), f"{fresh.resource_id} no longer exists")
    if fresh.tags is None:
        return CalledOff("rejected", ("tags_unknown",), f"the tags of {fresh.resource_id} could not be read")
    opt_out = policy.autonomy.opt_out_tag
    if opt_out in fresh.tags:
        return CalledOff("cancelled", ("opted_out",), f"{fresh.resource_id} carries the opt-out tag {opt_out!r}")
    if fresh.tags.get(MARK_TAG) != mark:
        now = fresh.tags.get(MARK_TAG)
        what = "was removed" if now is None else f"was changed to {now!r}"
        return CalledOff("cancelled", ("mark_removed",), f"the tag {MARK_TAG}={mark} {what}")
    return None


def policy_changed(plan: Plan, policy: Policy) -> CalledOff | None:
    """A plan allowed to act alone under one policy does not act under another (the next scan proposes again)."""
    if plan.policy_hash == policy.digest:
        return None
    reason = f"the policy changed since the plan was scheduled (made under {plan.policy_hash}, now {policy.digest})"
    return CalledOff("rejected", ("policy_changed",), reason)
