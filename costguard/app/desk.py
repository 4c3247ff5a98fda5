"""One review queue, wherever the threads live: the local database (`LocalDesk`) or a LangGraph server
(`RemoteDesk`, through langgraph-sdk with an API key), behind the same few calls the CLI uses.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, Protocol

from langgraph_sdk import get_sync_client

from costguard.app.runner import CostGuard, PendingReview
from costguard.errors import ReviewError
from costguard.nodes import outcome as outcomes
from costguard.state import Alert, Outcome, Plan, ReviewResponse, Verdict

GRAPH = "costguard"


@dataclass(frozen=True)
class Answered:
    """The thread's outcome after an answer, and why the answer was refused (None: it was not)."""

    outcome: Outcome
    refused: str | None


class Desk(Protocol):
    def pending(self, *, limit: int, offset: int) -> list[PendingReview]: ...

    def request(self, thread_id: str) -> dict[str, Any] | None: ...

    def answer(self, thread_id: str, response: ReviewResponse) -> Answered: ...

    def history(self, thread_id: str, limit: int) -> list[dict[str, Any]]: ...

    def resume(self, thread_id: str) -> Outcome: ...


class LocalDesk:
    """The threads of the local database (COSTGUARD_DB)."""

    def __init__(self, guard: CostGuard) -> None:
        self.guard = guard

    def pending(self, *, limit: int, offset: int) -> list[PendingReview]:
        return self.guard.pending(limit=limit, offset=offset)

    def request(self, thread_id: str) -> dict[str, Any] | None:
        snap = self.guard.snapshot(thread_id)
        return snap.interrupts[0].value if snap.interrupts else None

    def answer(self, thread_id: str, response: ReviewResponse) -> Answered:
        done = self.guard.review(thread_id, response)
        review = self.guard.snapshot(thread_id).values.get("review")
        refused = done.status == "awaiting_review" and review is not None and review.status == "refused"
        return Answered(done, review.reason if refused and review is not None else None)

    def history(self, thread_id: str, limit: int) -> list[dict[str, Any]]:
        rows = []
        for snap in self.guard.graph.get_state_history(self.guard.config(thread_id), limit=limit):
            ended = snap.values.get("outcome") if snap.values else None
            rows.append(
                {
                    "checkpoint_id": snap.config["configurable"]["checkpoint_id"],
                    "created_at": snap.created_at,
                    "step": snap.metadata.get("step") if snap.metadata else None,
                    "source": snap.metadata.get("source") if snap.metadata else None,
                    "next": list(snap.next),
                    "status": ended.status if ended else None,
                }
            )
        return rows

    def resume(self, thread_id: str) -> Outcome:
        return self.guard.resume(thread_id)


def server_thread_id(thread_id: str) -> str:
    """The server's (UUID) thread id: as given, or derived from costguard's `alert:<id>` as the README does."""
    try:
        return str(uuid.UUID(thread_id))
    except ValueError:
        return str(uuid.uuid5(uuid.NAMESPACE_URL, thread_id))


class RemoteDesk:
    """The threads of a LangGraph API server serving costguard; the API key says who you are."""

    def __init__(self, url: str, api_key: str | None) -> None:
        self.client = get_sync_client(url=url, api_key=api_key)
        self.url = url

    def _state(self, thread_id: str) -> dict[str, Any]:
        try:
            return dict(self.client.threads.get_state(server_thread_id(thread_id)))
        except Exception as exc:  # the SDK raises httpx errors: not found, forbidden, unreachable
            raise ReviewError(f"thread {thread_id!r} on {self.url}: {exc}") from exc

    def pending(self, *, limit: int, offset: int) -> list[PendingReview]:
        try:
            threads = self.client.threads.search(status="interrupted", limit=limit, offset=offset)
        except Exception as exc:
            raise ReviewError(f"cannot list the threads of {self.url}: {exc}") from exc
        items = []
        for thread in threads:
            values = thread.get("values") or {}
            interrupts = thread.get("interrupts") or {}
            # a review request (not a grace period's pause: that one waits for its due time, not for a person)
            requests = [
                i["value"]
                for found in interrupts.values()
                for i in found
                if isinstance(i.get("value"), dict) and "action_requests" in i["value"]
            ]
            if not isinstance(values, dict) or not values.get("plan") or not requests:
                continue
            plan = Plan.model_validate(values["plan"])
            items.append(PendingReview(str(thread["thread_id"]), plan.alert_id, plan, requests[0]))
        return items

    def request(self, thread_id: str) -> dict[str, Any] | None:
        interrupts = self._state(thread_id).get("interrupts") or []
        return dict(interrupts[0]["value"]) if interrupts else None

    def answer(self, thread_id: str, response: ReviewResponse) -> Answered:
        tid = server_thread_id(thread_id)
        try:
            values = self.client.runs.wait(tid, GRAPH, command={"resume": response.model_dump(mode="json")})
        except Exception as exc:
            raise ReviewError(f"{self.url} refused the answer: {exc}") from exc
        return self._answered(tid, values if isinstance(values, dict) else {})

    def _answered(self, thread_id: str, values: dict[str, Any]) -> Answered:
        if values.get("outcome") and "__interrupt__" not in values:
            return Answered(Outcome.model_validate(values["outcome"]), None)
        plan = Plan.model_validate(values["plan"])
        state = {
            "plan": plan,
            "alert": Alert.model_validate(values["alert"]),
            "verdict": Verdict.model_validate(values["verdict"]) if values.get("verdict") else None,
        }
        waiting = outcomes.awaiting(state, thread_id, plan.alert_id, version="server")
        review = values.get("review") or {}
        return Answered(waiting, review.get("reason") if review.get("status") == "refused" else None)

    def history(self, thread_id: str, limit: int) -> list[dict[str, Any]]:
        try:
            found = self.client.threads.get_history(server_thread_id(thread_id), limit=limit)
        except Exception as exc:
            raise ReviewError(f"thread {thread_id!r} on {self.url}: {exc}") from exc
        rows = []
        for snap in found:
            values = snap.get("values") or {}
            ended = values.get("outcome") if isinstance(values, dict) else None
            metadata = snap.get("metadata") or {}
            rows.append(
                {
                    "checkpoint_id": (snap.get("checkpoint") or {}).get("checkpoint_id"),
                    "created_at": snap.get("created_at"),
                    "step": metadata.get("step"),
                    "source": metadata.get("source"),
                    "next": list(snap.get("next") or []),
                    "status": ended.get("status") if isinstance(ended, dict) else None,
                }
            )
        return rows

    def resume(self, thread_id: str) -> Outcome:
        tid = server_thread_id(thread_id)
        try:
            values = self.client.runs.wait(tid, GRAPH, input=None)
        except Exception as exc:
            raise ReviewError(f"{self.url} could not resume {thread_id!r}: {exc}") from exc
        return self._answered(tid, values if isinstance(values, dict) else {}).outcome
