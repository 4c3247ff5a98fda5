"""The graph state and the public pydantic models (alert, facts, decision, plan, review, outcome).

This module imports nothing of the project: it is the contract every other layer shares.
"""

from __future__ import annotations

import hashlib
import json
import math
import operator
import re
from datetime import datetime
from typing import Annotated, Any, Literal, get_args

from langchain_core.messages import AnyMessage
from langgraph.graph.message import add_messages
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from typing_extensions import TypedDict

Action = Literal["shutdown", "resize", "delete", "release", "monitor", "investigate"]
DisruptiveAction = Literal["shutdown", "resize", "delete", "release"]
# what an alert names: an EC2 instance, an EBS volume, an Elastic IP address, an RDS DB instance
ResourceType = Literal["instance", "volume", "address", "db_instance"]
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
    "scheduled",  # an autonomous plan waiting out its grace period (the owner was told; the watcher acts when due)
    "cancelled",  # a scheduled plan its owner called off (the mark tag removed, or the opt-out tag added)
]
WAITING_STATUSES: frozenset[str] = frozenset({"awaiting_review", "scheduled"})
TERMINAL_STATUSES: frozenset[str] = frozenset(get_args(Status)) - WAITING_STATUSES
INSTANCE_ID_PATTERN = r"^i-(?:[0-9a-f]{8}|[0-9a-f]{17})$"
_ID_PATTERNS: dict[str, re.Pattern[str]] = {
    "instance": re.compile(INSTANCE_ID_PATTERN),
    "volume": re.compile(r"^vol-(?:[0-9a-f]{8}|[0-9a-f]{17})$"),
    "address": re.compile(r"^eipalloc-(?:[0-9a-f]{8}|[0-9a-f]{17})$"),
    # an RDS DB instance identifier: a letter, then letters, digits, single hyphens; up to 63, no trailing hyphen
    "db_instance": re.compile(r"^[A-Za-z](?:[A-Za-z0-9]|-(?!-)){0,62}(?<!-)$"),
}
_RDS_ARN = re.compile(r"arn:aws[a-z-]*:rds:(?P<region>[a-z0-9-]+):[0-9]{12}:db:(?P<name>[^:]+)")


def gp3_matching_gp2(size_gib: int) -> tuple[int, int]:
    """(IOPS, MiB/s) a gp3 volume needs to be no slower than a gp2 one of this size: gp2 gives 3 IOPS a GiB (at
    least 3,000 by burst, at most 16,000) and 128 MiB/s up to 170 GiB, 250 above; gp3's baseline is 3,000 and 125."""
    return min(16_000, max(3_000, 3 * size_gib)), (125 if size_gib <= 170 else 250)


def current_type_of(facts: Facts) -> str:
    """What a resize would change: the instance type, the volume type or the DB class ("" for an address)."""
    if facts.resource_type == "volume":
        return facts.volume_type or "unknown"
    if facts.resource_type == "address":
        return ""
    return facts.instance_type or "unknown"


# the actions that make sense for each kind (monitor and investigate always do)
KIND_ACTIONS: dict[str, tuple[str, ...]] = {
    "instance": ("shutdown", "resize"),
    "volume": ("delete", "resize"),  # delete an unattached volume (after a snapshot); resize = gp2 -> gp3
    "address": ("release",),
    "db_instance": ("shutdown",),  # stop (after a snapshot); AWS starts it again after 7 days
}
IRREVERSIBLE_ACTIONS = frozenset({"delete", "release"})
ALERT_ID_MAX = 200


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def validation_problems(exc: ValidationError, whole: str = "value") -> str:
    """A ValidationError as one line: `field: problem; field: problem` (`whole` names a problem of the whole)."""
    return "; ".join(f"{'.'.join(str(p) for p in err['loc']) or whole}: {err['msg']}" for err in exc.errors())


def alert_problems(exc: ValidationError) -> str:
    """A ValidationError of an alert as one line."""
    return validation_problems(exc, "alert")


def resource_type_of(resource_id: str) -> ResourceType | None:
    """The kind an id says by itself (a whole `i-…`, `vol-…`, `eipalloc-…` id, an RDS DB ARN); None when it does not
    (an RDS identifier such as `vol-data` names a database only with `resource_type`)."""
    for kind in ("instance", "volume", "address"):
        if _ID_PATTERNS[kind].fullmatch(resource_id):
            return kind
    if _RDS_ARN.fullmatch(resource_id):
        return "db_instance"
    return None


