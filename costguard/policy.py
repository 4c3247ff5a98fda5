"""The rules as data, the policy-file loader, and the pure functions that apply them.

Nothing here calls the model or the cloud: given the same alert, facts, decision, policy and
clock, the verdict is always the same. Every refusal or escalation names its rule.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from costguard.state import (
    Alert,
    Decision,
    Facts,
    Phase,
    Plan,
    PlanEdit,
    ReviewResponse,
    Verdict,
    canonical_json,
    sha256_hex,
)


class PolicyError(Exception):
    """The policy file is missing, unreadable or invalid."""


class Policy(BaseModel):
    """Thresholds and word lists. Defaults are the design's; a TOML file overrides any key."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    phase: Phase = "observe"
    confidence_threshold: float = Field(default=0.7, ge=0, le=1)
    approval_threshold_usd_per_month: float = Field(default=100.0, ge=0, le=1e9)
    max_investigation_rounds: int = Field(default=2, ge=0, le=10)
    approvers: tuple[str, ...] = ()
    review_ttl_hours: float = Field(default=72.0, gt=0, le=24 * 366)
    hours_per_month: float = Field(default=730.0, gt=0, le=745)
    dry_run: bool = False
    decision_cache_ttl_s: float = Field(default=3600.0, ge=0, le=30 * 86400)
    busy_cpu_pct: float = Field(default=20.0, ge=0, le=100)
    critical_words: tuple[str, ...] = Field(default=("critical",), min_length=1)
    production_words: tuple[str, ...] = ("prod", "production", "prd", "live")
    environment_keys: tuple[str, ...] = (
        "env",
        "environment",
        "stage",
        "tier",
        "deployment",
        "deploy-env",
        "environment-name",
        "account-type",
    )
    role_keys: tuple[str, ...] = (
        "role",
        "service",
        "engine",
        "name",
        "app",
        "application",
        "component",
        "workload",
        "type",
    )
    database_words: tuple[str, ...] = (
        "db",
        "database",
        "rds",
        "sql",
        "postgres",
        "postgresql",
        "pg",
        "mysql",
        "mariadb",
        "aurora",
        "oracle",
        "mssql",
        "sqlserver",
        "mongo",
        "mongodb",
        "redis",
        "memcached",
        "cassandra",
        "dynamodb",
        "elasticsearch",
        "opensearch",
        "clickhouse",
        "cockroachdb",
        "neo4j",
        "couchdb",
        "etcd",
        "timescaledb",
        "influxdb",
    )

    @property
    def digest(self) -> str:
        """A short hash of the policy in force, carried by every plan and outcome."""
        return sha256_hex(canonical_json(self.model_dump(mode="json")))[:16]


