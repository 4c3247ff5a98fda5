"""The rails of the other kinds, as properties: whatever the model proposes and whatever the facts, no plan
releases an associated address, deletes an attached volume, or stops a protected database."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from costguard.policy import Policy, evaluate
from costguard.state import Alert, Decision, Facts
from tests.test_policy_properties import BOOK

NOW = datetime(2026, 12, 1, tzinfo=UTC)
POLICIES = st.builds(
    Policy,
    phase=st.sampled_from(["observe", "reversible", "autonomous"]),
    irreversible_autonomous_max_usd_per_month=st.sampled_from([0.0, 5.0, 1e6]),
    approval_threshold_usd_per_month=st.sampled_from([0.0, 100.0, 1e6]),
    unattached_volume_min_days=st.sampled_from([0.0, 7.0]),
)
MAYBE_BOOL = st.sampled_from([None, True, False])
TAGS = st.one_of(
    st.none(),
    st.dictionaries(
        st.sampled_from(["env", "Name", "criticality", "team"]),
        st.sampled_from(["dev", "prod", "critical", "db", "scratch"]),
        max_size=3,
    ),
)


def decision(resource_id: str, action: str, confidence: float) -> Decision:
    return Decision.model_validate(
        {
            "action": action,
            "confidence": confidence,
            "reasoning": "r",
            "parameters": {"resource_id": resource_id},
            "requires_approval": False,
        }
    )


def _plan_for(alert: Alert, facts: Facts, action: str, confidence: float, policy: Policy) -> object:
    found = evaluate(
        alert=alert,
        facts=facts,
        decision=decision(alert.resource_id, action, confidence),
        investigation_rounds=9,
        thread_id="t",
        prices=BOOK,
        policy=policy,
        now=NOW,
    )
    return found.plan if found.verdict.route in ("execute", "human_review") else None


@settings(max_examples=300, deadline=None)
@given(
    action=st.sampled_from(["delete", "resize", "release", "shutdown", "monitor"]),
    confidence=st.floats(0, 1),
    policy=POLICIES,
    state=st.sampled_from([None, "available", "in-use", "creating"]),
    attached=st.one_of(st.none(), st.just(()), st.just(("i-0123abcd",))),
    unused=st.one_of(st.none(), st.floats(0, 100)),
    modifying=MAYBE_BOOL,
    kind=st.sampled_from([None, "gp2", "gp3", "st1"]),
    tags=TAGS,
)
def test_no_plan_deletes_an_attached_volume(
    action: str,
    confidence: float,
    policy: Policy,
    state: str | None,
    attached: tuple[str, ...] | None,
    unused: float | None,
    modifying: bool | None,
    kind: str | None,
    tags: dict[str, str] | None,
) -> None:
    alert = Alert(alert_id="a", resource_id="vol-0123abcd")
    facts = Facts(
        resource_id="vol-0123abcd",
        resource_type="volume",
        region="us-east-1",
        exists=True,
        state=state,
        attached_to=attached,
        unused_days=unused,
        modifying=modifying,
        volume_type=kind,
        size_gib=100,
        tags=tags,
    )
    plan = _plan_for(alert, facts, action, confidence, policy)
    if plan is None:
        return
    assert plan.action in ("delete", "resize")  # type: ignore[attr-defined]
    if plan.action == "delete":  # type: ignore[attr-defined]
        assert attached == ()
        assert state == "available"
        assert unused is not None
        assert unused >= policy.unattached_volume_min_days
        assert plan.requires_approval or (  # type: ignore[attr-defined]
            policy.phase == "autonomous"
            and plan.savings_usd_per_month is not None  # type: ignore[attr-defined]
            and plan.savings_usd_per_month <= policy.irreversible_autonomous_max_usd_per_month  # type: ignore[attr-defined]
        )
    else:
        assert kind == "gp2"
        assert modifying is False
        assert plan.target_type == "gp3"  # type: ignore[attr-defined]
    assert tags is not None
    assert "critical" not in {v.lower() for v in tags.values()} | {k.lower() for k in tags}


@settings(max_examples=200, deadline=None)
@given(
    action=st.sampled_from(["release", "delete", "shutdown"]),
    association=st.sampled_from([None, "", "eipassoc-0123abcd"]),
    policy=POLICIES,
    tags=TAGS,
)
def test_no_plan_releases_an_associated_address(
    action: str, association: str | None, policy: Policy, tags: dict[str, str] | None
) -> None:
    alert = Alert(alert_id="a", resource_id="eipalloc-0123abcd")
    facts = Facts(
        resource_id="eipalloc-0123abcd",
        resource_type="address",
        region="us-east-1",
        exists=True,
        association_id=association,
        tags=tags,
    )
    plan = _plan_for(alert, facts, action, 0.95, policy)
    if plan is None:
        return
    assert plan.action == "release"  # type: ignore[attr-defined]
    assert association == ""


@settings(max_examples=300, deadline=None)
@given(
    policy=POLICIES,
    protection=MAYBE_BOOL,
    multi_az=MAYBE_BOOL,
    replication=MAYBE_BOOL,
    engine=st.sampled_from([None, "postgres", "mysql", "aurora-postgresql"]),
    state=st.sampled_from([None, "available", "stopped", "backing-up"]),
    tags=st.one_of(
        TAGS,
        st.sampled_from([{"Environment": "Production"}, {"env": "prd"}, {"stage": "live"}, {"Production": "true"}]),
    ),
)
def test_no_plan_stops_a_protected_database(
    policy: Policy,
    protection: bool | None,
    multi_az: bool | None,
    replication: bool | None,
    engine: str | None,
    state: str | None,
    tags: dict[str, str] | None,
) -> None:
    alert = Alert(alert_id="a", resource_id="dev-pg", resource_type="db_instance")
    facts = Facts(
        resource_id="dev-pg",
        resource_type="db_instance",
        region="us-east-1",
        exists=True,
        instance_type="db.t3.medium",
        engine=engine,
        deletion_protection=protection,
        multi_az=multi_az,
        replication=replication,
        state=state,
        tags=tags,
        cpu_avg_pct=1.0,
        connections_max=0.0,
    )
    plan = _plan_for(alert, facts, "shutdown", 0.95, policy)
    if plan is None:
        return
    assert (protection, multi_az, replication, state) == (False, False, False, "available")
    assert engine in ("postgres", "mysql")
    assert tags is not None
    lowered = {k.lower(): v.lower() for k, v in tags.items()}
    assert "prod" not in lowered.values()
    assert "production" not in lowered


def test_the_properties_above_are_not_vacuous_clean_resources_do_get_plans() -> None:
    """The same rails let the clean cases through, so the properties above have plans to check."""
    policy = Policy(phase="reversible")
    volume = Facts(
        resource_id="vol-0123abcd",
        resource_type="volume",
        region="us-east-1",
        exists=True,
        state="available",
        attached_to=(),
        unused_days=30,
        modifying=False,
        volume_type="gp2",
        size_gib=100,
        tags={"env": "dev"},
    )
    vol_alert = Alert(alert_id="a", resource_id="vol-0123abcd")
    assert _plan_for(vol_alert, volume, "delete", 0.95, policy) is not None
    assert _plan_for(vol_alert, volume, "resize", 0.95, policy) is not None
    free = Facts(
        resource_id="eipalloc-0123abcd",
        resource_type="address",
        region="us-east-1",
        exists=True,
        association_id="",
        tags={},
    )
    assert _plan_for(Alert(alert_id="a", resource_id="eipalloc-0123abcd"), free, "release", 0.95, policy) is not None
    db = Facts(
        resource_id="dev-pg",
        resource_type="db_instance",
        region="us-east-1",
        exists=True,
        instance_type="db.t3.medium",
        engine="postgres",
        deletion_protection=False,
        multi_az=False,
        replication=False,
        state="available",
        tags={"env": "dev"},
        cpu_avg_pct=1.0,
        connections_max=0.0,
    )
    db_alert = Alert(alert_id="a", resource_id="dev-pg", resource_type="db_instance")
    plan = _plan_for(db_alert, db, "shutdown", 0.95, policy)
    assert plan is not None
    assert plan.savings_usd_per_month == round(0.072 * 730, 2)  # type: ignore[attr-defined]
