"""Error routing under injected faults, the critical-error webhook, and the three levels of metrics."""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from costguard.app.batch import batch_report
from costguard.app.metrics import collect, registry_for
from costguard.state import Alert, ReviewResponse
from tests.conftest import APPROVER, Harness, decision, launch, snapshots_of, state_of
from tests.faultproxy import DENIED, FaultPlan, FaultProxy

HarnessFactory = Callable[..., Harness]


def alert(instance_id: str, alert_id: str) -> Alert:
    return Alert(alert_id=alert_id, instance_id=instance_id)


@pytest.fixture
def saver_kind() -> str:
    return "sqlite"  # these tests read the SQLite file; the graph paths are covered over both savers elsewhere


class Receiver:
    """A Slack-compatible webhook receiver on 127.0.0.1 that keeps every message."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                return None

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                receiver.messages.append(json.loads(self.rfile.read(length)))
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.server.shutdown()
    r.server.server_close()


def step_failures(h: Harness) -> Counter[tuple[str, str]]:
    rows = h.store.query("SELECT thread_id, node FROM cg_steps WHERE ok = 0")
    return Counter((r["thread_id"], r["node"]) for r in rows)


@pytest.mark.slow
def test_throttling_and_5xx_are_retried_at_most_three_times_and_never_duplicate_effects(
    make_harness: HarnessFactory, ec2: Any, aws_env: str, tmp_path: Any
) -> None:
    ids = [launch(ec2, "t3.small", {"env": "dev"}) for _ in range(12)]
    plan = FaultPlan(rate=0.25, after_rate=0.3, seed=11)
    with FaultProxy(aws_env, plan) as proxy:
        h = make_harness(
            [decision("{{instance_id}}")] * 100, phase="autonomous", cloud_url=proxy.url, decision_cache_ttl_s=0
        )
        outcomes = list(h.guard.process(alert(i, f"f-{n}") for n, i in enumerate(ids)))
    statuses = Counter(o.status for o in outcomes)
    assert set(statuses) <= {"executed", "failed"}
    assert statuses["executed"] >= 1
    assert sum(plan.injected.values()) > 10  # the faults really happened
    for o in outcomes:
        if o.status == "failed":
            assert o.error_class == "CloudUnavailable"
            assert "after 3 attempts" in o.reason
    # attempts never exceed 3: at most 3 failed runs of a node per thread, and 3 only when the alert failed
    for (thread_id, node), failures in step_failures(h).items():
        assert failures <= 3, (thread_id, node, failures)
        if failures == 3:
            assert next(o for o in outcomes if o.thread_id == thread_id).status == "failed"
    # retried effects are not duplicated, even when a 503 came after the call had acted
    for instance_id, o in zip(ids, outcomes, strict=True):
        snaps = snapshots_of(ec2, instance_id)
        assert len(snaps) <= 1
        if o.status == "executed":
            assert len(snaps) == 1
            assert state_of(ec2, instance_id) == "stopped"
    report = batch_report(outcomes)
    assert report["status"] == ("success" if statuses["failed"] == 0 else "partial_success")
    assert len(report["failures"]) == statuses["failed"]
    (tmp_path / "fault-stats.json").write_text(
        json.dumps(
            {"statuses": statuses, "injected": plan.injected, "seen": plan.seen, "retries": step_failures(h).total()}
        )
    )


def test_permission_error_is_critical_posts_once_and_the_batch_goes_on(
    make_harness: HarnessFactory, ec2: Any, aws_env: str, receiver: Receiver
) -> None:
    fine = launch(ec2, "t3.small")
    denied = launch(ec2, "t3.small")
    plan = FaultPlan(deny=frozenset({"StopInstances"}))
    with FaultProxy(aws_env, plan) as proxy:
        h = make_harness(
            [decision("{{instance_id}}")] * 4, phase="autonomous", cloud_url=proxy.url, webhook=receiver.url
        )
        # the first alert's stop is refused for lack of permission; nothing retries a permission error
        first = h.guard.process_alert(alert(denied, "denied"))
        plan.deny = frozenset()
        second = h.guard.process_alert(alert(fine, "fine"))
    assert first.status == "failed"
    assert first.error_class == "CloudPermissionError"
    assert DENIED[1] in first.reason
    assert plan.injected["StopInstances:UnauthorizedOperation"] == 1
    assert second.status == "executed"
    assert len(receiver.messages) == 1
    message = receiver.messages[0]
    assert message["text"].startswith(":rotating_light: costguard critical")
    assert message["thread_id"] == "alert:denied"
    assert state_of(ec2, denied) == "running"


def test_rail_tripped_at_execution_reaches_the_webhook_exactly_once(
    make_harness: HarnessFactory, ec2: Any, receiver: Receiver
) -> None:
    iid = launch(ec2, "m5.xlarge")
    h = make_harness([decision(iid)], phase="reversible", webhook=receiver.url)
    tid = h.guard.process_alert(alert(iid, "late-critical")).thread_id
    ec2.create_tags(Resources=[iid], Tags=[{"Key": "env", "Value": "critical"}])
    digest = h.guard.snapshot(tid).values["plan"].digest
    outcome = h.guard.review(tid, ReviewResponse(decision="approve", reviewer=APPROVER, digest=digest))
    assert outcome.status == "failed"
    # the plan's review notice (once), then the critical alert (once)
    assert [(m["kind"], m["thread_id"]) for m in receiver.messages] == [("review_waiting", tid), ("critical", tid)]
    assert "waits for a reviewer" in receiver.messages[0]["text"]
    assert "critical_tag" in receiver.messages[1]["text"]


def test_a_notifier_failure_is_minor(make_harness: HarnessFactory, ec2: Any) -> None:
    iid = launch(ec2, "m5.xlarge")
    h = make_harness([decision(iid)], phase="reversible", webhook="http://127.0.0.1:9/nowhere")
    tid = h.guard.process_alert(alert(iid, "a")).thread_id
    ec2.create_tags(Resources=[iid], Tags=[{"Key": "critical", "Value": ""}])
    digest = h.guard.snapshot(tid).values["plan"].digest
    outcome = h.guard.review(tid, ReviewResponse(decision="approve", reviewer=APPROVER, digest=digest))
    assert outcome.status == "failed"  # the run ended as it should, although the alert could not be posted
    assert outcome.error_class == "RailTrippedAtExecution"


def test_three_levels_of_metrics_hold_the_exact_counts(make_harness: HarnessFactory, ec2: Any) -> None:
    cheap = launch(ec2, "t3.small", {"env": "dev"})  # 15.18 $/month: autonomous
    critical = launch(ec2, "t3.small", {"tier": "critical"})
    pricey = launch(ec2, "m5.xlarge", {"env": "dev"})  # 140.16 $/month: review
    unsure = launch(ec2, "t3.small", {"env": "dev"})
    script: list[Any] = [
        decision(cheap, confidence=0.9),
        decision(critical, confidence=0.95),
        decision(pricey, confidence=0.85),
        "no idea",
        "still no idea",
        "really, no idea",
    ]
    h = make_harness(script, phase="autonomous")
    alerts = [alert(cheap, "cheap"), alert(critical, "critical"), alert(pricey, "pricey"), alert(unsure, "unsure")]
    outcomes = list(h.guard.process(alerts))
    assert [o.status for o in outcomes] == ["executed", "rejected", "awaiting_review", "investigation_required"]
    h.clock.advance(minutes=30)
    plan = h.guard.snapshot("alert:pricey").values["plan"]
    assert h.guard.review("alert:pricey", ReviewResponse(decision="approve", reviewer=APPROVER, digest=plan.digest))

    data = collect(h.db)
    model, agent, business = data["model"], data["agent"], data["business"]
    expected_prompt = sum(sum(len(str(m.content).split()) for m in call) for call in h.model.calls)
    expected_completion = sum(len(str(a).split()) for a in script)
    assert model["calls"] == 6
    assert model["cached"] == 0
    assert model["errors"] == 0
    assert model["schema_valid"] == 3
    assert model["schema_valid_rate"] == 0.5
    assert model["prompt_tokens"] == expected_prompt
    assert model["completion_tokens"] == expected_completion
    assert model["models"] == ["scripted"]

    runs = {name: stats["runs"] for name, stats in agent["nodes"].items()}
    assert runs == {
        "intake": 4,
        "gather": 4,
        "analyze": 6,
        "validate": 6,
        "investigate": 2,
        "human_review": 1,  # the paused first run is not a finished run
        "execute": 2,
        "report": 4,
    }
    assert all(stats["failures"] == 0 for stats in agent["nodes"].values())
    assert agent["high_confidence_failures"] == 1  # the critical instance, refused at 0.95
    assert agent["high_confidence_failure_threads"] == ["alert:critical"]

    assert business["statuses"] == {"executed": 2, "investigation_required": 1, "rejected": 1}
    assert business["actions"] == {
        "investigate:investigation_required": 1,
        "shutdown:executed": 2,
        "shutdown:rejected": 1,
    }
    assert business["savings_realised_usd_per_month"] == round(15.18 + 140.16, 2)
    assert business["savings_approved_usd_per_month"] == round(15.18 + 140.16, 2)
    assert business["savings_proposed_usd_per_month"] == round(15.18 * 2 + 140.16, 2)
    assert business["handled_without_human"] == 2
    assert business["handled_without_human_share"] == 0.5
    assert business["reviews"] == 1
    assert business["review_latency_p50_s"] == 1800.0
    (version,) = business["agent_versions"]
    assert version.startswith("costguard ")
    assert h.guard.deps.policy.digest in version

    families = {f.name: f for f in text_string_to_metric_families(generate_latest(registry_for(h.db)).decode())}
    calls = {
        s.labels["result"]: s.value for s in families["costguard_model_calls"].samples if s.name.endswith("_total")
    }
    assert calls == {"answered": 6, "error": 0, "cached": 0}
    money = {s.labels["kind"]: s.value for s in families["costguard_savings_usd_per_month"].samples}
    assert money["realised"] == pytest.approx(155.34)
    alerts_by_status = {s.labels["status"]: s.value for s in families["costguard_alerts"].samples}
    assert alerts_by_status["executed"] == 2


def test_a_repeated_alert_reuses_the_decision_without_a_model_call(make_harness: HarnessFactory, ec2: Any) -> None:
    iid = launch(ec2, "t3.small")
    h = make_harness([decision(iid, action="monitor")], phase="autonomous")
    first = h.guard.process_alert(alert(iid, "monday"))
    second = h.guard.process_alert(alert(iid, "tuesday"))  # another alert, same instance, same facts
    assert first.status == second.status == "monitoring"
    assert len(h.model.calls) == 1
    model = collect(h.db)["model"]
    assert (model["calls"], model["cached"], model["repeated_prompts"]) == (1, 1, 1)


def test_unexpected_model_error_fails_one_alert_and_the_batch_reports_partial_success(
    make_harness: HarnessFactory, ec2: Any
) -> None:
    ok, broken = launch(ec2, "t3.small"), launch(ec2, "t3.small")
    h = make_harness([decision(ok), ValueError("the client library blew up")], phase="autonomous")
    outcomes = list(h.guard.process([alert(ok, "ok"), alert(broken, "broken")]))
    report = batch_report(outcomes)
    assert report["status"] == "partial_success"
    assert report["by_status"] == {"executed": 1, "failed": 1}
    assert report["failures"][0]["alert_id"] == "broken"
    assert report["failures"][0]["error_class"] == "ValueError"
    assert report["outcomes"][0]["status"] == "executed"
    assert len(h.model.calls) == 2  # not retryable: one attempt
