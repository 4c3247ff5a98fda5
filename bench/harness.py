"""costguard wired for benchmarks: the real graph and service over a fake cloud and a scripted model.

The scripted model answers by rule: it reads the alert's instance id from the real prompt
(`costguard.nodes.analyze.build_messages`) and proposes what a careful operator would, unless the
fault plan says this alert's first answer is a mistake. For another kind (an EBS volume of the
compounding harness) it reads the alert's `resource_id` and answers with `parameters: {"resource_id"}`.
"""

from __future__ import annotations

import json
import re
import threading
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from langchain_core.messages import BaseMessage

from bench.fakes import FakeCloud, Member, VolumeMember
from costguard.app.runner import CheckpointMode, CostGuard
from costguard.app.wiring import build_deps
from costguard.graph.builder import compile_graph
from costguard.graph.checkpoint import sqlite_checkpointer
from costguard.policy import Policy
from costguard.sandbox.scripted_model import Answer, ScriptedChatModel
from costguard.settings import Settings
from costguard.state import Phase
from costguard.tools.store import Store
from costguard.tools.telemetry import Telemetry

ModelFault = Literal["wrong_action", "wrong_instance", "garbage"]
_DATA = re.compile(r"<alert_data>\s*(.*?)\s*</alert_data>", re.DOTALL)
_INSTANCE = re.compile(r'"instance_id":\s*"(i-[0-9a-f]+)"')


def prompt_instance(messages: Sequence[BaseMessage]) -> str:
    """The alert's instance id, read from the prompt's data block (the alert comes first)."""
    text = str(messages[-1].content) if messages else ""
    found = _DATA.search(text)
    if found:
        try:
            data = json.loads(found.group(1))
            return str(data["alert"]["instance_id"])
        except (ValueError, KeyError, TypeError):
            pass
    match = _INSTANCE.search(text)
    return match.group(1) if match else "i-00000000"


def prompt_resource(messages: Sequence[BaseMessage]) -> str:
    """The alert's resource id (any kind), from the prompt's data block; the instance id as before otherwise."""
    text = str(messages[-1].content) if messages else ""
    found = _DATA.search(text)
    if found:
        try:
            alert = json.loads(found.group(1))["alert"]
            if alert.get("resource_type", "instance") != "instance" and alert.get("resource_id"):
                return str(alert["resource_id"])
        except (ValueError, KeyError, TypeError, AttributeError):
            pass
    return prompt_instance(messages)


def volume_decision(volume_id: str, action: str, confidence: float = 0.9) -> dict[str, Any]:
    """A decision about a volume, as its schema has it (`resource_id`; a resize is always to gp3)."""
    return {
        "action": action,
        "confidence": confidence,
        "reasoning": f"bench: {action}",
        "parameters": {"resource_id": volume_id},
        "requires_approval": False,
    }


def decision(instance_id: str, action: str, target: str | None = None, confidence: float = 0.9) -> dict[str, Any]:
    return {
        "action": action,
        "confidence": confidence,
        "reasoning": f"bench: {action}",
        "parameters": {"instance_id": instance_id, "target_instance_type": target},
        "requires_approval": False,
    }


def correct_answer(member: Member | VolumeMember) -> dict[str, Any]:
    """What a careful operator proposes for this instance (or volume)."""
    if isinstance(member, VolumeMember):
        return volume_decision(member.volume.volume_id, member.truth)
    iid = member.instance.instance_id
    if member.truth == "resize":
        return decision(iid, "resize", member.resize_target)
    return decision(iid, member.truth)


@dataclass(frozen=True)
class Mistake:
    """A model mistake for one alert: the answer it gives on its first call instead of the right one."""

    kind: ModelFault
    answer: Answer


