"""Properties of `evaluate`: whatever the model proposes, the rails hold.

Hypothesis draws any decision (any action, confidence, instance id, target, approval flag), any
facts, any policy, and tags mixing random text with protected spellings in random case and
whitespace. No network, no cloud, no model.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from costguard.policy import Evaluation, Policy, evaluate
from costguard.state import Alert, Decision, DecisionParameters, Facts

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
INSTANCE = "i-0123456789abcdef0"
REGION = "us-east-1"

SETTINGS = settings(
    max_examples=200,
    deadline=None,
    database=None,  # nothing written into the working tree
    suppress_health_check=[HealthCheck.function_scoped_fixture],  # conftest's autouse model-call guard
)

PRICES: dict[str, tuple[float, str]] = {
    "m5.2xlarge": (0.384, "x86_64"),
    "m5.xlarge": (0.192, "x86_64"),
    "m5.large": (0.096, "x86_64"),
    "t3.large": (0.0832, "x86_64"),
    "t3.medium": (0.0416, "x86_64"),
    "t3.small": (0.0208, "x86_64"),
    "t3.nano": (0.0052, "x86_64"),
    "m6g.large": (0.077, "arm64"),
    "t4g.medium": (0.0336, "arm64"),
    "t4g.small": (0.0168, "arm64"),
}
TYPES = sorted(PRICES)


class FakePriceBook:
    def hourly(self, instance_type: str, region: str) -> float | None:
        entry = PRICES.get(instance_type)
        return None if entry is None else entry[0]

    def architecture(self, instance_type: str) -> str | None:
        entry = PRICES.get(instance_type)
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


BOOK = FakePriceBook()
DEFAULTS = Policy()

# --- strategies -------------------------------------------------------------------------

WHITESPACE = st.sampled_from(["", " ", "  ", "\t", "\n", " \t "])


@st.composite
def spelled(draw: st.DrawFn, word: str) -> str:
    """`word` in random case with random surrounding whitespace."""
    flips = draw(st.lists(st.booleans(), min_size=len(word), max_size=len(word)))
    cased = "".join(ch.upper() if flip else ch.lower() for ch, flip in zip(word, flips, strict=True))
    return draw(WHITESPACE) + cased + draw(WHITESPACE)


def one_of_words(words: tuple[str, ...]) -> st.SearchStrategy[str]:
    return st.sampled_from(words).flatmap(spelled)


random_tags = st.dictionaries(st.text(max_size=20), st.text(max_size=30), max_size=5)
safe_text = st.sampled_from(["", "dev", "web", "team-a", "staging", "api", "batch", "owner", "x"])


@st.composite
def critical_injection(draw: st.DrawFn) -> dict[str, str]:
    word = draw(spelled("critical"))
    where = draw(st.sampled_from(["key", "value", "token-in-value", "token-in-key"]))
    if where == "key":
        return {word: draw(st.text(max_size=10))}
    if where == "value":
        return {draw(st.text(min_size=1, max_size=10)): word}
    prefix = draw(st.sampled_from(["business", "mission", "tier"]))
    sep = draw(st.sampled_from(["-", "_", " ", ".", ":", "/"]))
    compound = f"{prefix}{sep}{word.strip()}"
    if where == "token-in-key":
        return {compound: draw(st.text(max_size=10))}
    return {draw(st.text(min_size=1, max_size=10)): compound}


@st.composite
def production_database_injection(draw: st.DrawFn) -> dict[str, str]:
    prod = draw(one_of_words(DEFAULTS.production_words))
    database = draw(one_of_words(DEFAULTS.database_words))
    if draw(st.booleans()):
        # a name tag that says both, e.g. "orders-prod-db"
        sep = draw(st.sampled_from(["-", "_", ".", " "]))
        key = draw(st.sampled_from(["Name", "name", " NAME ", "app", "Service"]))
        return {key: f"{draw(safe_text)}{sep}{prod.strip()}{sep}{database.strip()}"}
    env_key = draw(one_of_words(DEFAULTS.environment_keys))
    role_key = draw(one_of_words(DEFAULTS.role_keys))
    return {env_key: prod, role_key: database}


@st.composite
def protected_tags(draw: st.DrawFn) -> dict[str, str] | None:
    """Tags that make any instance protected: random tags with a protected spelling injected."""
    kind = draw(st.sampled_from(["unreadable", "critical", "production_database"]))
    if kind == "unreadable":
        return None
    tags = draw(random_tags)
    injected = draw(critical_injection() if kind == "critical" else production_database_injection())
    tags.update(injected)  # injected last: a random key can never overwrite it
    return tags


SAFE_TAGS = {"env": "dev", "role": "web"}
any_tags = st.sampled_from(["none", "random", "protected", "safe", "safe"]).flatmap(
    lambda kind: {"none": st.none(), "random": random_tags, "protected": protected_tags()}.get(kind, st.just(SAFE_TAGS))
)
known_types = st.sampled_from(TYPES)
maybe_known_type = st.sampled_from(["known", "known", "known", "none", "text"]).flatmap(
    lambda kind: known_types if kind == "known" else st.none() if kind == "none" else st.text(max_size=12)
)
other_instance_ids = st.one_of(
    st.from_regex(r"\Ai-[0-9a-f]{17}\Z"),
    st.from_regex(r"\Ai-[0-9a-f]{8}\Z"),
    st.just(INSTANCE.upper()),
    st.just(f" {INSTANCE}"),
    st.text(max_size=25),
).filter(lambda s: s != INSTANCE)


@st.composite
def facts_strategy(
    draw: st.DrawFn, tags: st.SearchStrategy[dict[str, str] | None] = any_tags, *, clean: bool | None = None
) -> Facts:
    """Three times in four (always when `clean`) every rail but the tags passes: deep routes are reached often."""
    instance_type = draw(maybe_known_type)
    if clean or (clean is None and draw(st.sampled_from([True, True, True, False]))):
        known = PRICES.get(instance_type or "")
        rails: dict[str, Any] = {
            "exists": True,
            "state": draw(st.sampled_from(["running", "running", "running", "stopped"])),
            "root_device_type": "ebs",
            "disable_api_stop": False,
            "architecture": draw(st.sampled_from([None, known[1] if known else "x86_64"])),
        }
    else:
        rails = {
            "exists": draw(st.booleans()),
            "state": draw(st.sampled_from(["running", "stopped", "terminated", "pending", "stopping", None])),
            "root_device_type": draw(st.sampled_from(["ebs", "instance-store", None])),
            "disable_api_stop": draw(st.sampled_from([False, True, None])),
            "architecture": draw(st.sampled_from(["x86_64", "arm64", None])),
        }
    return Facts(
        resource_id=INSTANCE,
        region=draw(st.sampled_from([REGION, "eu-west-1"])),
        instance_type=instance_type,
        tags=draw(tags),
        hourly_price_usd=draw(st.one_of(st.none(), st.floats(0, 1000, allow_nan=False))),
        **rails,
    )


# any confidence in [0, 1], but not mostly 0.0 (hypothesis favours edges): many above 0.7 too
confidences = st.sampled_from(["any", "high", "high", "edge"]).flatmap(
    lambda kind: {
        "any": st.floats(0, 1, allow_nan=False),
        "high": st.floats(0.7, 1, allow_nan=False),
    }.get(kind, st.sampled_from([0.0, 0.5, 0.69999, 0.7, 0.9, 1.0]))
)


@st.composite
def decision_strategy(draw: st.DrawFn, instance_ids: st.SearchStrategy[str] | None = None) -> Decision:
    if instance_ids is None:  # mostly the alert's own instance, so the rails are reached
        own = draw(st.sampled_from([True, True, True, False]))
        instance_ids = st.just(INSTANCE) if own else other_instance_ids
    return Decision(
        action=draw(st.sampled_from(["shutdown", "shutdown", "resize", "resize", "monitor", "investigate"])),
        confidence=draw(confidences),
        reasoning=draw(st.text(max_size=50)),
        parameters=DecisionParameters(
            instance_id=draw(instance_ids),
            target_instance_type=draw(maybe_known_type),
        ),
        requires_approval=draw(st.sampled_from([False, False, True])),
    )


@st.composite
def policy_strategy(draw: st.DrawFn, /, **fixed: Any) -> Policy:
    data: dict[str, Any] = {
        "phase": draw(st.sampled_from(["observe", "reversible", "autonomous"])),
        "dry_run": draw(st.booleans()),
        "confidence_threshold": draw(st.sampled_from([0.7, 0.7, 0.5, 0.9]) | st.floats(0, 1, allow_nan=False)),
        "approval_threshold_usd_per_month": draw(
            st.sampled_from([None, None, 50.0, 100.0, 1000.0]).flatmap(
                lambda fixed: st.floats(0, 300, allow_nan=False) if fixed is None else st.just(fixed)
            )
        ),
        "max_investigation_rounds": draw(st.integers(0, 3)),
        "hours_per_month": draw(st.sampled_from([730.0, 720.0, 744.0])),
    }
    data.update(fixed)
    return Policy(**data)


ALERT = Alert(alert_id="a-1", instance_id=INSTANCE, region=REGION, monthly_cost_usd=500.0)
RUNNABLE = {"execute", "human_review"}


def run(decision: Decision, facts: Facts, policy: Policy, rounds: int) -> Evaluation:
    result = evaluate(
        alert=ALERT,
        facts=facts,
        decision=decision,
        investigation_rounds=rounds,
        thread_id="alert:a-1",
        prices=BOOK,
        policy=policy,
        now=NOW,
    )
    event(f"route={result.verdict.route} status={result.verdict.status} plan={result.plan is not None}")
    return result


def expected_savings(action: str, target: str | None, facts: Facts, policy: Policy) -> float | None:
    """What the price book says, computed independently of the policy module."""
    current = PRICES.get(facts.instance_type or "")
    if action == "shutdown":
        return None if current is None else round(current[0] * policy.hours_per_month, 2)
    wanted = PRICES.get(target or "")
    if current is None or wanted is None:
        return None
    return round((current[0] - wanted[0]) * policy.hours_per_month, 2)


# --- properties -------------------------------------------------------------------------


@SETTINGS
@given(
    decision=decision_strategy(),
    facts=facts_strategy(tags=protected_tags()),
    policy=policy_strategy(),
    rounds=st.integers(0, 4),
)
def test_protected_instances_never_get_a_runnable_plan(
    decision: Decision, facts: Facts, policy: Policy, rounds: int
) -> None:
    result = run(decision, facts, policy, rounds)
    assert result.verdict.route not in RUNNABLE
    assert result.plan is None
    if result.verdict.status == "rejected" and facts.exists and decision.parameters.instance_id == INSTANCE:
        assert {"tags_unreadable", "critical_tag", "production_database"} & set(result.verdict.rules)


@SETTINGS
@given(
    decision=decision_strategy(instance_ids=other_instance_ids),
    facts=facts_strategy(tags=st.just(SAFE_TAGS)),
    policy=policy_strategy(),
    rounds=st.integers(0, 4),
)
def test_another_instance_is_never_acted_on(decision: Decision, facts: Facts, policy: Policy, rounds: int) -> None:
    result = run(decision, facts, policy, rounds)
    assert result.verdict.route not in RUNNABLE
    assert result.plan is None
    if decision.action in ("shutdown", "resize") and result.verdict.route == "report":
        assert result.verdict.rules == ("wrong_instance",)


def check_autonomous(result: Evaluation, decision: Decision, policy: Policy) -> None:
    if result.verdict.route == "execute":
        plan = result.plan
        assert plan is not None
        assert plan.savings_usd_per_month is not None
        assert plan.savings_usd_per_month <= policy.approval_threshold_usd_per_month
        assert plan.requires_approval is False
        assert plan.approval_reasons == ()
        assert decision.requires_approval is False
        assert decision.confidence >= policy.confidence_threshold
    if result.verdict.route == "human_review":
        assert result.plan is not None
        assert result.plan.requires_approval is True
        assert result.plan.approval_reasons


@SETTINGS
@given(
    decision=decision_strategy(),
    facts=facts_strategy(),
    policy=policy_strategy(phase="autonomous", dry_run=False),
    rounds=st.integers(0, 4),
)
def test_autonomous_execution_only_under_the_threshold(
    decision: Decision, facts: Facts, policy: Policy, rounds: int
) -> None:
    check_autonomous(run(decision, facts, policy, rounds), decision, policy)


@st.composite
def runnable_decisions(draw: st.DrawFn) -> Decision:
    """Shutdown or resize of the alert's own instance to a listed type: the rails usually pass."""
    return Decision(
        action=draw(st.sampled_from(["shutdown", "resize"])),
        confidence=draw(confidences),
        reasoning=draw(st.text(max_size=20)),
        parameters=DecisionParameters(instance_id=INSTANCE, target_instance_type=draw(known_types)),
        requires_approval=draw(st.sampled_from([False, False, True])),
    )


