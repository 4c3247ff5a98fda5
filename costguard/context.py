"""The runtime context: every dependency a node needs, injected per run (`context=`).

Nothing is global and nothing is built at import time; tests pass fakes, the CLI and Studio
build real ones from settings.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from langchain_core.language_models import BaseChatModel

from costguard.policy import Policy
from costguard.settings import Method
from costguard.tools.cloud import Cloud
from costguard.tools.notify import Notifier
from costguard.tools.pricing import PriceList, load_price_list
from costguard.tools.store import Store
from costguard.tools.telemetry import Telemetry


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class Deps:
    """The model, the cloud, the store, the notifier, the policy, the prices, the clock and the telemetry."""

    model: BaseChatModel
    cloud: Cloud
    store: Store
    notifier: Notifier
    policy: Policy = field(default_factory=Policy)
    prices: PriceList = field(default_factory=load_price_list)
    clock: Callable[[], datetime] = utcnow
    structured_method: Method = "function_calling"
    telemetry: Telemetry = field(default_factory=Telemetry)
    review_ui_url: str | None = None  # the review front end's page for a thread: a link in notices