def load_policy(path: Path | None, *, phase: Phase | None = None) -> Policy:
    """Defaults, then the TOML file (if any), then the `--phase` override."""
    data: dict[str, object] = {}
    if path is not None:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise PolicyError(f"cannot read policy file {path}: {exc.strerror}") from exc
        except UnicodeDecodeError as exc:
            raise PolicyError(f"policy file {path} is not UTF-8 text: {exc.reason}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise PolicyError(f"policy file {path} is not valid TOML: {exc}") from exc
    if phase is not None:
        data["phase"] = phase
    try:
        return Policy.model_validate(data)
    except ValidationError as exc:
        raise PolicyError(f"invalid policy{f' in {path}' if path else ''}: {exc}") from exc


# --- tags --------------------------------------------------------------------------------

_TOKEN = re.compile(r"[a-z]+|[0-9]+")


def _norm(text: str) -> str:
    return text.strip().lower()


def _tokens(text: str) -> set[str]:
    return set(_TOKEN.findall(text.lower()))


_FALSY = {"false", "no", "0", "n", "off", "none", "null", "n/a", "na"}


def _affirms(value: str) -> bool:
    """A tag whose key carries the meaning counts unless its value plainly denies it."""
    return _norm(value) not in _FALSY


def is_critical(tags: Mapping[str, str], policy: Policy) -> bool:
    """Any tag key or value that is, or contains the word, "critical" (any case, trimmed)."""
    words = {w.lower() for w in policy.critical_words}
    for key, value in tags.items():
        for text in (key, value):
            if _norm(text) in words or _tokens(text) & words:
                return True
    return False


def _looks_like_database(text: str, policy: Policy) -> bool:
    words = {w.lower() for w in policy.database_words}
    lowered = text.lower()
    if _tokens(lowered) & words:
        return True
    # compounds and versions: "ordersdb", "pgsql", "postgres14", "redis7", "oracle19c", "sqlserver2019"
    chunks = re.findall(r"[a-z0-9]+", lowered)
    return any(
        chunk.endswith(("db", "sql")) or any(chunk.startswith(w) for w in words if len(w) >= 4) for chunk in chunks
    )


def _key_means(key: str, words: set[str]) -> bool:
    """`deploy_env`, `Environment_Name`, `env` all mean an environment key."""
    return _norm(key) in words or bool(_tokens(key) & words)


def is_production(tags: Mapping[str, str], policy: Policy) -> bool:
    """An environment-like (or name-like) tag meaning production, or a `Production: true` tag."""
    prod = {w.lower() for w in policy.production_words}
    env_keys = {k.lower() for k in policy.environment_keys}
    name_like = {k.lower() for k in policy.role_keys}
    for key, value in tags.items():
        if _key_means(key, prod) and _affirms(value):  # e.g. {"Production": "true"}
            return True
        if (_key_means(key, env_keys) or _key_means(key, name_like)) and _tokens(value) & prod:
            return True
    return False


def is_database(tags: Mapping[str, str], policy: Policy) -> bool:
    role_keys = {k.lower() for k in policy.role_keys}
    for key, value in tags.items():
        if _key_means(key, role_keys) and _looks_like_database(value, policy):
            return True
        if _looks_like_database(key, policy) and _affirms(value):  # e.g. {"Database": "orders"}
            return True
    return False


def protection_rules(facts: Facts, policy: Policy) -> list[str]:
    """Rules that forbid any disruptive action on this instance (empty: not protected)."""
    if facts.tags is None:
        return ["tags_unreadable"]
    rules: list[str] = []
    if is_critical(facts.tags, policy):
        rules.append("critical_tag")
    if is_production(facts.tags, policy) and is_database(facts.tags, policy):
        rules.append("production_database")
    return rules


# --- prices ------------------------------------------------------------------------------


class PriceBook(Protocol):
    def hourly(self, instance_type: str, region: str) -> float | None: ...

    def architecture(self, instance_type: str) -> str | None: ...


def monthly(hourly: float | None, policy: Policy) -> float | None:
    return None if hourly is None else round(hourly * policy.hours_per_month, 2)


# --- the rails ---------------------------------------------------------------------------


@dataclass(frozen=True)
class RailCheck:
    """The result of the hard rails for one disruptive action on one instance."""

    refusals: tuple[str, ...]
    savings_usd_per_month: float | None


def check_action(
    action: str,
    target_instance_type: str | None,
    facts: Facts,
    prices: PriceBook,
    policy: Policy,
) -> RailCheck:
    """The hard rails: protection, reversibility, resize target. Pure."""
    refusals: list[str] = []
    if not facts.exists:
        return RailCheck(("instance_not_found",), None)
    refusals.extend(protection_rules(facts, policy))
    if facts.root_device_type != "ebs":
        refusals.append("not_reversible_instance_store")
    if facts.disable_api_stop is not False:
        refusals.append("stop_protection_enabled")
    if facts.state not in ("running", "stopped"):
        refusals.append("instance_state_not_actionable")
    elif action == "shutdown" and facts.state != "running":
        refusals.append("already_stopped")

    current = facts.instance_type
    current_hourly = prices.hourly(current, facts.region) if current else None
    savings: float | None
    if action == "shutdown":
        savings = monthly(current_hourly, policy)
    else:
        savings = None
        if not target_instance_type:
            refusals.append("resize_target_missing")
        elif target_instance_type == current:
            refusals.append("resize_target_same_type")
        else:
            target_hourly = prices.hourly(target_instance_type, facts.region)
            if target_hourly is None:
                refusals.append("resize_target_unknown")
            elif current_hourly is None:
                refusals.append("current_price_unknown")
            elif target_hourly >= current_hourly:
                refusals.append("resize_not_cheaper")
            else:
                savings = monthly(current_hourly - target_hourly, policy)
            current_arch = facts.architecture or (prices.architecture(current) if current else None)
            target_arch = prices.architecture(target_instance_type)
            if target_hourly is not None and (current_arch is None or current_arch != target_arch):
                refusals.append("resize_architecture_mismatch")
    return RailCheck(tuple(refusals), savings)


def approval_reasons(
    *,
    decision_requires_approval: bool,
    low_confidence: bool,
    savings: float | None,
    policy: Policy,
    utilization_known: bool = True,
    busy: bool = False,
    production: bool = False,
) -> tuple[str, ...]:
    """Why a person must approve (empty: the plan may run autonomously). A missing datum adds a reason."""
    reasons: list[str] = []
    if policy.phase == "reversible":
        reasons.append("phase_requires_approval")
    if savings is None:
        reasons.append("savings_unknown")
    elif savings > policy.approval_threshold_usd_per_month:
        reasons.append("savings_over_threshold")
    if decision_requires_approval:
        reasons.append("model_requested_review")
    if low_confidence:
        reasons.append("low_confidence")
    if not utilization_known:
        reasons.append("utilization_unknown")
    if busy:
        reasons.append("instance_busy")
    if production:
        reasons.append("production_instance")
    return tuple(reasons)


@dataclass(frozen=True)
class Evaluation:
    verdict: Verdict
    plan: Plan | None = None


def evaluate(
    *,
    alert: Alert,
    facts: Facts,
    decision: Decision,
    investigation_rounds: int,
    thread_id: str,
    prices: PriceBook,
    policy: Policy,
    now: datetime,
) -> Evaluation:
    """Turn a model's decision into a verdict (and a plan when something may be done)."""
    action = decision.action
    low_confidence = decision.confidence < policy.confidence_threshold
    rounds_left = investigation_rounds < policy.max_investigation_rounds

    if action == "monitor" and not low_confidence:
        return Evaluation(Verdict(route="report", status="monitoring", reason="the model proposes to keep watching"))
    if action in ("investigate", "monitor") or low_confidence:
        if rounds_left:
            return Evaluation(
                Verdict(
                    route="investigate",
                    rules=("low_confidence",) if low_confidence else (),
                    reason=f"{action} at confidence {decision.confidence:.2f}: looking deeper",
                )
            )
        if action in ("investigate", "monitor"):
            return Evaluation(
                Verdict(
                    route="report",
                    status="investigation_required",
                    rules=("undecided_after_investigation",),
                    reason=f"still {action} at confidence {decision.confidence:.2f} after "
                    f"{investigation_rounds} investigation round(s): a person must look",
                )
            )
    assert action in ("shutdown", "resize")

    if decision.parameters.instance_id != alert.instance_id:
        return Evaluation(
            Verdict(
                route="report",
                status="rejected",
                rules=("wrong_instance",),
                reason=f"the decision targets {decision.parameters.instance_id!r}, "
                f"not the alert's own instance {alert.instance_id}",
            )
        )
    if facts.instance_id != alert.instance_id:
        return Evaluation(
            Verdict(
                route="report",
                status="rejected",
                rules=("facts_mismatch",),
                reason=f"the facts describe {facts.instance_id}, not the alert's instance {alert.instance_id}",
            )
        )
    target = decision.parameters.target_instance_type if action == "resize" else None
    rails = check_action(action, target, facts, prices, policy)
    if rails.refusals:
        return Evaluation(
            Verdict(
                route="report",
                status="rejected",
                rules=rails.refusals,
                reason=f"{action} refused by rule(s): {', '.join(rails.refusals)}",
                savings_usd_per_month=rails.savings_usd_per_month,
            )
        )
    reasons = approval_reasons(
        decision_requires_approval=decision.requires_approval,
        low_confidence=low_confidence,
        savings=rails.savings_usd_per_month,
        policy=policy,
        utilization_known=facts.cpu_avg_pct is not None,
        busy=facts.cpu_avg_pct is not None and facts.cpu_avg_pct >= policy.busy_cpu_pct,
        production=facts.tags is not None and is_production(facts.tags, policy),
    )
    plan = make_plan(
        alert=alert,
        facts=facts,
        action=action,
        target=target,
        savings=rails.savings_usd_per_month,
        reasons=reasons,
        thread_id=thread_id,
        policy=policy,
        now=now,
    )
    if policy.phase == "observe":
        return Evaluation(
            Verdict(
                route="report",
                status="observed",
                rules=("phase_observe",),
                reason=f"observe phase: would {action}, nothing executed",
                savings_usd_per_month=rails.savings_usd_per_month,
            ),
            plan,
        )
    route = "execute" if policy.dry_run or not reasons else "human_review"
    return Evaluation(
        Verdict(
            route=route,
            rules=reasons,
            reason="needs approval: " + ", ".join(reasons) if reasons else "allowed autonomously",
            savings_usd_per_month=rails.savings_usd_per_month,
        ),
        plan,
    )


def make_plan(
    *,
    alert: Alert,
    facts: Facts,
    action: str,
    target: str | None,
    savings: float | None,
    reasons: Iterable[str],
    thread_id: str,
    policy: Policy,
    now: datetime,
) -> Plan:
    reasons = tuple(reasons)
    return Plan.model_validate(
        {
            "alert_id": alert.alert_id,
            "thread_id": thread_id,
            "instance_id": facts.instance_id,
            "region": facts.region,
            "action": action,
            "current_instance_type": facts.instance_type or "unknown",
            "target_instance_type": target,
            "savings_usd_per_month": savings,
            "requires_approval": bool(reasons),
            "approval_reasons": reasons,
            "phase": policy.phase,
            "policy_hash": policy.digest,
            "created_at": now,
            "expires_at": now + timedelta(hours=policy.review_ttl_hours),
        }
    )


# --- review ------------------------------------------------------------------------------


def review_refusal(response: ReviewResponse, plan: Plan, policy: Policy, now: datetime) -> str | None:
    """Why a review response may not move the plan on (None: it may)."""
    if response.reviewer not in policy.approvers:
        return "reviewer_not_allowed"
    if response.digest != plan.digest:
        return "digest_mismatch"
    if now > plan.expires_at:
        return "review_expired"
    if response.decision == "edit" and response.edited_plan is None:
        return "edit_without_plan"
    return None


def apply_edit(
    plan: Plan, edit: PlanEdit, facts: Facts, prices: PriceBook, policy: Policy, now: datetime
) -> tuple[Plan | None, RailCheck]:
    """A reviewer's edit is a new plan: the rails apply to it exactly as to the model's."""
    target = edit.target_instance_type if edit.action == "resize" else None
    rails = check_action(edit.action, target, facts, prices, policy)
    if rails.refusals:
        return None, rails
    edited = plan.model_copy(
        update={
            "action": edit.action,
            "target_instance_type": target,
            "savings_usd_per_month": rails.savings_usd_per_month,
            "created_at": now,
        }
    )
    return Plan.model_validate(edited.model_dump()), rails


def recheck_at_execution(plan: Plan, fresh: Facts, prices: PriceBook, policy: Policy) -> tuple[str, ...]:
    """Rails on fresh facts, plus anything the approval relied on that has since changed."""
    rails = check_action(plan.action, plan.target_instance_type, fresh, prices, policy)
    refusals = list(rails.refusals)
    if fresh.exists and fresh.instance_type != plan.current_instance_type:
        refusals.append("instance_type_changed")
    approved = plan.savings_usd_per_month
    now_savings = rails.savings_usd_per_month
    if approved is not None and (now_savings is None or now_savings > approved * 1.05 + 0.01):
        # a bigger effect than the one approved needs a new approval
        refusals.append("savings_changed")
    return tuple(refusals)
