"""The runtime context: every dependency a node needs, injected per run (`context=`).

Nothing is global and nothing is built at import time; tests pass fakes, the CLI and Studio
build real ones from settings.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol

from langchain_core.language_models import BaseChatModel

from costguard.policy import Policy
from costguard.state import Decision
from costguard.tools.cloud import Cloud
from costguard.tools.ledger import Store
from costguard.tools.llm import Method
from costguard.tools.notify import Notifier
from costguard.tools.pricing import PriceList, load_price_list


def utcnow() -> datetime:
    return datetime.now(UTC)


class Telemetry(Protocol):
    """Model- and agent-level observability, and the decision cache (see tools/telemetry.py)."""

    def step(
        self,
        thread_id: str,
        node: str,
        *,
        ok: bool,
        duration_s: float,
        error: BaseException | None = None,
        confidence: float | None = None,
    ) -> None: ...

    def model_call(
        self,
        thread_id: str,
        *,
        model: str,
        prompt_hash: str,
        prompt_tokens: int | None,
        completion_tokens: int | None,
        latency_s: float,
        schema_valid: bool,
        cached: bool = False,
        error: str | None = None,
    ) -> None: ...

    def review(self, thread_id: str, *, reviewer: str, decision: str, latency_s: float) -> None: ...

    def cached_decision(self, prompt_hash: str, ttl: timedelta, now: datetime) -> Decision | None: ...

    def remember_decision(self, prompt_hash: str, decision: Decision, now: datetime) -> None: ...

    def flush(self, thread_id: str) -> None:
        """Write what was buffered for the thread (step and model-call rows)."""
        ...


class NullTelemetry:
    """Records nothing, caches nothing."""

    def step(
        self,
        thread_id: str,
        node: str,
        *,
        ok: bool,
        duration_s: float,
        error: BaseException | None = None,
        confidence: float | None = None,
    ) -> None:
        return None

    def model_call(
        self,
        thread_id: str,
        *,
        model: str,
        prompt_hash: str,
        prompt_tokens: int | None,
        completion_tokens: int | None,
        latency_s: float,
        schema_valid: bool,
        cached: bool = False,
        error: str | None = None,
    ) -> None:
        return None

    def review(self, thread_id: str, *, reviewer: str, decision: str, latency_s: float) -> None:
        return None

    def cached_decision(self, prompt_hash: str, ttl: timedelta, now: datetime) -> Decision | None:
        return None

    def remember_decision(self, prompt_hash: str, decision: Decision, now: datetime) -> None:
        return None

    def flush(self, thread_id: str) -> None:
        return None


@dataclass
class Deps:
    model: BaseChatModel
    cloud: Cloud
    store: Store
    notifier: Notifier
    policy: Policy = field(default_factory=Policy)
    prices: PriceList = field(default_factory=load_price_list)
    clock: Callable[[], datetime] = utcnow
    structured_method: Method = "function_calling"
    telemetry: Telemetry = field(default_factory=NullTelemetry)
