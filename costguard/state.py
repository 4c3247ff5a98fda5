"""The graph state and the public pydantic models (alert, facts, decision, plan, review, outcome).

This module imports nothing of the project: it is the contract every other layer shares.
"""

from __future__ import annotations

import hashlib
import json
import math
import operator
from datetime import datetime
from typing import Annotated, Any, Literal, get_args

from langchain_core.messages import AnyMessage
from langgraph.graph.message import add_messages
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from typing_extensions import TypedDict

Action = Literal["shutdown", "resize", "monitor", "investigate"]
DisruptiveAction = Literal["shutdown", "resize"]
Phase = Literal["observe", "reversible", "autonomous"]
Status = Literal[
    "observed",
    "dry_run",
    "executed",
    "rejected",
    "investigation_required",
    "awaiting_review",
    "review_rejected",
    "review_expired",
    "monitoring",
    "invalid_input",
    "failed",
    "rolled_back",
]
TERMINAL_STATUSES: frozenset[str] = frozenset(get_args(Status)) - {"awaiting_review"}
INSTANCE_ID_PATTERN = r"^i-(?:[0-9a-f]{8}|[0-9a-f]{17})$"
ALERT_ID_MAX = 200


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def validation_problems(exc: ValidationError, whole: str = "value") -> str:
    """A ValidationError as one line: `field: problem; field: problem` (`whole` names a problem of the whole)."""
    return "; ".join(f"{'.'.join(str(p) for p in err['loc']) or whole}: {err['msg']}" for err in exc.errors())


def alert_problems(exc: ValidationError) -> str:
    """A ValidationError of an alert as one line."""
    return validation_problems(exc, "alert")


def thread_id_for(alert_id: str) -> str:
    """One thread per alert: the same alert_id always maps to the same thread."""
    return f"alert:{alert_id}"


def canonical_json(data: Any) -> str:
    """JSON with sorted keys and no whitespace: the input of every digest."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class Alert(_Strict):
    """A cloud cost alert: one JSON object per line of a `.jsonl` file."""

    alert_id: str = Field(min_length=1, max_length=ALERT_ID_MAX)
    instance_id: str = Field(pattern=INSTANCE_ID_PATTERN)
    region: str | None = Field(default=None, min_length=1, max_length=50)
    monthly_cost_usd: float | None = Field(default=None, ge=0)
    kind: str = Field(default="cost_anomaly", max_length=100)
    summary: str = Field(default="", max_length=4000)
    observed_at: datetime | None = None

    @field_validator("monthly_cost_usd")
    @classmethod
    def _finite(cls, value: float | None) -> float | None:
        if value is not None and not math.isfinite(value):
            raise ValueError("must be a finite number")
        return value


class Facts(_Strict):
    """What the cloud says about the alert's instance, read by deterministic code.

    `None` means "not known": every rail treats an unknown as the less permissive answer.
    """

    instance_id: str
    region: str
    exists: bool
    instance_type: str | None = None
    state: str | None = None
    tags: dict[str, str] | None = None  # None: the tags could not be read (fail closed)
    root_device_type: str | None = None
    disable_api_stop: bool | None = None
    architecture: str | None = None
    cpu_avg_pct: float | None = None
    hourly_price_usd: float | None = None
    volume_ids: tuple[str, ...] = ()
    launch_time: datetime | None = None
    gaps: tuple[str, ...] = ()  # data that could not be read, named


class DecisionParameters(_Strict):
    instance_id: str
    target_instance_type: str | None = None


class Decision(_Strict):
    """The model's proposal. Strict: extra keys are rejected."""

    action: Action
    confidence: float = Field(ge=0, le=1)
    reasoning: str = Field(max_length=4000)
    parameters: DecisionParameters
    requires_approval: bool


UNUSABLE_PREFIX = "model answer unusable: "


def unusable_decision(instance_id: str, why: str) -> Decision:
    """What an unusable model answer becomes: `investigate` at confidence 0, so the rails send it on."""
    return Decision(
        action="investigate",
        confidence=0.0,
        reasoning=f"{UNUSABLE_PREFIX}{why}"[:4000],
        parameters=DecisionParameters(instance_id=instance_id),
        requires_approval=True,
    )