def normal_resource_id(resource_id: str, resource_type: str) -> str:
    """An RDS ARN becomes its DB identifier, lower-case as RDS stores it (what the RDS API takes); others are kept."""
    if resource_type != "db_instance":
        return resource_id
    found = _RDS_ARN.fullmatch(resource_id)
    return (found.group("name") if found else resource_id).lower()


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
    # the resource: `resource_id` (+ `resource_type` where the id does not say it), or for an instance `instance_id`;
    # after validation both resource fields are set, and `instance_id` too when the resource is an instance
    resource_id: str = Field(default="", max_length=300)
    resource_type: ResourceType = "instance"
    instance_id: str | None = Field(default=None, pattern=INSTANCE_ID_PATTERN)
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

    @model_validator(mode="before")
    @classmethod
    def _resource(cls, data: Any) -> Any:
        """Fill `resource_id` / `resource_type` / `instance_id` from each other, or say what is missing."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        instance_id, resource_id, given_type = (
            data.get("instance_id"),
            data.get("resource_id"),
            data.get("resource_type"),
        )
        if resource_id in (None, "") and instance_id is None:
            raise ValueError("the alert names no resource: give resource_id (or instance_id)")
        if resource_id in (None, ""):
            resource_id = instance_id
            given_type = given_type or "instance"  # the original contract: instance_id names an instance
        if not isinstance(resource_id, str):
            raise ValueError("resource_id must be a string")
        said = resource_type_of(resource_id)
        if given_type is None:
            if said is None:
                raise ValueError(f"resource_type is needed: {resource_id[:80]!r} does not say what it is")
            given_type = said
        elif said is not None and said != given_type:
            raise ValueError(f"resource_type {given_type!r} does not match the id {resource_id[:80]!r} ({said})")
        if isinstance(given_type, str) and given_type in _ID_PATTERNS:
            arn = _RDS_ARN.fullmatch(resource_id) if given_type == "db_instance" else None
            if arn is not None:  # the ARN names its region: act there, or refuse an alert that says another
                region = data.get("region")
                if region not in (None, arn.group("region")):
                    raise ValueError(f"the ARN is in {arn.group('region')}, the alert says region {region!r}")
                data["region"] = arn.group("region")
            resource_id = normal_resource_id(resource_id, given_type)
            # an instance id is checked by the instance_id field's own pattern (its error names the field)
            if given_type != "instance" and not _ID_PATTERNS[given_type].fullmatch(resource_id):
                raise ValueError(f"resource_id {resource_id[:80]!r} is not a valid {given_type} id")
            if given_type == "instance":
                if instance_id is not None and instance_id != resource_id:
                    raise ValueError("instance_id and resource_id name different instances")
                data["instance_id"] = resource_id
            elif instance_id is not None:
                raise ValueError(f"instance_id given for a {given_type}")
        data["resource_id"], data["resource_type"] = resource_id, given_type
        return data


def _renamed(data: Any, names: dict[str, str]) -> Any:
    """Read a model stored by an earlier version (checkpoints): its old field names, renamed."""
    if isinstance(data, dict) and any(old in data for old in names):
        data = {names.get(key, key): value for key, value in data.items()}
    return data


class Facts(_Strict):
    """What the cloud says about the alert's resource, read by deterministic code.

    `None` means "not known": every rail treats an unknown as the less permissive answer.
    `instance_type` is the instance's type, or a DB instance's class (`db.t3.micro`).
    """

    resource_id: str
    region: str
    exists: bool
    resource_type: ResourceType = "instance"
    instance_type: str | None = None
    state: str | None = None
    tags: dict[str, str] | None = None  # None: the tags could not be read (fail closed)
    root_device_type: str | None = None
    disable_api_stop: bool | None = None
    architecture: str | None = None
    cpu_avg_pct: float | None = None
    hourly_price_usd: float | None = None
    volume_ids: tuple[str, ...] = ()
    launch_time: datetime | None = None  # an instance's launch, a volume's or a DB instance's creation
    # a volume: its type and size, what it is attached to (None: unknown), when it was last seen detached
    availability_zone: str | None = None
    volume_type: str | None = None
    size_gib: int | None = None
    iops: int | None = None
    attached_to: tuple[str, ...] | None = None
    unused_days: float | None = None  # no I/O and no attachment for this long (a lower bound; None: unknown)
    modifying: bool | None = None  # a volume modification is under way (AWS allows one per 6 hours)
    # an address: its public IP and association (None: unknown, "" : none)
    public_ip: str | None = None
    association_id: str | None = None
    # a DB instance: engine, and RDS's own protection signals (None: unknown, which counts as protected)
    engine: str | None = None
    multi_az: bool | None = None
    deletion_protection: bool | None = None
    replication: bool | None = None  # it is a read replica or the source of one
    connections_max: float | None = None  # the most DatabaseConnections over the window
    gaps: tuple[str, ...] = ()  # data that could not be read, named

    @model_validator(mode="before")
    @classmethod
    def _legacy(cls, data: Any) -> Any:
        return _renamed(data, {"instance_id": "resource_id"})


class DecisionParameters(_Strict):
    """The decision's target: `instance_id` for an instance (the public contract), `resource_id` for other kinds."""

    instance_id: str | None = None
    resource_id: str | None = None
    target_instance_type: str | None = None

    @model_validator(mode="after")
    def _one_target(self) -> DecisionParameters:
        if (self.instance_id is None) == (self.resource_id is None):
            raise ValueError("name the resource once: instance_id (an instance) or resource_id (other kinds)")
        return self

    @property
    def target_id(self) -> str:
        return self.instance_id or self.resource_id or ""