@st.composite
def runnable_facts(draw: st.DrawFn) -> Facts:
    """A running, EBS-backed, unprotected instance whose type is usually in the price list."""
    unlisted = draw(st.sampled_from([False, False, True]))
    instance_type = "zz.legacy" if unlisted else draw(known_types)
    known = PRICES.get(instance_type)
    return Facts(
        resource_id=INSTANCE,
        region=REGION,
        exists=True,
        instance_type=instance_type,
        state="running",
        tags=SAFE_TAGS,
        root_device_type="ebs",
        disable_api_stop=False,
        architecture=known[1] if known else None,
    )


@SETTINGS
@given(
    decision=runnable_decisions(),
    facts=runnable_facts(),
    policy=policy_strategy(phase="autonomous", dry_run=False),
    rounds=st.integers(0, 4),
)
def test_autonomous_execution_only_under_the_threshold_runnable_instance(
    decision: Decision, facts: Facts, policy: Policy, rounds: int
) -> None:
    """The same property where the rails pass, so that `execute` is reached often."""
    check_autonomous(run(decision, facts, policy, rounds), decision, policy)


@SETTINGS
@given(
    decision=decision_strategy(),
    facts=facts_strategy(),
    policy=policy_strategy(phase="observe"),
    rounds=st.integers(0, 4),
)
def test_observe_phase_never_runs_anything(decision: Decision, facts: Facts, policy: Policy, rounds: int) -> None:
    result = run(decision, facts, policy, rounds)
    assert result.verdict.route not in RUNNABLE
    if result.plan is not None:
        assert result.verdict.status == "observed"


