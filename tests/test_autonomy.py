"""Autonomy earned by evidence: agreement records, the Wilson bound, earning and revoking, and the gate it puts on
the autonomous phase (which only ever adds a reason for a person)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from costguard.policy import AutonomyPolicy, Policy, approval_reasons, evaluate, standing, wilson_lower_bound
from costguard.policy.autonomy import plan_class, savings_band
from costguard.state import Alert, Decision, Facts, ReviewResponse
from tests.conftest import APPROVER, Harness, cli_env, decision, launch
from tests.test_policy_properties import (
    ALERT,
    BOOK,
    NOW,
    SAFE_TAGS,
    decision_strategy,
    facts_strategy,
    policy_strategy,
    protected_tags,
)

HarnessFactory = Callable[..., Harness]


def test_the_wilson_lower_bound_matches_known_values() -> None:
    assert wilson_lower_bound(0, 0) == 0.0
    assert round(wilson_lower_bound(20, 20), 4) == 0.8389
    assert round(wilson_lower_bound(95, 100), 4) == 0.8882  # by hand: 0.9334 - 0.0451
    assert round(wilson_lower_bound(5, 10), 4) == 0.2366
    assert wilson_lower_bound(10, 10) < wilson_lower_bound(100, 100) < 1.0


def test_a_class_earns_loses_and_earns_back_autonomy() -> None:
    rule = AutonomyPolicy(required=True, min_reviews=3, min_agreement_lower_bound=0.3)
    assert standing("c", ["agree"], rule).standing == "not_yet"
    assert standing("c", ["agree"], rule).more_needed == 2
    assert standing("c", ["agree"] * 3, rule).standing == "earned"
    revoked = standing("c", ["agree"] * 3 + ["reject"], rule)
    assert (revoked.standing, revoked.streak, revoked.more_needed) == ("revoked", 0, 3)
    assert standing("c", ["agree"] * 3 + ["undo"], rule).undos == 1
    back = standing("c", ["agree"] * 3 + ["undo"] + ["agree"] * 3, rule)
    assert back.standing == "earned"
    assert standing("c", ["edit", "agree", "agree"], rule).standing == "not_yet"  # an edit disagrees


def test_savings_bands_name_the_class() -> None:
    rule = AutonomyPolicy()
    assert savings_band(None, rule.savings_bands_usd) == "unknown"
    assert savings_band(15.18, rule.savings_bands_usd) == "<=100"
    assert savings_band(5000, rule.savings_bands_usd) == ">1000"
    assert plan_class("volume", "delete", 16.0, rule) == "volume:delete:<=100"


@given(
    phase=st.sampled_from(["observe", "reversible", "autonomous"]),
    required=st.booleans(),
    savings=st.one_of(st.none(), st.floats(0, 10_000)),
    flags=st.lists(st.booleans(), min_size=6, max_size=6),
)
def test_evidence_only_ever_adds_a_reason_for_a_person(
    phase: str, required: bool, savings: float | None, flags: list[bool]
) -> None:
    policy = Policy.model_validate({"phase": phase, "autonomy": {"required": required}})
    common: dict[str, Any] = {
        "decision_requires_approval": flags[0],
        "low_confidence": flags[1],
        "savings": savings,
        "policy": policy,
        "utilization_known": flags[2],
        "busy": flags[3],
        "production": flags[4],
        "irreversible": flags[5],
    }
    earned = set(approval_reasons(**common, autonomy_earned=True))
    not_earned = set(approval_reasons(**common, autonomy_earned=False))
    assert earned <= not_earned
    assert not_earned - earned <= {"autonomy_not_earned"}
    if savings is None or savings > policy.approval_threshold_usd_per_month:
        assert earned  # evidence never lets an unknown or over-threshold saving through
    if flags[5]:
        assert "irreversible_action" in earned


def _approve(h: Harness, thread_id: str) -> Any:
    plan = h.guard.snapshot(thread_id).values["plan"]
    return h.guard.review(thread_id, ReviewResponse(decision="approve", reviewer=APPROVER, digest=plan.digest))


def test_a_class_earns_autonomy_from_reviews_and_an_undo_revokes_it(make_harness: HarnessFactory, ec2: Any) -> None:
    ids = [launch(ec2, "t3.small", {"env": "dev"}) for _ in range(5)]
    h = make_harness(
        [decision(i) for i in ids],
        phase="autonomous",
        autonomy={"required": True, "min_reviews": 2, "min_agreement_lower_bound": 0.0},
    )
    first = h.guard.process_alert(Alert(alert_id="au-0", instance_id=ids[0]))
    assert first.status == "awaiting_review"
    assert "autonomy_not_earned" in first.rules  # $15/month, autonomous phase: once a switch, now evidence
    assert _approve(h, first.thread_id).status == "executed"
    second = h.guard.process_alert(Alert(alert_id="au-1", instance_id=ids[1]))
    assert second.status == "awaiting_review"
    assert _approve(h, second.thread_id).status == "executed"

    earned = h.guard.process_alert(Alert(alert_id="au-2", instance_id=ids[2]))
    assert earned.status == "executed"  # two agreeing reviews of instance:shutdown:<=100: it acts alone
    h.guard.undo(earned.thread_id, APPROVER)  # a person disagrees after the fact
    revoked = h.guard.process_alert(Alert(alert_id="au-3", instance_id=ids[3]))
    assert revoked.status == "awaiting_review"
    assert "autonomy_not_earned" in revoked.rules

    if h.db.startswith("postgresql://"):
        return  # the CLI below reads the SQLite file; the store API is the same on both
    env = cli_env(ec2.meta.endpoint_url, h.db)  # type: ignore[arg-type]
    policy = h.alerts_sink.parent / "policy.toml"
    policy.write_text("[autonomy]\nrequired = true\nmin_reviews = 2\nmin_agreement_lower_bound = 0.0\n")
    shown = subprocess.run(
        [sys.executable, "-m", "costguard.run", "autonomy", "--json", "--policy", str(policy)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert shown.returncode == 0, shown.stderr
    (row,) = json.loads(shown.stdout)["classes"]
    assert row["class"] == "instance:shutdown:<=100"
    assert (row["reviews"], row["agreeing"], row["undos"], row["standing"]) == (3, 2, 1, "revoked")
    assert row["more_agreeing_reviews_needed"] == 2
    from costguard.app.metrics import collect

    rule = AutonomyPolicy(required=True, min_reviews=2, min_agreement_lower_bound=0.0)
    business = collect(h.db, autonomy=rule)["business"]
    assert (business["agreement_votes"], business["agreement_rate"]) == (3, round(2 / 3, 4))
    assert business["autonomy_classes"]["instance:shutdown:<=100"]["standing"] == "revoked"
    assert business["acted_without_human"] == 1  # it acted alone (then a person undid it)
    from prometheus_client import generate_latest

    from costguard.app.metrics import registry_for

    exposed = generate_latest(registry_for(h.db, rule)).decode()
    assert 'costguard_autonomy_earned{plan_class="instance:shutdown:<=100"} 0.0' in exposed
    assert 'costguard_agreement_lower_bound{plan_class="instance:shutdown:<=100"}' in exposed
    assert "costguard_autonomy_ratio 0.3333" in exposed  # 1 of the 3 that ended acted alone


ALL_CLASSES = frozenset(
    f"instance:{action}:{band}"
    for action in ("shutdown", "resize")
    for band in ("<=10", "<=100", "<=1000", ">1000", "unknown")
)


@settings(max_examples=200, deadline=None)
@given(
    decision=decision_strategy(),
    facts=facts_strategy(tags=protected_tags()),
    policy=policy_strategy(phase="autonomous", autonomy=AutonomyPolicy(required=True)),
    rounds=st.integers(0, 4),
)
def test_no_evidence_makes_a_protected_resource_runnable(
    decision: Decision, facts: Facts, policy: Policy, rounds: int
) -> None:
    """Every class earned: a protected instance still gets no runnable plan."""
    result = evaluate(
        alert=ALERT,
        facts=facts,
        decision=decision,
        investigation_rounds=rounds,
        thread_id="alert:a-1",
        prices=BOOK,
        policy=policy,
        now=NOW,
        earned=ALL_CLASSES,
    )
    assert result.verdict.route not in ("execute", "human_review")
    assert result.plan is None


@settings(max_examples=200, deadline=None)
@given(
    decision=decision_strategy(),
    facts=facts_strategy(tags=st.just(SAFE_TAGS)),
    policy=policy_strategy(phase="autonomous", dry_run=False, autonomy=AutonomyPolicy(required=True)),
    rounds=st.integers(0, 4),
)
def test_no_evidence_lets_an_over_threshold_saving_run_alone(
    decision: Decision, facts: Facts, policy: Policy, rounds: int
) -> None:
    result = evaluate(
        alert=ALERT,
        facts=facts,
        decision=decision,
        investigation_rounds=rounds,
        thread_id="alert:a-1",
        prices=BOOK,
        policy=policy,
        now=NOW,
        earned=ALL_CLASSES,
    )
    if result.verdict.route == "execute":
        assert result.plan is not None
        assert result.plan.savings_usd_per_month is not None
        assert result.plan.savings_usd_per_month <= policy.approval_threshold_usd_per_month
    unearned = evaluate(
        alert=ALERT,
        facts=facts,
        decision=decision,
        investigation_rounds=rounds,
        thread_id="alert:a-1",
        prices=BOOK,
        policy=policy,
        now=NOW,
        earned=frozenset(),
    )
    assert unearned.verdict.route != "execute"  # nothing earned: nothing acts alone
