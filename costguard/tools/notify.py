"""Critical-error notifications: a Slack-compatible webhook, or a local JSONL file sink."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

import httpx
import structlog

from costguard.errors import MinorError

log = structlog.get_logger(__name__)


class Notifier(Protocol):
    def critical(self, text: str, *, thread_id: str, detail: dict[str, str]) -> None: ...


class WebhookNotifier:
    """Posts `{"text": ...}` (Slack's incoming-webhook shape) to the URL, or appends to a file."""

    def __init__(self, url: str | None, sink: Path, *, timeout_s: float = 5.0) -> None:
        self.url = url
        self.sink = sink
        self.timeout_s = timeout_s

    def critical(self, text: str, *, thread_id: str, detail: dict[str, str]) -> None:
        message = {
            "text": f":rotating_light: costguard critical: {text}",
            "thread_id": thread_id,
            "detail": detail,
            "at": datetime.now(UTC).isoformat(),
        }
        try:
            if self.url:
                response = httpx.post(self.url, json=message, timeout=self.timeout_s)
                response.raise_for_status()
            else:
                self.sink.parent.mkdir(parents=True, exist_ok=True)
                with self.sink.open("a", encoding="utf-8") as fh:
                    fh.write(json.dumps(message) + "\n")
        except (httpx.HTTPError, OSError) as exc:
            # a notifier failure is minor: logged, never fails the run
            log.warning("notifier_failed", error=str(MinorError(str(exc))), thread_id=thread_id)
