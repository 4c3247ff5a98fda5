"""The naive agent of the compounding harness: the model drives the cloud's tools directly, in a loop.

It is the pattern the article warns against, written the way such agents usually are: each model
turn is parsed as a tool call and executed as-is against the cloud (no validation, no ledger, no
review); a tool error goes back to the model, which re-issues the call (LLMs do), at most twice;
text that is not a tool call ends the alert (the model "answered").

The model is scripted like costguard's: it does what a careful operator would, except where the
fault plan injects a mistake (wrong action, wrong instance, garbage) on this alert.

EBS volumes (`run_volume`): describe_volume, then for a delete create_snapshot, detach_volume when the
volume is attached (EC2 refuses to delete an attached volume, and a model that means to delete it
detaches it first: it read the attachment in the describe), delete_volume; for a resize modify_volume.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bench.fakes import ACTOR, FakeCloud, Member, VolumeMember
from costguard.errors import CostguardError

MAX_RETRIES = 2


@dataclass(frozen=True)
class Intent:
    """What the (scripted) model means to do for one alert."""

    action: str  # shutdown | resize | monitor
    instance_id: str
    volume_ids: tuple[str, ...]
    target_type: str | None = None
    garbage: str | None = None  # the model answers this text instead of a tool call


def tool_calls(intent: Intent) -> list[dict[str, Any]]:
    """The tool calls a model emits for the intent, in order (after a describe of the alert's instance)."""
    snaps = [{"tool": "create_snapshot", "args": {"volume_id": v}} for v in intent.volume_ids]
    stop = {"tool": "stop_instances", "args": {"instance_id": intent.instance_id}}
    if intent.action == "shutdown":
        return [*snaps, stop]
    if intent.action == "resize":
        return [
            *snaps,
            stop,
            {
                "tool": "modify_instance_type",
                "args": {"instance_id": intent.instance_id, "instance_type": intent.target_type},
            },
            {"tool": "start_instances", "args": {"instance_id": intent.instance_id}},
        ]
    return []


@dataclass(frozen=True)
class VolumeIntent:
    """What the (scripted) model means to do for one volume alert."""

    action: str  # delete | resize | monitor
    volume_id: str
    attached: bool  # as the describe showed it
    target_type: str | None = None
    garbage: str | None = None


def volume_tool_calls(intent: VolumeIntent) -> list[dict[str, Any]]:
    """The tool calls a model emits for a volume intent, in order (after a describe of the alert's volume)."""
    vid = {"volume_id": intent.volume_id}
    if intent.action == "delete":
        detach = [{"tool": "detach_volume", "args": vid}] if intent.attached else []
        return [{"tool": "create_snapshot", "args": vid}, *detach, {"tool": "delete_volume", "args": vid}]
    if intent.action == "resize":
        return [{"tool": "modify_volume", "args": {**vid, "volume_type": intent.target_type}}]
    return []


@dataclass
class NaiveResult:
    alert_id: str
    status: str  # done | answered | gave_up
    transcript: list[str] = field(default_factory=list)


class NaiveAgent:
    """Per alert: describe, then execute whatever the model emits, as-is."""

    def __init__(self, cloud: FakeCloud) -> None:
        self.cloud = cloud
        self.tools: dict[str, Callable[..., object]] = {
            "describe_instance": cloud.describe_instance,
            "create_snapshot": cloud.create_snapshot,
            "stop_instances": cloud.stop_instances,
            "start_instances": cloud.start_instances,
            "modify_instance_type": cloud.modify_instance_type,
            "describe_volume": cloud.describe_volume,
            "detach_volume": cloud.detach_volume,
            "delete_volume": cloud.delete_volume,
            "modify_volume": cloud.modify_volume,
        }

    def _call(self, text: str, transcript: list[str]) -> bool:
        """Execute one model turn. False when it was not a tool call (the alert ends)."""
        try:
            call = json.loads(text)
            tool = self.tools[call["tool"]]
            args = dict(call["args"])
        except (ValueError, KeyError, TypeError):
            transcript.append(f"answer: {text[:80]}")
            return False
        for attempt in range(MAX_RETRIES + 1):
            try:
                result = tool(**args)
            except CostguardError as exc:  # the error goes back to the model, which tries again
                transcript.append(f"{call['tool']} error (attempt {attempt + 1}): {exc}")
                continue
            transcript.append(f"{call['tool']} -> {result}")
            return True
        raise _GaveUp(call["tool"])

    def run(self, member: Member, intent: Intent) -> NaiveResult:
        describe = {"tool": "describe_instance", "args": {"instance_id": member.instance.instance_id}}
        calls = tool_calls(intent) if intent.garbage is None else []
        return self._turns(member.alert.alert_id, [describe, *calls], intent.garbage)

    def run_volume(self, member: VolumeMember, intent: VolumeIntent) -> NaiveResult:
        describe = {"tool": "describe_volume", "args": {"volume_id": member.volume.volume_id}}
        calls = volume_tool_calls(intent) if intent.garbage is None else []
        return self._turns(member.alert.alert_id, [describe, *calls], intent.garbage)

    def _turns(self, alert_id: str, calls: list[dict[str, Any]], garbage: str | None) -> NaiveResult:
        token = ACTOR.set(alert_id)
        transcript: list[str] = []
        try:
            turns = [json.dumps(call) for call in calls]
            if garbage is not None:
                turns.insert(1, garbage)  # after the describe
            for text in turns:
                if not self._call(text, transcript):
                    return NaiveResult(alert_id, "answered", transcript)
            return NaiveResult(alert_id, "done", transcript)
        except _GaveUp as exc:
            transcript.append(f"gave up on {exc}")
            return NaiveResult(alert_id, "gave_up", transcript)
        finally:
            ACTOR.reset(token)


class _GaveUp(Exception):
    pass
