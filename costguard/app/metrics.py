"""The three levels of observability, read back from the costguard SQLite file.

- model: calls, cache hits, errors, tokens, latency, schema-valid rate, repeated prompts;
- agent: per node runs, failures, duration, error classes, decision confidence, and the
  "high-confidence failures" (a decision at confidence >= 0.8 that a rail refused or that failed);
- business: outcomes by status, actions by type and status, savings proposed / approved / realised,
  share of alerts handled without a human, the autonomy rate (acted on without a person), reviewers' agreement and
  each class of plans' standing for autonomy, review latency, agent versions in use.
Exported as a dict (tables, JSON) and as Prometheus metrics (a custom collector).
"""

from __future__ import annotations

import json
import statistics
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from costguard.policy.autonomy import AutonomyPolicy, standing
from costguard.state import WAITING_STATUSES
from costguard.tools.store import Store, open_store
from costguard.tools.store.agreements import votes_by_class
from costguard.tools.telemetry import SqliteTelemetry

HIGH_CONFIDENCE = 0.8


def _quantile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 4)


def collect(db: Path | str, since: datetime | None = None, autonomy: AutonomyPolicy | None = None) -> dict[str, Any]:
    """The three levels since `since` (all of it by default), read from the store and the telemetry they own;
    `autonomy`: the policy's `[autonomy]` rule the classes' standings are judged by (its defaults without one)."""
    store = open_store(db)
    telemetry = SqliteTelemetry(store)
    start = since.isoformat() if since else ""
    return {
        "since": start or None,
        "model": _model(telemetry, start),
        "agent": _agent(telemetry, store, start),
        "business": _business(telemetry, store, start, autonomy or AutonomyPolicy()),
    }


def _model(telemetry: SqliteTelemetry, since: str) -> dict[str, Any]:
    calls = telemetry.rows("model_calls", since)
    real = [c for c in calls if not c["cached"]]
    answered = [c for c in real if c["error"] is None]
    hashes = Counter(c["prompt_hash"] for c in calls)
    latencies = [float(c["latency_s"]) for c in answered]
    return {
        "calls": len(real),
        "cached": len(calls) - len(real),
        "errors": len(real) - len(answered),
        "error_classes": dict(Counter(c["error"] for c in real if c["error"])),
        "prompt_tokens": sum(c["prompt_tokens"] or 0 for c in answered),
        "completion_tokens": sum(c["completion_tokens"] or 0 for c in answered),
        "schema_valid": sum(1 for c in answered if c["schema_valid"]),
        "schema_valid_rate": round(sum(1 for c in answered if c["schema_valid"]) / len(answered), 4)
        if answered
        else None,
        "latency_p50_s": _quantile(latencies, 0.5),
        "latency_p95_s": _quantile(latencies, 0.95),
        "repeated_prompts": sum(n - 1 for n in hashes.values() if n > 1),
        "models": sorted({c["model"] for c in calls}),
        "final_decisions_unusable": _final_unusable(calls),
    }


def _final_unusable(calls: list[dict[str, Any]]) -> int:
    """Threads whose last model answer was not a valid Decision (they went on as `investigate`, confidence 0)."""
    last: dict[str, dict[str, Any]] = {}
    for call in sorted(calls, key=lambda c: int(c["id"])):
        if call["error"] is None:
            last[call["thread_id"]] = call
    return sum(1 for call in last.values() if not call["schema_valid"])


def _agent(telemetry: SqliteTelemetry, store: Store, since: str) -> dict[str, Any]:
    steps = telemetry.rows("steps", since)
    nodes: dict[str, dict[str, Any]] = {}
    for name in sorted({s["node"] for s in steps}):
        mine = [s for s in steps if s["node"] == name]
        durations = [float(s["duration_s"]) for s in mine]
        nodes[name] = {
            "runs": len(mine),
            "failures": sum(1 for s in mine if not s["ok"]),
            "duration_mean_s": round(statistics.fmean(durations), 4),
            "duration_p95_s": _quantile(durations, 0.95),
        }
    confidences = [float(s["confidence"]) for s in steps if s["node"] == "analyze" and s["confidence"] is not None]
    last_confidence: dict[str, float] = {}
    for s in steps:
        if s["node"] == "analyze" and s["confidence"] is not None:
            last_confidence[s["thread_id"]] = float(s["confidence"])
    statuses = store.thread_statuses()
    high_failures = sorted(
        t for t, c in last_confidence.items() if c >= HIGH_CONFIDENCE and statuses.get(t) in ("rejected", "failed")
    )
    return {
        "nodes": nodes,
        "error_classes": dict(Counter(s["error_class"] for s in steps if s["error_class"])),
        "confidence_mean": round(statistics.fmean(confidences), 4) if confidences else None,
        "high_confidence_failures": len(high_failures),
        "high_confidence_failure_threads": high_failures[:20],
    }


