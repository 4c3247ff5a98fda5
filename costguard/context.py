"""The runtime context: every dependency a node needs, injected per run (`context=`).

Nothing is global and nothing is built at import time; tests pass fakes, the CLI and Studio
build real ones from settings.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from langchain_core.language_models import BaseChatModel

from costguard.policy import Policy
from costguard.tools.cloud import Cloud
from costguard.tools.ledger import Store
from costguard.tools.llm import Method
from costguard.tools.notify import Notifier
from costguard.tools.pricing import PriceList, load_price_list


def utcnow() -> datetime:
    return datetime.now(UTC)


class StepObserver(Protocol):
    """Agent-level observability: told about every node run (success or failure, duration)."""

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


class NullObserver:
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
    observer: StepObserver = field(default_factory=NullObserver)
