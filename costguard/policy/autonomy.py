"""Autonomy earned by evidence: each class of plans (resource kind, action, savings band) acts without a person
only once reviewers' agreement has earned it. Pure: the evidence comes in, a verdict goes out.

A review that approves the plan as proposed agrees; an edit, a rejection, and an undo of an executed action
disagree. A class has earned autonomy when, counting only what happened since its last disagreement, it has at
least `min_reviews` agreeing reviews, and the Wilson score lower bound of its agreement rate over all its reviews is
at least `min_agreement_lower_bound`. A disagreement after it had earned revokes it until the evidence is back.
Evidence never relaxes a rail: protected resources, the savings threshold and irreversible actions keep their rules
(this only ever adds a reason for a person).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Vote = Literal["agree", "edit", "reject", "undo"]
Standing = Literal["earned", "not_yet", "revoked"]
Z_95 = 1.959963984540054  # two-sided 95 %
MAX_MORE = 100_000  # "more needed" stops counting here (a bound of 1.0 is never reached)


class AutonomyPolicy(BaseModel):
    """The `[autonomy]` section of the policy. Off by default: the `autonomous` phase then works as before."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    required: bool = False  # true: in the autonomous phase, a class acts alone only when it has earned it
    min_reviews: int = Field(default=20, ge=1, le=100_000)
    min_agreement_lower_bound: float = Field(default=0.95, ge=0, le=1)
    savings_bands_usd: tuple[float, ...] = (10.0, 100.0, 1000.0)  # upper bounds of the bands, per month
    # a grace period before a plan acts without a person (0: act at once). The resource is tagged with the plan
    # and its due time, its owner told; removing the tag, or adding the opt-out tag, calls it off
    grace_period_hours: float = Field(default=0.0, ge=0, le=24 * 90)
    owner_tags: tuple[str, ...] = ("owner", "contact")  # tag keys naming the owner to tell (the first found)
    opt_out_tag: str = Field(default="costguard:opt-out", min_length=1, max_length=128)


def wilson_lower_bound(agree: int, total: int, z: float = Z_95) -> float:
    """The Wilson score interval's lower bound for `agree` successes in `total` trials (0 with no trials)."""
    if total <= 0:
        return 0.0
    p = agree / total
    denominator = 1 + z * z / total
    centre = p + z * z / (2 * total)
    margin = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total))
    return max(0.0, (centre - margin) / denominator)


def savings_band(savings: float | None, bands: Sequence[float]) -> str:
    """`<=10`, `<=100`, ... or `>1000`; `unknown` without a figure."""
    if savings is None:
        return "unknown"
    for upper in sorted(bands):
        if savings <= upper:
            return f"<={upper:g}"
    return f">{max(bands):g}" if bands else "any"


def plan_class(resource_type: str, action: str, savings: float | None, policy: AutonomyPolicy) -> str:
    return f"{resource_type}:{action}:{savings_band(savings, policy.savings_bands_usd)}"


@dataclass(frozen=True)
class Standings:
    """One class's evidence and verdict."""

    plan_class: str
    reviews: int
    agreeing: int
    undos: int
    streak: int  # agreeing reviews since the last disagreement
    lower_bound: float
    standing: Standing
    more_needed: int  # agreeing reviews still needed (0 when earned)

    @property
    def agreement_rate(self) -> float:
        return self.agreeing / self.reviews if self.reviews else 0.0


def _earned(agreeing: int, reviews: int, streak: int, policy: AutonomyPolicy) -> bool:
    return streak >= policy.min_reviews and wilson_lower_bound(agreeing, reviews) >= policy.min_agreement_lower_bound


def standing(plan_class_: str, votes: Iterable[Vote | str], policy: AutonomyPolicy) -> Standings:
    """The verdict for one class from its votes in the order they were cast."""
    reviews = agreeing = undos = streak = 0
    was_earned = revoked = False
    for vote in votes:
        if vote == "undo":
            undos += 1  # a disagreement after the fact: it counts against the class, as a review would
        reviews += 1
        if vote == "agree":
            agreeing += 1
            streak += 1
        else:
            streak = 0
            revoked = revoked or was_earned
        if _earned(agreeing, reviews, streak, policy):
            was_earned, revoked = True, False
    now_earned = _earned(agreeing, reviews, streak, policy)
    more = 0
    while not _earned(agreeing + more, reviews + more, streak + more, policy) and more < MAX_MORE:
        more += 1
    verdict: Standing = "earned" if now_earned else ("revoked" if revoked else "not_yet")
    return Standings(
        plan_class_, reviews, agreeing, undos, streak, wilson_lower_bound(agreeing, reviews), verdict, more
    )
