"""What a review answer says, whatever sent it: costguard's ReviewResponse, or a HITL front end's decisions.

- costguard's own answer (CLI, Python API): `{"decision", "reviewer", "digest", "edited_plan"?, "note"?}`;
- LangChain's human-in-the-loop answer (agent-chat-ui, Studio): `{"decisions": [{"type": "approve"}]}`,
  `{"type": "edit", "edited_action": {"name", "args": {"action", "target_instance_type"}}}`, `{"type": "reject",
  "message"}` — accepted only on an authenticated server run: the reviewer is then the authenticated identity and
  the digest the pending plan's, server-side; a front end never names either.
On an authenticated run, a `reviewer` in any payload that is not the authenticated identity is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from costguard.state import Plan, PlanEdit, ReviewResponse

AUTH_HINT = (
    "answers from a review front end need an authenticated server: set COSTGUARD_REVIEWERS to a reviewers file "
    "and serve with the auth in langgraph.json (README, 'Review in a browser')"
)


@dataclass(frozen=True)
class Caller:
    """Who resumed the run, as the LangGraph server authenticated them (None: no auth on this run)."""

    identity: str | None
    permissions: tuple[str, ...] = ()


@dataclass(frozen=True)
class Refused:
    """An answer that may not move the plan on: the rule it broke and why, in words."""

    rule: str
    reason: str


def read_answer(raw: object, plan: Plan, caller: Caller) -> ReviewResponse | Refused:
    """The answer as a ReviewResponse, or why it is refused."""
    if isinstance(raw, dict) and "decisions" in raw:
        return _hitl(raw, plan, caller)
    try:
        response = ReviewResponse.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "answer"
        return Refused("malformed_response", f"malformed review response: {where}: {first['msg']}")
    if caller.identity is not None and response.reviewer != caller.identity:
        return Refused("reviewer_mismatch", f"the answer names {response.reviewer!r}, but {caller.identity!r} sent it")
    return response


def _hitl(raw: dict[str, Any], plan: Plan, caller: Caller) -> ReviewResponse | Refused:
    if caller.identity is None:
        return Refused("unauthenticated_front_end", AUTH_HINT)
    decisions = raw.get("decisions")
    if not isinstance(decisions, list) or len(decisions) != 1 or not isinstance(decisions[0], dict):
        return Refused("malformed_response", "expected exactly one decision for the one plan")
    decision: dict[str, Any] = decisions[0]
    named = raw.get("reviewer", decision.get("reviewer"))
    if named is not None and named != caller.identity:
        return Refused("reviewer_mismatch", f"the answer names {named!r}, but {caller.identity!r} sent it")
    kind = decision.get("type")
    answer: dict[str, Any] = {"reviewer": caller.identity, "digest": plan.digest}
    if kind == "approve":
        answer["decision"] = "approve"
    elif kind == "reject":
        answer.update(decision="reject", note=str(decision.get("message") or "")[:2000])
    elif kind == "edit":
        args = (decision.get("edited_action") or {}).get("args")
        if not isinstance(args, dict):
            return Refused("malformed_response", "an edit must carry edited_action.args (action, target type)")
        try:
            target = args.get("target_instance_type")
            edit = PlanEdit.model_validate(
                {"action": args.get("action"), "target_instance_type": target if target not in ("", "null") else None}
            )
        except ValidationError as exc:
            return Refused(
                "malformed_response", f"the edited plan is not one costguard can run: {exc.errors()[0]['msg']}"
            )
        answer.update(decision="edit", edited_plan=edit.model_dump())
    else:
        return Refused("malformed_response", f"unknown decision type {str(kind)[:40]!r}: approve, edit or reject")
    return ReviewResponse.model_validate(answer)