@SETTINGS
@given(
    decision=decision_strategy(instance_ids=st.just(INSTANCE)),
    facts=facts_strategy(),
    policy=policy_strategy(),
    rounds=st.integers(0, 4),
    claim=st.text(max_size=40),
)
def test_savings_come_from_the_price_book(
    decision: Decision, facts: Facts, policy: Policy, rounds: int, claim: str
) -> None:
    result = run(decision, facts, policy, rounds)
    if result.plan is not None:
        plan = result.plan
        expected = expected_savings(plan.action, plan.target_type, facts, policy)
        assert plan.savings_usd_per_month == expected
        assert result.verdict.savings_usd_per_month == expected
        assert plan.resource_id == INSTANCE
        assert plan.action == decision.action
        # the model's words, flag and confidence change the route, never the figure
        other = decision.model_copy(update={"reasoning": f"saves ${claim} a month", "requires_approval": True})
        again = run(other, facts, policy, rounds)
        assert again.verdict.savings_usd_per_month == expected


@SETTINGS
@given(
    decision=decision_strategy(instance_ids=st.just(INSTANCE)),
    facts=facts_strategy(tags=st.just(SAFE_TAGS)),
    policy=policy_strategy(),
    rounds=st.integers(0, 4),
)
def test_a_plan_exists_only_when_the_rails_pass(decision: Decision, facts: Facts, policy: Policy, rounds: int) -> None:
    result = run(decision, facts, policy, rounds)
    if result.plan is not None:
        assert facts.exists
        assert facts.state in ("running", "stopped")
        assert facts.root_device_type == "ebs"
        assert facts.disable_api_stop is False
        if result.plan.action == "resize":
            assert result.plan.target_type in PRICES
            assert result.plan.savings_usd_per_month is not None
            assert result.plan.savings_usd_per_month > 0
    if result.verdict.route in RUNNABLE:
        assert result.plan is not None
        assert policy.phase != "observe"


@SETTINGS
@given(
    decision=decision_strategy(),
    facts=facts_strategy(),
    policy=policy_strategy(),
    rounds=st.integers(0, 4),
)
def test_evaluate_is_a_pure_function(decision: Decision, facts: Facts, policy: Policy, rounds: int) -> None:
    first = run(decision, facts, policy, rounds)
    second = run(decision, facts, policy, rounds)
    assert first == second
    if first.verdict.route == "report":
        assert first.verdict.status is not None
    else:
        assert first.verdict.status is None
