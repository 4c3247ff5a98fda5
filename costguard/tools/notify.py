"""Notifications: critical errors, plans waiting for a person (with a link to the review page when one is
configured), and notices to a resource's owner of a plan scheduled on it, to a Slack-compatible webhook or a local
JSONL file sink."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol
from urllib.parse import urlencode

import httpx
import structlog

from costguard.errors import MinorError

log = structlog.get_logger(__name__)


class Notifier(Protocol):
    def critical(self, text: str, *, thread_id: str, detail: dict[str, str]) -> None: ...

    def review_waiting(self, text: str, *, thread_id: str, link: str | None) -> None: ...

    def owner_notice(self, text: str, *, thread_id: str, owner: str | None, detail: dict[str, str]) -> None: ...


def review_link(base: str | None, thread_id: str) -> str | None:
    """The review front end's page of a thread: `base` (COSTGUARD_REVIEW_UI_URL, agent-chat-ui's URL with its
    `apiUrl` and `assistantId`) plus the thread id."""
    if not base:
        return None
    return f"{base}{'&' if '?' in base else '?'}{urlencode({'threadId': thread_id})}"


class WebhookNotifier:
    """Posts `{"text": ...}` (Slack's incoming-webhook shape) to the URL, or appends to a file."""

    def __init__(self, url: str | None, sink: Path, *, timeout_s: float = 5.0) -> None:
        self.url = url
        self.sink = sink
        self.timeout_s = timeout_s

    def critical(self, text: str, *, thread_id: str, detail: dict[str, str]) -> None:
        self._send(
            {
                "kind": "critical",
                "text": f":rotating_light: costguard critical: {text}",
                "thread_id": thread_id,
                "detail": detail,
            }
        )

    def review_waiting(self, text: str, *, thread_id: str, link: str | None) -> None:
        where = f" <{link}|review it>" if link else ""
        self._send(
            {"kind": "review_waiting", "text": f":eyes: costguard: {text}{where}", "thread_id": thread_id, "link": link}
        )

    def owner_notice(self, text: str, *, thread_id: str, owner: str | None, detail: dict[str, str]) -> None:
        """A plan scheduled to act on the owner's resource, and how to call it off (the owner named, if tagged)."""
        to = f"{owner}: " if owner else "(no owner tag) "
        self._send(
            {
                "kind": "owner_notice",
                "text": f":hourglass: costguard: {to}{text}",
                "thread_id": thread_id,
                "owner": owner,
                "detail": detail,
            }
        )

    def _send(self, message: dict[str, object]) -> None:
        message["at"] = datetime.now(UTC).isoformat()
        thread_id = str(message.get("thread_id", ""))
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