def _business(telemetry: SqliteTelemetry, store: Store, since: str, rule: AutonomyPolicy) -> dict[str, Any]:
    threads = store.threads_since(since)
    outcomes = [json.loads(t["outcome"]) for t in threads if t["outcome"]]
    statuses = Counter(t["status"] for t in threads)
    actions = Counter(f"{o.get('action') or 'none'}:{o['status']}" for o in outcomes)
    with_plan = [o for o in outcomes if o.get("digest")]

    def savings(statuses_in: tuple[str, ...]) -> float:
        chosen = [o for o in with_plan if o["status"] in statuses_in]
        return round(sum(o.get("savings_usd_per_month") or 0 for o in chosen), 2)

    # any review event (approved, rejected, edited, expired, refused) means a person was involved
    human = store.reviewed_threads()
    terminal = [t for t in threads if t["status"] != "running" and t["status"] not in WAITING_STATUSES]
    needs_person = ("investigation_required",)
    unattended = [t for t in terminal if t["thread_id"] not in human and t["status"] not in needs_person]
    reviews = telemetry.rows("reviews", since)
    latencies = [float(r["latency_s"]) for r in reviews]
    versions = Counter(o.get("agent_version") or "unknown" for o in outcomes)
    acted_alone = [t for t in unattended if t["status"] in ("executed", "rolled_back")]
    by_class = votes_by_class(store)
    votes = [v for per_class in by_class.values() for v in per_class]
    agreeing = sum(v == "agree" for v in votes)
    standings = [standing(cls, class_votes, rule) for cls, class_votes in sorted(by_class.items())]
    return {
        "alerts": len(threads),
        "statuses": dict(sorted(statuses.items())),
        "actions": dict(sorted(actions.items())),
        "savings_proposed_usd_per_month": round(sum(o.get("savings_usd_per_month") or 0 for o in outcomes), 2),
        "savings_approved_usd_per_month": savings(("executed", "rolled_back")),
        "savings_realised_usd_per_month": savings(("executed",)),
        "handled_without_human": len(unattended),
        "handled_without_human_share": round(len(unattended) / len(terminal), 4) if terminal else None,
        "reviews": len(reviews),
        "review_latency_p50_s": _quantile(latencies, 0.5),
        "review_latency_max_s": max(latencies) if latencies else None,
        "agent_versions": dict(versions),
        # the evidence for autonomy (all time): reviews that approved the plan as proposed, of all votes incl. undos
        "agreement_votes": len(votes),
        "agreement_rate": round(agreeing / len(votes), 4) if votes else None,
        # the autonomy rate: of the alerts that ended, the share acted on (executed) without a person
        "acted_without_human": len(acted_alone),
        "autonomy_rate": round(len(acted_alone) / len(terminal), 4) if terminal else None,
        "autonomy_classes": {
            s.plan_class: {"standing": s.standing, "reviews": s.reviews, "lower_bound": round(s.lower_bound, 4)}
            for s in standings
        },
    }