class Decision(_Strict):
    """The model's proposal. Strict: extra keys are rejected."""

    action: Action
    confidence: float = Field(ge=0, le=1)
    reasoning: str = Field(max_length=4000)
    parameters: DecisionParameters
    requires_approval: bool


UNUSABLE_PREFIX = "model answer unusable: "


def decision_parameters(alert: Alert, target_instance_type: str | None = None) -> DecisionParameters:
    """The parameters naming this alert's resource, as the decision schema for its kind has them."""
    if alert.resource_type == "instance":
        return DecisionParameters(instance_id=alert.resource_id, target_instance_type=target_instance_type)
    return DecisionParameters(resource_id=alert.resource_id, target_instance_type=target_instance_type)


def unusable_decision(alert: Alert, why: str) -> Decision:
    """What an unusable model answer becomes: `investigate` at confidence 0, so the rails send it on."""
    return Decision(
        action="investigate",
        confidence=0.0,
        reasoning=f"{UNUSABLE_PREFIX}{why}"[:4000],
        parameters=decision_parameters(alert),
        requires_approval=True,
    )


class Verdict(_Strict):
    """What the policy made of a decision: where to go next and why."""

    route: Literal["execute", "grace", "human_review", "investigate", "report"]
    status: Status | None = None  # the terminal status when route == "report"
    rules: tuple[str, ...] = ()  # every rule that refused or escalated, by name
    reason: str = ""
    savings_usd_per_month: float | None = None


class Plan(_Strict):
    """An executable plan. Its digest binds approvals to exactly these fields."""

    alert_id: str
    thread_id: str
    resource_id: str
    region: str
    action: DisruptiveAction
    current_type: str  # the instance type, volume type or DB class now ("" for an address)
    target_type: str | None = None  # a resize's target: an instance type, or "gp3" for a volume
    savings_usd_per_month: float | None
    requires_approval: bool
    approval_reasons: tuple[str, ...] = ()
    phase: Phase
    policy_hash: str
    created_at: datetime
    expires_at: datetime
    resource_type: ResourceType = "instance"

    @model_validator(mode="before")
    @classmethod
    def _legacy(cls, data: Any) -> Any:
        return _renamed(data, _PLAN_RENAMES)

    @property
    def digest(self) -> str:
        """An instance plan is hashed under its fields' earlier names, without `resource_type`: a plan approved, or
        ledgered, by an earlier version keeps its digest (and its approval and ledger keys)."""
        data = self.model_dump(mode="json")
        if self.resource_type == "instance":
            del data["resource_type"]
            data = {_LEGACY_NAMES.get(key, key): value for key, value in data.items()}
        return sha256_hex(canonical_json(data))

    @property
    def irreversible(self) -> bool:
        return self.action in IRREVERSIBLE_ACTIONS


_PLAN_RENAMES = {
    "instance_id": "resource_id",
    "current_instance_type": "current_type",
    "target_instance_type": "target_type",
}
_LEGACY_NAMES = {new: old for old, new in _PLAN_RENAMES.items()}


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
    instance_id: str | None = None  # set for an instance (as before); every kind has resource_id
    executed: bool = False
    reason: str = ""
    rules: tuple[str, ...] = ()
    savings_usd_per_month: float | None = None
    digest: str | None = None
    snapshot_ids: tuple[str, ...] = ()
    error_class: str | None = None
    line: int | None = None
    agent_version: str | None = None  # package version and policy hash, to trace regressions
    resource_id: str | None = None
    resource_type: ResourceType | None = None
    due_at: datetime | None = None  # a scheduled plan: when it acts unless its owner calls it off


class Schedule(_Strict):
    """An autonomous plan waiting out its grace period: the resource carries `mark` under the mark tag until
    `due_at`; its owner (from the owner tag, if any) was told. `ready`: re-validated at the due time, go on."""

    digest: str
    due_at: datetime
    mark: str
    owner: str | None = None
    ready: bool = False


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
    schedule: Schedule | None
    result: Result | None
    outcome: Outcome | None
    messages: Annotated[list[AnyMessage], add_messages]  # the story, for chat front ends (nodes/story.py)