class RuleModel:
    """The scripted model's rule: right answers, except each planned mistake, once, on the alert's first call."""

    def __init__(self, members: Sequence[Member | VolumeMember], mistakes: Mapping[str, Mistake] | None = None) -> None:
        self.members = {m.resource_id: m for m in members}
        self.volumes = any(isinstance(m, VolumeMember) for m in members)
        self.mistakes = dict(mistakes or {})
        self.calls: Counter[str] = Counter()
        self._lock = threading.Lock()

    def __call__(self, messages: Sequence[BaseMessage]) -> Answer:
        iid = prompt_resource(messages) if self.volumes else prompt_instance(messages)
        with self._lock:
            self.calls[iid] += 1
            mistake = self.mistakes.pop(iid, None)
        if mistake is not None:
            return mistake.answer
        member = self.members.get(iid)
        if member is None:
            return decision(iid, "investigate", confidence=0.0)
        return correct_answer(member)


class NullNotifier:
    """Counts critical notifications instead of posting them."""

    def __init__(self) -> None:
        self.count = 0

    def critical(self, text: str, *, thread_id: str, detail: dict[str, str]) -> None:
        self.count += 1

    def review_waiting(self, text: str, *, thread_id: str, link: str | None) -> None:
        return None

    def owner_notice(self, text: str, *, thread_id: str, owner: str | None, detail: dict[str, str]) -> None:
        return None


@dataclass
class Built:
    guard: CostGuard
    model: ScriptedChatModel
    store: Store
    cloud: FakeCloud
    notifier: NullNotifier
    db: Path
    telemetry: str


def build_costguard(
    db: Path,
    cloud: FakeCloud,
    model: ScriptedChatModel,
    *,
    phase: Phase = "autonomous",
    approvers: tuple[str, ...] = ("bench@example.com",),
    telemetry: bool = True,
    durability: CheckpointMode = "exit",
    irreversible_max_usd: float = 0.0,
) -> Built:
    """CostGuard as the CLI builds it (costguard.app.wiring), with the fake cloud and the scripted model.

    `irreversible_max_usd`: the policy's irreversible_autonomous_max_usd_per_month (0, the default: every
    irreversible action, a volume's delete, waits for a person)."""
    store = Store(db)
    notifier = NullNotifier()
    deps = build_deps(
        Settings(COSTGUARD_DB=db),
        Policy(phase=phase, approvers=approvers, irreversible_autonomous_max_usd_per_month=irreversible_max_usd),
        model=model,
        cloud=cloud,
        store=store,
        notifier=notifier,
        telemetry=None if telemetry else Telemetry(),
        method="function_calling",
    )
    guard = CostGuard(compile_graph(sqlite_checkpointer(db)), deps, durability=durability)
    return Built(guard, model, store, cloud, notifier, db, type(deps.telemetry).__name__)


def close(built: Built) -> None:
    """Close the checkpointer's connection (the Store opens one per operation)."""
    saver = built.guard.graph.checkpointer
    conn = getattr(saver, "conn", None)
    if conn is not None:
        conn.close()


_DEVNULL: Any = None


def cli_logging(level: int | None = None) -> None:
    """structlog as the CLI configures it (JSON lines, here at INFO), written to /dev/null instead of stderr.

    The rendering cost stays in the measurement (a deployment logs); the terminal stays readable.
    """
    import logging
    import os

    from costguard.app.logs import configure_logging

    global _DEVNULL  # noqa: PLW0603
    if _DEVNULL is None:
        _DEVNULL = open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115
    configure_logging(logging.INFO if level is None else level, _DEVNULL)


@dataclass(frozen=True)
class WorkerGuard:
    """Builds costguard over a fake cloud of `members` in a worker process (costguard.app.workers)."""

    members: tuple[Member, ...]
    db: Path
    latency_s: float = 0.0

    def __call__(self) -> CostGuard:
        cloud = FakeCloud.of(m.instance for m in self.members)
        model = ScriptedChatModel(rule=RuleModel(self.members), latency_s=self.latency_s)
        return build_costguard(self.db, cloud, model).guard