class MetricsCollector(Collector):
    """Prometheus view of `collect()`, read fresh at every scrape."""

    def __init__(self, db: Path | str, autonomy: AutonomyPolicy | None = None) -> None:
        self.db = db
        self.autonomy = autonomy

    def collect(self) -> Iterator[Metric]:
        data = collect(self.db, autonomy=self.autonomy)
        model, agent, business = data["model"], data["agent"], data["business"]

        calls = CounterMetricFamily("costguard_model_calls", "Model calls by outcome", labels=["result"])
        calls.add_metric(["answered"], model["calls"] - model["errors"])
        calls.add_metric(["error"], model["errors"])
        calls.add_metric(["cached"], model["cached"])
        yield calls
        tokens = CounterMetricFamily("costguard_model_tokens", "Model tokens", labels=["kind"])
        tokens.add_metric(["prompt"], model["prompt_tokens"])
        tokens.add_metric(["completion"], model["completion_tokens"])
        yield tokens
        valid = CounterMetricFamily("costguard_model_schema_valid", "Answers that were a valid Decision")
        valid.add_metric([], model["schema_valid"])
        yield valid
        latency = GaugeMetricFamily("costguard_model_latency_seconds", "Model latency", labels=["quantile"])
        for q, key in (("0.5", "latency_p50_s"), ("0.95", "latency_p95_s")):
            if model[key] is not None:
                latency.add_metric([q], model[key])
        yield latency

        runs = CounterMetricFamily("costguard_node_runs", "Node runs", labels=["node", "result"])
        seconds = GaugeMetricFamily("costguard_node_duration_seconds_mean", "Mean node duration", labels=["node"])
        for node, stats in agent["nodes"].items():
            runs.add_metric([node, "ok"], stats["runs"] - stats["failures"])
            runs.add_metric([node, "failed"], stats["failures"])
            seconds.add_metric([node], stats["duration_mean_s"])
        yield runs
        yield seconds
        high = GaugeMetricFamily(
            "costguard_high_confidence_failures", "Decisions at confidence >= 0.8 that were refused or failed"
        )
        high.add_metric([], agent["high_confidence_failures"])
        yield high

        alerts = GaugeMetricFamily("costguard_alerts", "Alerts by status", labels=["status"])
        for status, count in business["statuses"].items():
            alerts.add_metric([status], count)
        yield alerts
        actions = GaugeMetricFamily("costguard_actions", "Actions by type and status", labels=["action", "status"])
        for key, count in business["actions"].items():
            action, status = key.split(":", 1)
            actions.add_metric([action, status], count)
        yield actions
        money = GaugeMetricFamily("costguard_savings_usd_per_month", "Savings", labels=["kind"])
        for kind in ("proposed", "approved", "realised"):
            money.add_metric([kind], business[f"savings_{kind}_usd_per_month"])
        yield money
        share = GaugeMetricFamily("costguard_handled_without_human_ratio", "Share of alerts handled without a human")
        share.add_metric([], business["handled_without_human_share"] or 0.0)
        yield share
        agreement = GaugeMetricFamily(
            "costguard_agreement_ratio", "Share of review votes that approved the plan as proposed (undos disagree)"
        )
        agreement.add_metric([], business["agreement_rate"] or 0.0)
        yield agreement
        alone = GaugeMetricFamily(
            "costguard_autonomy_ratio", "Share of the alerts that ended which were acted on without a person"
        )
        alone.add_metric([], business["autonomy_rate"] or 0.0)
        yield alone
        earned = GaugeMetricFamily(
            "costguard_autonomy_earned",
            "1 when a class of plans has earned autonomy by evidence",
            labels=["plan_class"],
        )
        bound = GaugeMetricFamily(
            "costguard_agreement_lower_bound",
            "Wilson 95 % lower bound of reviewers' agreement, per class of plans",
            labels=["plan_class"],
        )
        for plan_class, row in business["autonomy_classes"].items():
            earned.add_metric([plan_class], 1.0 if row["standing"] == "earned" else 0.0)
            bound.add_metric([plan_class], row["lower_bound"])
        yield earned
        yield bound
        review = GaugeMetricFamily("costguard_review_latency_seconds", "Review latency", labels=["quantile"])
        if business["review_latency_p50_s"] is not None:
            review.add_metric(["0.5"], business["review_latency_p50_s"])
        yield review
        info = GaugeMetricFamily("costguard_agent_version", "Outcomes by agent version", labels=["version"])
        for version, count in business["agent_versions"].items():
            info.add_metric([version], count)
        yield info


def registry_for(db: Path | str, autonomy: AutonomyPolicy | None = None) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(MetricsCollector(db, autonomy))
    return registry