class Verdict(_Strict):
    """What the policy made of a decision: where to go next and why."""

    route: Literal["execute", "human_review", "investigate", "report"]
    status: Status | None = None  # the terminal status when route == "report"
    rules: tuple[str, ...] = ()  # every rule that refused or escalated, by name
    reason: str = ""
    savings_usd_per_month: float | None = None


class Plan(_Strict):
    """An executable plan. Its digest binds approvals to exactly these fields."""

    alert_id: str
    thread_id: str
    instance_id: str
    region: str
    action: DisruptiveAction
    current_instance_type: str
    target_instance_type: str | None = None
    savings_usd_per_month: float | None
    requires_approval: bool
    approval_reasons: tuple[str, ...] = ()
    phase: Phase
    policy_hash: str
    created_at: datetime
    expires_at: datetime

    @property
    def digest(self) -> str:
        return sha256_hex(canonical_json(self.model_dump(mode="json")))


class PlanEdit(_Strict):
    """What a reviewer may change in a plan: the action and the resize target."""

    action: DisruptiveAction
    target_instance_type: str | None = None


class ReviewResponse(_Strict):
    """A human's answer to a review request."""

    decision: Literal["approve", "reject", "edit"]
    reviewer: str = Field(min_length=1, max_length=200)
    digest: str = Field(pattern=r"^[0-9a-f]{64}$")
    edited_plan: PlanEdit | None = None
    note: str = Field(default="", max_length=2000)


class Approval(_Strict):
    """A checked approval: who allowed which plan, and when."""

    digest: str
    authorized_by: str
    approved_at: datetime
    mode: Literal["human", "autonomous"]


class ReviewResult(_Strict):
    """What became of the last review response."""

    status: Literal["approved", "rejected", "expired", "refused", "edit_refused"]
    reviewer: str | None = None
    reason: str = ""
    rules: tuple[str, ...] = ()


class Result(_Strict):
    """The terminal result a node reached; `report` turns it into the Outcome."""

    status: Status
    reason: str = ""
    rules: tuple[str, ...] = ()
    executed: bool = False
    snapshot_ids: tuple[str, ...] = ()
    error_class: str | None = None


class Outcome(_Strict):
    """The result of one alert."""

    alert_id: str
    thread_id: str
    status: Status
    action: Action | None = None
    instance_id: str | None = None
    executed: bool = False
    reason: str = ""
    rules: tuple[str, ...] = ()
    savings_usd_per_month: float | None = None
    digest: str | None = None
    snapshot_ids: tuple[str, ...] = ()
    error_class: str | None = None
    line: int | None = None
    agent_version: str | None = None  # package version and policy hash, to trace regressions


SourceStatus = Literal["handled", "in_progress", "ignored", "invalid_input"]


class SourceOutcome(_Strict):
    """What became of one source alert (a queue message, a line of a file): the threads it started, summarised.

    An alarm on one instance starts one thread; an anomaly or a budget fans out into one thread per resource
    its scope covers; an alert that asks for nothing is `ignored`; a malformed one is `invalid_input`.
    `in_progress`: a thread it started has not finished, or failed in a way worth another delivery.
    """

    source_id: str
    source_kind: str
    status: SourceStatus
    reason: str = ""
    message_id: str | None = None
    children: tuple[str, ...] = ()  # thread ids, one per resource
    by_status: dict[str, int] = Field(default_factory=dict)  # children by outcome status
    savings_proposed_usd_per_month: float = 0.0
    savings_realised_usd_per_month: float = 0.0


class GraphInput(TypedDict):
    """What a run starts from: one alert."""

    alert: Alert


class CostState(TypedDict, total=False):
    """The graph state: small, JSON-friendly, one thread per alert.

    Only `findings` accumulates (a reducer); every other key is overwritten.
    """

    alert: Alert
    facts: Facts | None
    decision: Decision | None
    raw_model_output: str | None
    investigation_rounds: int
    findings: Annotated[list[str], operator.add]
    verdict: Verdict | None
    plan: Plan | None
    approval: Approval | None
    review: ReviewResult | None
    review_refusals: int
    result: Result | None
    outcome: Outcome | None
    messages: Annotated[list[AnyMessage], add_messages]  # the story, for chat front ends (nodes/story.py)
