"""Unit tests for the pure policy functions: tag rails, action rails, routing, reviews, loader.

No network, no cloud, no model: every input is built here and the clock is fixed.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from costguard.policy import (
    Evaluation,
    Policy,
    PolicyError,
    check_action,
    evaluate,
    is_critical,
    is_database,
    is_production,
    load_policy,
    make_plan,
    protection_rules,
    review_refusal,
)
from costguard.state import Alert, Decision, Facts, Phase, Plan, PlanEdit, ReviewResponse

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
INSTANCE = "i-0123456789abcdef0"
OTHER_INSTANCE = "i-0fedcba9876543210"
REGION = "us-east-1"
THREAD = "alert:a-1"
APPROVER = "alice@example.com"

# --- a small fake price book ------------------------------------------------------------

PRICES: dict[str, tuple[float, str | None]] = {
    "m5.2xlarge": (0.384, "x86_64"),
    "m5.xlarge": (0.192, "x86_64"),
    "m5n.xlarge": (0.192, "x86_64"),  # same price as m5.xlarge: not cheaper
    "m5.large": (0.096, "x86_64"),
    "t3.medium": (0.0416, "x86_64"),
    "t3.small": (0.0208, "x86_64"),
    "m6g.large": (0.077, "arm64"),
    "t4g.medium": (0.0336, "arm64"),
    "x9.mystery": (0.01, None),  # priced, architecture unknown
}


class FakePriceBook:
    """`hourly()` and `architecture()` from a fixed table; records what it was asked."""

    def __init__(self, prices: dict[str, tuple[float, str | None]] | None = None) -> None:
        self.prices = PRICES if prices is None else prices
        self.asked: list[tuple[str, str]] = []

    def hourly(self, instance_type: str, region: str) -> float | None:
        self.asked.append((instance_type, region))
        entry = self.prices.get(instance_type)
        return None if entry is None else entry[0]

    def architecture(self, instance_type: str) -> str | None:
        entry = self.prices.get(instance_type)
        return None if entry is None else entry[1]

    # the other kinds' prices (costguard's shipped figures for these)
    def volume_gb_month(self, volume_type: str) -> float | None:
        return {"gp2": 0.10, "gp3": 0.08, "st1": 0.045}.get(volume_type)

    def ipv4_hourly(self) -> float | None:
        return 0.005

    def gp3_extra_prices(self) -> tuple[float, float] | None:
        return (0.005, 0.04)

    def db_hourly(self, db_class: str, engine: str) -> float | None:
        return {("db.t3.medium", "postgres"): 0.072, ("db.m5.large", "mysql"): 0.171}.get((db_class, engine))


# --- builders ---------------------------------------------------------------------------

SAFE_TAGS = {"env": "dev", "role": "web"}


def make_facts(**overrides: Any) -> Facts:
    data: dict[str, Any] = {
        "instance_id": INSTANCE,
        "region": REGION,
        "exists": True,
        "instance_type": "t3.medium",
        "state": "running",
        "tags": dict(SAFE_TAGS),
        "root_device_type": "ebs",
        "disable_api_stop": False,
        "architecture": "x86_64",
        "cpu_avg_pct": 1.5,
        "hourly_price_usd": 999.0,  # what the cloud said: the policy must use the price book instead
    }
    data.update(overrides)
    return Facts.model_validate(data)


def make_alert(**overrides: Any) -> Alert:
    data: dict[str, Any] = {
        "alert_id": "a-1",
        "instance_id": INSTANCE,
        "region": REGION,
        "monthly_cost_usd": 500.0,
        "summary": "idle instance",
    }
    data.update(overrides)
    return Alert.model_validate(data)


def make_decision(
    action: str = "shutdown",
    *,
    confidence: float = 0.9,
    instance_id: str = INSTANCE,
    target: str | None = None,
    requires_approval: bool = False,
    reasoning: str = "idle for two weeks",
) -> Decision:
    return Decision.model_validate(
        {
            "action": action,
            "confidence": confidence,
            "reasoning": reasoning,
            "parameters": {"instance_id": instance_id, "target_instance_type": target},
            "requires_approval": requires_approval,
        }
    )


def run_evaluate(
    decision: Decision,
    *,
    facts: Facts | None = None,
    policy: Policy | None = None,
    rounds: int = 0,
    alert: Alert | None = None,
) -> Evaluation:
    return evaluate(
        alert=alert or make_alert(),
        facts=facts or make_facts(),
        decision=decision,
        investigation_rounds=rounds,
        thread_id=THREAD,
        prices=FakePriceBook(),
        policy=policy or Policy(phase="autonomous"),
        now=NOW,
    )


POLICY = Policy()

# --- is_critical ------------------------------------------------------------------------

CRITICAL_TAGS: list[dict[str, str]] = [
    {"critical": "true"},
    {"Critical": "true"},
    {"CRITICAL": "yes"},
    {" CRITICAL ": ""},
    {"\tCritical\n": "false"},  # the key itself says critical, whatever the value
    {"tier": "critical"},
    {"Tier": "Critical"},
    {"importance": " CRITICAL "},
    {"priority": "\tcritical\n"},
    {"criticality": "business-critical"},
    {"Criticality": "Mission Critical"},
    {"class": "critical_path"},
    {"critical-workload": "orders"},
    {"env": "dev", "role": "web", "Owner": "team-a", "SLA": "critical"},
]

NOT_CRITICAL_TAGS: list[dict[str, str]] = [
    {},
    {"env": "prod"},
    {"priority": "high"},
    {"criticality": "low"},
    {"Name": "criticality-report"},
    {"noncritical": "true"},
    {"note": "hypercritical"},
]


@pytest.mark.parametrize("tags", CRITICAL_TAGS, ids=repr)
def test_is_critical_spellings(tags: dict[str, str]) -> None:
    assert is_critical(tags, POLICY) is True


@pytest.mark.parametrize("tags", NOT_CRITICAL_TAGS, ids=repr)
def test_is_critical_negatives(tags: dict[str, str]) -> None:
    assert is_critical(tags, POLICY) is False


def test_is_critical_uses_policy_words() -> None:
    policy = Policy(critical_words=("Tier-1", "crown-jewel"))
    assert is_critical({"class": " TIER-1 "}, policy) is True
    assert is_critical({"Crown-Jewel": "yes"}, policy) is True
    assert is_critical({"tier": "critical"}, policy) is False


# --- is_production ----------------------------------------------------------------------

PRODUCTION_WORDS = ["prod", "production", "prd", "live"]
ENVIRONMENT_KEYS = [
    "env",
    "Env",
    "ENV",
    " env ",
    "Environment",
    "environment",
    "STAGE",
    "Stage",
    "tier",
    "Tier",
    "deployment",
    "Deployment",
    "deploy-env",
    "Environment-Name",
    "account-type",
]


def _case_variants(word: str) -> list[str]:
    return [word, word.upper(), word.capitalize(), f" {word.upper()} ", f"\t{word}\n"]


@pytest.mark.parametrize("key", ENVIRONMENT_KEYS)
@pytest.mark.parametrize("word", PRODUCTION_WORDS)
def test_is_production_environment_keys(key: str, word: str) -> None:
    assert is_production({key: word}, POLICY) is True


@pytest.mark.parametrize(
    "value", [v for word in PRODUCTION_WORDS for v in _case_variants(word)] + ["prod-eu", "PROD_EU", "us-east-1.prd"]
)
def test_is_production_value_spellings(value: str) -> None:
    assert is_production({"Environment": value}, POLICY) is True


@pytest.mark.parametrize(
    "tags",
    [
        {"Name": "orders-prod-db"},
        {"Name": "api-production"},
        {"name": "PRD web 01"},
        {"app": "checkout-live"},
        {"Service": "prod.payments"},
        {"Production": "true"},
        {"prod": ""},
        {" PRD ": "yes"},
        {"Live": "1"},
        {"prod": "on"},
    ],
    ids=repr,
)
def test_is_production_names_and_flags(tags: dict[str, str]) -> None:
    assert is_production(tags, POLICY) is True


@pytest.mark.parametrize(
    "tags",
    [
        {},
        {"env": "dev"},
        {"env": "staging", "role": "db"},
        {"Environment": "preprod"},
        {"env": "qa"},
        {"Production": "false"},
        {"prod": "no"},
        {"Owner": "prod-team"},  # not an environment-like or name-like key
        {"Name": "livestream-web"},
        {"description": "copied from production"},
    ],
    ids=repr,
)
def test_is_production_negatives(tags: dict[str, str]) -> None:
    assert is_production(tags, POLICY) is False


@pytest.mark.parametrize("value", ["prod1", "prod01", "production2"])
def test_is_production_numbered_environment(value: str) -> None:
    assert is_production({"env": value}, POLICY) is True


@pytest.mark.parametrize("key", ["deploy_env", "Environment_Name"])
def test_is_production_snake_case_environment_keys(key: str) -> None:
    assert is_production({key: "prod"}, POLICY) is True


# --- is_database ------------------------------------------------------------------------

ROLE_KEYS = ["role", "Role", "service", "Service", "engine", "ENGINE", "Name", "app", "component", " workload "]
DATABASE_VALUES = [
    "db",
    "DB",
    "database",
    "Database",
    "postgres",
    "postgresql",
    "PostgreSQL",
    "mysql",
    " MySQL ",
    "mariadb",
    "aurora",
    "Aurora-PostgreSQL",
    "mongodb",
    "redis",
    "ordersdb",
    "pgsql",
    "postgres14",
    "mysql8",
    "mongo6",
    "rds",
    "orders-db-primary",
]


@pytest.mark.parametrize("value", DATABASE_VALUES)
@pytest.mark.parametrize("key", ROLE_KEYS)
def test_is_database_spellings(key: str, value: str) -> None:
    assert is_database({key: value}, POLICY) is True


@pytest.mark.parametrize("tags", [{"database": ""}, {"DB": "true"}, {" Postgres ": "yes"}, {"redis": "1"}], ids=repr)
def test_is_database_flag_keys(tags: dict[str, str]) -> None:
    assert is_database(tags, POLICY) is True


@pytest.mark.parametrize(
    "tags",
    [
        {},
        {"role": "web"},
        {"Name": "production-web"},
        {"service": "api"},
        {"Owner": "db-team"},  # not a role-like key
        {"db": "false"},
        {"env": "prod"},
        {"Name": "dashboard"},
    ],
    ids=repr,
)
def test_is_database_negatives(tags: dict[str, str]) -> None:
    assert is_database(tags, POLICY) is False


@pytest.mark.parametrize("value", ["redis7", "pg15", "oracle19c", "sqlserver2019"])
def test_is_database_versioned_engines(value: str) -> None:
    assert is_database({"engine": value}, POLICY) is True


def test_is_database_key_naming_the_database() -> None:
    assert is_database({"Database": "orders"}, POLICY) is True


# --- protection_rules -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tags", "expected"),
    [
        (None, ["tags_unreadable"]),
        ({"Critical": "true"}, ["critical_tag"]),
        ({"tier": "critical"}, ["critical_tag"]),
        ({"env": "prod", "role": "db"}, ["production_database"]),
        ({"Environment": " PRODUCTION ", "Engine": "postgres14"}, ["production_database"]),
        ({"STAGE": "live", "service": "Redis"}, ["production_database"]),
        ({"tier": "prd", "app": "ordersdb"}, ["production_database"]),
        ({"deployment": "prod", "Name": "pgsql-01"}, ["production_database"]),
        ({"Name": "orders-prod-db"}, ["production_database"]),
        ({"Name": "orders-prod-db", "criticality": "business-critical"}, ["critical_tag", "production_database"]),
        ({}, []),
        ({"env": "dev", "role": "db"}, []),
        ({"env": "prod", "role": "web"}, []),
        ({"Name": "production-web"}, []),
        ({"env": "staging", "engine": "mysql"}, []),
    ],
    ids=repr,
)
def test_protection_rules(tags: dict[str, str] | None, expected: list[str]) -> None:
    assert protection_rules(make_facts(tags=tags), POLICY) == expected


# --- check_action -----------------------------------------------------------------------

BOTH_ACTIONS = pytest.mark.parametrize(
    ("action", "target"), [("shutdown", None), ("resize", "t3.small")], ids=["shutdown", "resize"]
)


def rails(action: str, target: str | None = None, policy: Policy = POLICY, **facts: Any) -> tuple[str, ...]:
    return check_action(action, target, make_facts(**facts), FakePriceBook(), policy).refusals


@BOTH_ACTIONS
def test_check_action_allows_a_plain_instance(action: str, target: str | None) -> None:
    assert rails(action, target) == ()


@BOTH_ACTIONS
def test_check_action_instance_not_found(action: str, target: str | None) -> None:
    result = check_action(action, target, make_facts(exists=False, tags=None), FakePriceBook(), POLICY)
    assert result.refusals == ("instance_not_found",)
    assert result.savings_usd_per_month is None


@BOTH_ACTIONS
@pytest.mark.parametrize("root", ["instance-store", None])
def test_check_action_not_reversible(action: str, target: str | None, root: str | None) -> None:
    assert rails(action, target, root_device_type=root) == ("not_reversible_instance_store",)


@BOTH_ACTIONS
@pytest.mark.parametrize("stop_protection", [True, None])
def test_check_action_stop_protection(action: str, target: str | None, stop_protection: bool | None) -> None:
    assert rails(action, target, disable_api_stop=stop_protection) == ("stop_protection_enabled",)


def test_check_action_already_stopped() -> None:
    assert rails("shutdown", state="stopped") == ("already_stopped",)


def test_check_action_resize_of_a_stopped_instance_is_allowed() -> None:
    assert rails("resize", "t3.small", state="stopped") == ()


@BOTH_ACTIONS
@pytest.mark.parametrize("state", ["terminated", "pending", "stopping", "shutting-down", None])
def test_check_action_state_not_actionable(action: str, target: str | None, state: str | None) -> None:
    assert rails(action, target, state=state) == ("instance_state_not_actionable",)


@BOTH_ACTIONS
@pytest.mark.parametrize(
    ("tags", "rule"),
    [
        (None, "tags_unreadable"),
        ({"Critical": "true"}, "critical_tag"),
        ({"env": "prod", "role": "db"}, "production_database"),
    ],
)
def test_check_action_protected(action: str, target: str | None, tags: dict[str, str] | None, rule: str) -> None:
    assert rails(action, target, tags=tags) == (rule,)


def test_check_action_reports_every_refusal() -> None:
    refusals = rails("shutdown", tags=None, root_device_type="instance-store", disable_api_stop=True, state="pending")
    assert set(refusals) == {
        "tags_unreadable",
        "not_reversible_instance_store",
        "stop_protection_enabled",
        "instance_state_not_actionable",
    }


@pytest.mark.parametrize("target", [None, ""])
def test_check_action_resize_target_missing(target: str | None) -> None:
    assert rails("resize", target) == ("resize_target_missing",)


def test_check_action_resize_target_same_type() -> None:
    assert rails("resize", "m5.xlarge", instance_type="m5.xlarge") == ("resize_target_same_type",)


@pytest.mark.parametrize("target", ["z9.mega", "T3.SMALL", "t3.small "])
def test_check_action_resize_target_unknown(target: str) -> None:
    result = check_action("resize", target, make_facts(instance_type="m5.xlarge"), FakePriceBook(), POLICY)
    assert result.refusals == ("resize_target_unknown",)
    assert result.savings_usd_per_month is None


@pytest.mark.parametrize("target", ["m5.2xlarge", "m5n.xlarge"], ids=["dearer", "same-price"])
def test_check_action_resize_not_cheaper(target: str) -> None:
    result = check_action("resize", target, make_facts(instance_type="m5.xlarge"), FakePriceBook(), POLICY)
    assert result.refusals == ("resize_not_cheaper",)
    assert result.savings_usd_per_month is None


@pytest.mark.parametrize("facts_arch", ["x86_64", None], ids=["arch-from-facts", "arch-from-price-book"])
@pytest.mark.parametrize("target", ["m6g.large", "t4g.medium"])
def test_check_action_resize_architecture_mismatch(facts_arch: str | None, target: str) -> None:
    assert rails("resize", target, instance_type="m5.xlarge", architecture=facts_arch) == (
        "resize_architecture_mismatch",
    )


def test_check_action_resize_target_architecture_unknown() -> None:
    assert rails("resize", "x9.mystery", instance_type="m5.xlarge") == ("resize_architecture_mismatch",)


def test_check_action_resize_current_architecture_unknown() -> None:
    # the current type is unknown to the price book and the cloud did not say: fail closed
    refusals = rails("resize", "t3.small", instance_type="zz.legacy", architecture=None)
    assert "resize_architecture_mismatch" in refusals


def test_check_action_resize_arm_to_arm() -> None:
    result = check_action(
        "resize", "t4g.medium", make_facts(instance_type="m6g.large", architecture="arm64"), FakePriceBook(), POLICY
    )
    assert result.refusals == ()
    assert result.savings_usd_per_month == round((0.077 - 0.0336) * 730, 2)


@pytest.mark.parametrize("current", ["zz.legacy", None])
def test_check_action_current_price_unknown(current: str | None) -> None:
    result = check_action("resize", "t3.small", make_facts(instance_type=current), FakePriceBook(), POLICY)
    assert result.refusals == ("current_price_unknown",)
    assert result.savings_usd_per_month is None


@pytest.mark.parametrize(
    ("instance_type", "hours", "expected"),
    [
        ("t3.medium", 730.0, 30.37),  # 0.0416 x 730 = 30.368
        ("m5.xlarge", 730.0, 140.16),
        ("t3.small", 730.0, 15.18),  # 0.0208 x 730 = 15.184
        ("m5.xlarge", 720.0, 138.24),
        ("zz.legacy", 730.0, None),
        (None, 730.0, None),
    ],
)
def test_check_action_shutdown_savings(instance_type: str | None, hours: float, expected: float | None) -> None:
    policy = Policy(hours_per_month=hours)
    result = check_action("shutdown", None, make_facts(instance_type=instance_type), FakePriceBook(), policy)
    assert result.refusals == ()
    assert result.savings_usd_per_month == expected


@pytest.mark.parametrize(
    ("current", "target", "expected"),
    [
        ("m5.xlarge", "m5.large", 70.08),  # (0.192 - 0.096) x 730
        ("m5.xlarge", "t3.medium", 109.79),  # (0.192 - 0.0416) x 730 = 109.792
        ("m5.2xlarge", "m5.xlarge", 140.16),
        ("t3.medium", "t3.small", 15.18),
    ],
)
def test_check_action_resize_savings(current: str, target: str, expected: float) -> None:
    result = check_action("resize", target, make_facts(instance_type=current), FakePriceBook(), POLICY)
    assert result.refusals == ()
    assert result.savings_usd_per_month == expected


def test_check_action_ignores_the_clouds_hourly_price() -> None:
    facts = make_facts(instance_type="t3.medium", hourly_price_usd=123.0)
    assert check_action("shutdown", None, facts, FakePriceBook(), POLICY).savings_usd_per_month == 30.37


def test_check_action_asks_the_price_book_for_the_facts_region() -> None:
    book = FakePriceBook()
    check_action("resize", "t3.small", make_facts(instance_type="m5.xlarge", region="eu-west-1"), book, POLICY)
    assert book.asked
    assert {region for _, region in book.asked} == {"eu-west-1"}


# --- evaluate ---------------------------------------------------------------------------


def test_evaluate_monitor_reports_monitoring() -> None:
    result = run_evaluate(make_decision("monitor"))
    assert result.verdict.route == "report"
    assert result.verdict.status == "monitoring"
    assert result.plan is None


@pytest.mark.parametrize("action", ["investigate", "monitor"])
def test_evaluate_low_confidence_or_investigate_with_rounds_left(action: str) -> None:
    confidence = 0.9 if action == "investigate" else 0.3
    result = run_evaluate(make_decision(action, confidence=confidence), rounds=1)
    assert result.verdict.route == "investigate"
    assert result.verdict.status is None
    assert result.plan is None


def test_evaluate_investigate_rules_name_low_confidence() -> None:
    assert run_evaluate(make_decision("investigate", confidence=0.9)).verdict.rules == ()
    assert run_evaluate(make_decision("investigate", confidence=0.2)).verdict.rules == ("low_confidence",)


@pytest.mark.parametrize(("action", "confidence"), [("investigate", 0.95), ("investigate", 0.1), ("monitor", 0.3)])
def test_evaluate_investigation_required_at_max_rounds(action: str, confidence: float) -> None:
    result = run_evaluate(make_decision(action, confidence=confidence), rounds=2)
    assert result.verdict.route == "report"
    assert result.verdict.status == "investigation_required"
    assert result.verdict.rules == ("undecided_after_investigation",)
    assert result.plan is None


def test_evaluate_no_investigation_rounds_allowed() -> None:
    policy = Policy(phase="autonomous", max_investigation_rounds=0)
    result = run_evaluate(make_decision("investigate"), policy=policy, rounds=0)
    assert result.verdict.status == "investigation_required"


@pytest.mark.parametrize("action", ["shutdown", "resize"])
def test_evaluate_low_confidence_action_with_rounds_left_investigates(action: str) -> None:
    target = "t3.small" if action == "resize" else None
    result = run_evaluate(make_decision(action, confidence=0.5, target=target), rounds=0)
    assert result.verdict.route == "investigate"
    assert result.verdict.rules == ("low_confidence",)
    assert result.plan is None


def test_evaluate_confidence_at_threshold_is_not_low() -> None:
    result = run_evaluate(make_decision(confidence=0.7))
    assert result.verdict.route == "execute"


def test_evaluate_low_confidence_at_max_rounds_goes_to_review() -> None:
    result = run_evaluate(make_decision(confidence=0.5), rounds=2)
    assert result.verdict.route == "human_review"
    assert result.verdict.rules == ("low_confidence",)
    assert result.plan is not None
    assert "low_confidence" in result.plan.approval_reasons
    assert result.plan.requires_approval is True


def test_evaluate_low_confidence_at_max_rounds_still_meets_the_rails() -> None:
    result = run_evaluate(make_decision(confidence=0.5), facts=make_facts(tags={"Critical": "yes"}), rounds=2)
    assert result.verdict.status == "rejected"
    assert result.plan is None


@pytest.mark.parametrize("action", ["shutdown", "resize"])
@pytest.mark.parametrize("wrong", [OTHER_INSTANCE, INSTANCE.upper(), f" {INSTANCE}", ""])
def test_evaluate_wrong_instance(action: str, wrong: str) -> None:
    target = "t3.small" if action == "resize" else None
    result = run_evaluate(make_decision(action, instance_id=wrong, target=target))
    assert result.verdict.route == "report"
    assert result.verdict.status == "rejected"
    assert result.verdict.rules == ("wrong_instance",)
    assert result.plan is None


@pytest.mark.parametrize(
    ("decision", "facts", "rule"),
    [
        (make_decision(), make_facts(tags={"Critical": "true"}), "critical_tag"),
        (make_decision(), make_facts(tags={"env": "prod", "role": "db"}), "production_database"),
        (make_decision(), make_facts(tags=None), "tags_unreadable"),
        (make_decision(), make_facts(exists=False), "instance_not_found"),
        (make_decision(), make_facts(state="stopped"), "already_stopped"),
        (make_decision(), make_facts(disable_api_stop=True), "stop_protection_enabled"),
        (make_decision("resize", target="m5.2xlarge"), make_facts(instance_type="m5.xlarge"), "resize_not_cheaper"),
        (make_decision("resize"), make_facts(), "resize_target_missing"),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
@pytest.mark.parametrize("phase", ["observe", "reversible", "autonomous"])
def test_evaluate_rail_refusal(decision: Decision, facts: Facts, rule: str, phase: Phase) -> None:
    for dry_run in (False, True):
        result = run_evaluate(decision, facts=facts, policy=Policy(phase=phase, dry_run=dry_run))
        assert result.verdict.route == "report"
        assert result.verdict.status == "rejected"
        assert rule in result.verdict.rules
        assert rule in result.verdict.reason
        assert result.plan is None


def test_evaluate_observe_phase_records_savings() -> None:
    result = run_evaluate(make_decision(), policy=Policy(phase="observe"))
    assert result.verdict.route == "report"
    assert result.verdict.status == "observed"
    assert result.verdict.rules == ("phase_observe",)
    assert result.verdict.savings_usd_per_month == 30.37
    assert result.plan is not None
    assert result.plan.phase == "observe"
    assert result.plan.savings_usd_per_month == 30.37


def test_evaluate_observe_phase_even_with_dry_run() -> None:
    result = run_evaluate(make_decision(), policy=Policy(phase="observe", dry_run=True))
    assert result.verdict.status == "observed"


def test_evaluate_reversible_phase_needs_approval() -> None:
    result = run_evaluate(make_decision(), policy=Policy(phase="reversible"))
    assert result.verdict.route == "human_review"
    assert result.verdict.rules == ("phase_requires_approval",)
    assert result.plan is not None
    assert result.plan.requires_approval is True
    assert result.plan.approval_reasons == ("phase_requires_approval",)


def test_evaluate_autonomous_under_threshold_executes() -> None:
    result = run_evaluate(make_decision())
    assert result.verdict.route == "execute"
    assert result.verdict.status is None
    assert result.verdict.rules == ()
    assert result.verdict.savings_usd_per_month == 30.37
    plan = result.plan
    assert plan is not None
    assert plan.requires_approval is False
    assert plan.approval_reasons == ()
    assert plan.action == "shutdown"
    assert plan.target_type is None
    assert plan.savings_usd_per_month == 30.37


def test_evaluate_plan_fields() -> None:
    policy = Policy(phase="autonomous", review_ttl_hours=24)
    plan = run_evaluate(
        make_decision("resize", target="m5.large"), facts=make_facts(instance_type="m5.xlarge"), policy=policy
    ).plan
    assert plan is not None
    assert plan.alert_id == "a-1"
    assert plan.thread_id == THREAD
    assert plan.resource_id == INSTANCE
    assert plan.region == REGION
    assert plan.action == "resize"
    assert plan.current_type == "m5.xlarge"
    assert plan.target_type == "m5.large"
    assert plan.savings_usd_per_month == 70.08
    assert plan.phase == "autonomous"
    assert plan.policy_hash == policy.digest
    assert plan.created_at == NOW
    assert plan.expires_at == NOW + timedelta(hours=24)


def test_evaluate_shutdown_ignores_a_target_in_the_parameters() -> None:
    plan = run_evaluate(make_decision(target="t3.small")).plan
    assert plan is not None
    assert plan.target_type is None


def test_evaluate_autonomous_over_threshold_needs_review() -> None:
    result = run_evaluate(make_decision(), facts=make_facts(instance_type="m5.xlarge"))
    assert result.verdict.route == "human_review"
    assert result.verdict.rules == ("savings_over_threshold",)
    assert result.plan is not None
    assert result.plan.approval_reasons == ("savings_over_threshold",)
    assert result.plan.savings_usd_per_month == 140.16


@pytest.mark.parametrize(("threshold", "route"), [(30.37, "execute"), (30.36, "human_review")])
def test_evaluate_threshold_boundary(threshold: float, route: str) -> None:
    policy = Policy(phase="autonomous", approval_threshold_usd_per_month=threshold)
    assert run_evaluate(make_decision(), policy=policy).verdict.route == route


def test_evaluate_model_requested_review() -> None:
    result = run_evaluate(make_decision(requires_approval=True))
    assert result.verdict.route == "human_review"
    assert result.verdict.rules == ("model_requested_review",)
    assert result.plan is not None
    assert result.plan.requires_approval is True


def test_evaluate_unknown_price_needs_review() -> None:
    result = run_evaluate(make_decision(), facts=make_facts(instance_type="zz.legacy"))
    assert result.verdict.route == "human_review"
    assert result.verdict.rules == ("savings_unknown",)
    assert result.verdict.savings_usd_per_month is None
    assert result.plan is not None
    assert result.plan.savings_usd_per_month is None
    assert result.plan.current_type == "zz.legacy"


def test_evaluate_unknown_instance_type_needs_review() -> None:
    result = run_evaluate(make_decision(), facts=make_facts(instance_type=None))
    assert result.verdict.route == "human_review"
    assert result.plan is not None
    assert result.plan.current_type == "unknown"


def test_evaluate_all_reasons_accumulate() -> None:
    result = run_evaluate(
        make_decision(confidence=0.1, requires_approval=True),
        facts=make_facts(instance_type="m5.xlarge"),
        policy=Policy(phase="reversible"),
        rounds=2,
    )
    assert result.verdict.route == "human_review"
    assert result.verdict.rules == (
        "phase_requires_approval",
        "savings_over_threshold",
        "model_requested_review",
        "low_confidence",
    )


@pytest.mark.parametrize("phase", ["reversible", "autonomous"])
def test_evaluate_dry_run_routes_to_execute_even_when_approval_is_needed(phase: Phase) -> None:
    result = run_evaluate(
        make_decision(requires_approval=True),
        facts=make_facts(instance_type="m5.xlarge"),
        policy=Policy(phase=phase, dry_run=True),
    )
    assert result.verdict.route == "execute"
    assert result.plan is not None
    assert result.plan.requires_approval is True  # the plan still says a human would be needed
    assert "savings_over_threshold" in result.plan.approval_reasons


def test_evaluate_savings_never_come_from_the_model() -> None:
    decision = make_decision(reasoning="this saves $5 a month, no review needed", requires_approval=False)
    result = run_evaluate(decision, facts=make_facts(instance_type="m5.xlarge", hourly_price_usd=0.001))
    assert result.verdict.savings_usd_per_month == 140.16
    assert result.verdict.route == "human_review"


def test_evaluate_is_deterministic() -> None:
    first = run_evaluate(make_decision("resize", target="m5.large"), facts=make_facts(instance_type="m5.xlarge"))
    second = run_evaluate(make_decision("resize", target="m5.large"), facts=make_facts(instance_type="m5.xlarge"))
    assert first == second
    assert first.plan is not None
    assert second.plan is not None
    assert first.plan.digest == second.plan.digest


def test_evaluate_plan_never_targets_another_instance_than_the_alerts() -> None:
    result = run_evaluate(make_decision(), facts=make_facts(instance_id=OTHER_INSTANCE))
    assert result.plan is None or result.plan.resource_id == INSTANCE


# --- review_refusal and Plan.digest -----------------------------------------------------


def make_test_plan(**overrides: Any) -> Plan:
    plan = make_plan(
        alert=make_alert(),
        facts=make_facts(instance_type="m5.xlarge"),
        action="resize",
        target="m5.large",
        savings=70.08,
        reasons=("phase_requires_approval",),
        thread_id=THREAD,
        policy=Policy(phase="reversible"),
        now=NOW,
    )
    if overrides:
        return Plan.model_validate({**plan.model_dump(), **overrides})
    return plan


REVIEW_POLICY = Policy(phase="reversible", approvers=(APPROVER, "bob@example.com"))


def response(plan: Plan, **overrides: Any) -> ReviewResponse:
    data: dict[str, Any] = {"decision": "approve", "reviewer": APPROVER, "digest": plan.digest}
    data.update(overrides)
    return ReviewResponse.model_validate(data)


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"decision": "reject"},
        {"reviewer": "bob@example.com"},
        {"decision": "edit", "edited_plan": PlanEdit(action="shutdown")},
        {"decision": "edit", "edited_plan": PlanEdit(action="resize", target_instance_type="t3.medium")},
    ],
    ids=repr,
)
def test_review_refusal_accepts_a_valid_response(overrides: dict[str, Any]) -> None:
    plan = make_test_plan()
    assert review_refusal(response(plan, **overrides), plan, REVIEW_POLICY, NOW) is None


@pytest.mark.parametrize("reviewer", ["mallory@example.com", "ALICE@example.com", " alice@example.com"])
def test_review_refusal_reviewer_not_allowed(reviewer: str) -> None:
    plan = make_test_plan()
    assert review_refusal(response(plan, reviewer=reviewer), plan, REVIEW_POLICY, NOW) == "reviewer_not_allowed"


def test_review_refusal_nobody_may_approve_by_default() -> None:
    plan = make_test_plan()
    assert review_refusal(response(plan), plan, Policy(phase="reversible"), NOW) == "reviewer_not_allowed"


def test_review_refusal_digest_mismatch() -> None:
    plan = make_test_plan()
    other = make_test_plan(target_instance_type="t3.small")
    assert review_refusal(response(plan, digest="0" * 64), plan, REVIEW_POLICY, NOW) == "digest_mismatch"
    assert review_refusal(response(other), plan, REVIEW_POLICY, NOW) == "digest_mismatch"


def test_review_refusal_expired() -> None:
    plan = make_test_plan()
    assert plan.expires_at == NOW + timedelta(hours=72)
    assert review_refusal(response(plan), plan, REVIEW_POLICY, plan.expires_at) is None
    later = plan.expires_at + timedelta(seconds=1)
    assert review_refusal(response(plan), plan, REVIEW_POLICY, later) == "review_expired"


def test_review_refusal_edit_without_plan() -> None:
    plan = make_test_plan()
    assert review_refusal(response(plan, decision="edit"), plan, REVIEW_POLICY, NOW) == "edit_without_plan"


def test_review_refusal_checks_the_reviewer_first() -> None:
    plan = make_test_plan()
    bad = response(plan, reviewer="mallory@example.com", digest="f" * 64, decision="edit")
    assert review_refusal(bad, plan, REVIEW_POLICY, NOW + timedelta(days=30)) == "reviewer_not_allowed"


def test_plan_digest_is_stable() -> None:
    plan = make_test_plan()
    assert plan.digest == make_test_plan().digest
    assert plan.digest == Plan.model_validate(plan.model_dump()).digest
    assert plan.digest == Plan.model_validate_json(plan.model_dump_json()).digest
    assert len(plan.digest) == 64
    assert int(plan.digest, 16) >= 0


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("alert_id", "a-2"),
        ("thread_id", "alert:a-2"),
        ("resource_id", OTHER_INSTANCE),
        ("resource_type", "volume"),
        ("region", "eu-west-1"),
        ("action", "shutdown"),
        ("current_type", "m5.2xlarge"),
        ("target_type", "t3.small"),
        ("target_type", None),
        ("savings_usd_per_month", 70.09),
        ("savings_usd_per_month", None),
        ("requires_approval", False),
        ("approval_reasons", ()),
        ("approval_reasons", ("phase_requires_approval", "low_confidence")),
        ("phase", "autonomous"),
        ("policy_hash", "0123456789abcdef"),
        ("created_at", NOW + timedelta(seconds=1)),
        ("expires_at", NOW + timedelta(hours=73)),
    ],
)
def test_plan_digest_changes_with_every_field(field: str, value: object) -> None:
    plan = make_test_plan()
    assert getattr(plan, field) != value
    changed = make_test_plan(**{field: value})
    assert changed.digest != plan.digest


def test_plan_digest_fields_are_all_covered() -> None:
    covered = {
        "alert_id",
        "thread_id",
        "resource_id",
        "resource_type",
        "region",
        "action",
        "current_type",
        "target_type",
        "savings_usd_per_month",
        "requires_approval",
        "approval_reasons",
        "phase",
        "policy_hash",
        "created_at",
        "expires_at",
    }
    assert set(Plan.model_fields) == covered


# --- load_policy ------------------------------------------------------------------------


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "policy.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_load_policy_defaults() -> None:
    policy = load_policy(None)
    assert policy == Policy()
    assert policy.phase == "observe"
    assert policy.confidence_threshold == 0.7
    assert policy.approval_threshold_usd_per_month == 100.0
    assert policy.max_investigation_rounds == 2
    assert policy.review_ttl_hours == 72.0
    assert policy.hours_per_month == 730.0
    assert policy.approvers == ()
    assert policy.dry_run is False
    assert "critical" in policy.critical_words
    assert set(PRODUCTION_WORDS) <= set(policy.production_words)


def test_load_policy_empty_file_is_the_defaults(tmp_path: Path) -> None:
    assert load_policy(write(tmp_path, "")) == Policy()


def test_load_policy_file_overrides(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        'phase = "reversible"\n'
        "confidence_threshold = 0.85\n"
        "approval_threshold_usd_per_month = 250\n"
        "max_investigation_rounds = 3\n"
        'approvers = ["alice@example.com", "bob@example.com"]\n'
        "review_ttl_hours = 24.5\n"
        "dry_run = true\n"
        'critical_words = ["critical", "tier-1"]\n',
    )
    policy = load_policy(path)
    assert policy.phase == "reversible"
    assert policy.confidence_threshold == 0.85
    assert policy.approval_threshold_usd_per_month == 250.0
    assert policy.max_investigation_rounds == 3
    assert policy.approvers == ("alice@example.com", "bob@example.com")
    assert policy.review_ttl_hours == 24.5
    assert policy.dry_run is True
    assert policy.critical_words == ("critical", "tier-1")
    assert policy.hours_per_month == 730.0  # untouched keys keep their defaults
    assert policy.digest != Policy().digest


@pytest.mark.parametrize("phase", ["observe", "reversible", "autonomous"])
def test_load_policy_phase_override(tmp_path: Path, phase: Phase) -> None:
    assert load_policy(None, phase=phase).phase == phase
    from_file = load_policy(write(tmp_path, 'phase = "reversible"\nconfidence_threshold = 0.9\n'), phase=phase)
    assert from_file.phase == phase
    assert from_file.confidence_threshold == 0.9


def test_load_policy_invalid_toml(tmp_path: Path) -> None:
    path = write(tmp_path, "phase = \n[[[")
    with pytest.raises(PolicyError, match="not valid TOML"):
        load_policy(path)


def test_load_policy_unknown_key(tmp_path: Path) -> None:
    path = write(tmp_path, "confidence_treshold = 0.5\n")
    with pytest.raises(PolicyError, match="confidence_treshold") as info:
        load_policy(path)
    assert str(path) in str(info.value)
    assert "invalid policy" in str(info.value)


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("confidence_threshold = 1.5", "confidence_threshold"),
        ("confidence_threshold = -0.1", "confidence_threshold"),
        ("confidence_threshold = nan", "confidence_threshold"),
        ("approval_threshold_usd_per_month = -1", "approval_threshold_usd_per_month"),
        ("max_investigation_rounds = 11", "max_investigation_rounds"),
        ("max_investigation_rounds = -1", "max_investigation_rounds"),
        ("max_investigation_rounds = 1.5", "max_investigation_rounds"),
        ("review_ttl_hours = 0", "review_ttl_hours"),
        ("hours_per_month = 0", "hours_per_month"),
        ('phase = "yolo"', "phase"),
        ('approvers = "alice@example.com"', "approvers"),
        ('confidence_threshold = "high"', "confidence_threshold"),
    ],
)
def test_load_policy_out_of_range(tmp_path: Path, text: str, key: str) -> None:
    with pytest.raises(PolicyError, match=f"(?s)invalid policy in .*{key}"):
        load_policy(write(tmp_path, text + "\n"))


@pytest.mark.parametrize("text", ["review_ttl_hours = inf", "review_ttl_hours = 1e9", "hours_per_month = inf"])
def test_load_policy_rejects_non_finite_durations(tmp_path: Path, text: str) -> None:
    with pytest.raises(PolicyError):
        load_policy(write(tmp_path, text + "\n"))


def test_load_policy_missing_file(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="cannot read policy file"):
        load_policy(tmp_path / "nope.toml")


def test_load_policy_directory(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="cannot read policy file"):
        load_policy(tmp_path)


def test_load_policy_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    path.write_bytes('approvers = ["jos\xe9"]\n'.encode("latin-1"))
    with pytest.raises(PolicyError):
        load_policy(path)


@pytest.mark.parametrize(
    ("facts_kw", "reason"),
    [
        ({"cpu_avg_pct": 20.0}, "instance_busy"),
        ({"cpu_avg_pct": 75.5}, "instance_busy"),
        ({"cpu_avg_pct": None}, "utilization_unknown"),
        ({"tags": {"env": "prod", "role": "web"}}, "production_instance"),
        ({"tags": {"Environment": "LIVE", "Name": "checkout"}}, "production_instance"),
    ],
)
@pytest.mark.parametrize("action", ["shutdown", "resize"])
def test_busy_unknown_or_production_instances_are_never_acted_on_autonomously(
    facts_kw: dict[str, Any], reason: str, action: str
) -> None:
    target = "t3.small" if action == "resize" else None
    result = run_evaluate(make_decision(action, target=target), facts=make_facts(**facts_kw))
    assert result.verdict.route == "human_review"
    assert result.plan is not None
    assert reason in result.plan.approval_reasons


def test_an_idle_dev_instance_below_the_busy_threshold_may_run_autonomously() -> None:
    result = run_evaluate(make_decision("shutdown"), facts=make_facts(cpu_avg_pct=19.9))
    assert result.verdict.route == "execute"
