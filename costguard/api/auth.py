"""Who may do what on the served graph: LangGraph's custom auth (`"auth"` in langgraph.json), default deny.

Every request needs an API key (`X-Api-Key`, as agent-chat-ui sends it, or `Authorization: Bearer`) found in the
reviewers file (costguard.api.reviewers): else 401. Then each resource and action has a handler, and anything
without one is refused by the global handler, so the server's start-up check lists no unprotected path:

| action | who |
|---|---|
| read or search threads, read or search assistants | every role |
| create a thread; start a run with an alert (not a chat message) | submitter |
| resume a run (answer a review) | reviewer — the graph then checks the approvers list, the plan and the rails |
| "Mark as resolved" (a `goto` without an answer) | refused with a reason: reject the plan, with a message |
| anything else (update or delete threads, assistants, crons, the store) | nobody |

Resuming is the hole LangGraph's docs warn of: with only thread handlers, a user who cannot read a thread could
still resume it and be recorded as the reviewer. Here `threads.create_run` has its own handler.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from langgraph_sdk import Auth

from costguard.api.reviewers import Reviewers, load_reviewers

auth = Auth()


@cache
def _reviewers() -> Reviewers:
    return load_reviewers()


def _key(headers: dict[bytes, bytes]) -> str | None:
    key = headers.get(b"x-api-key")
    if key:
        return key.decode("utf-8", "replace").strip()
    bearer = headers.get(b"authorization", b"").decode("utf-8", "replace")
    return bearer[7:].strip() if bearer.lower().startswith("bearer ") else None


@auth.authenticate
async def authenticate(headers: dict[bytes, bytes]) -> Auth.types.MinimalUserDict:
    key = _key(headers)
    if not key:
        raise Auth.exceptions.HTTPException(status_code=401, detail="an API key is required (X-Api-Key header)")
    person = _reviewers().find(key)
    if person is None:
        raise Auth.exceptions.HTTPException(status_code=401, detail="unknown API key")
    return {"identity": person.identity, "permissions": list(person.permissions), "display_name": person.identity}


def _require(ctx: Auth.types.AuthContext, permission: str, what: str) -> None:
    if permission not in ctx.permissions:
        raise Auth.exceptions.HTTPException(
            status_code=403, detail=f"{ctx.user.identity} may not {what} (needs the {permission!r} permission)"
        )


@auth.on
async def deny_everything_else(ctx: Auth.types.AuthContext, value: Any) -> bool:
    raise Auth.exceptions.HTTPException(
        status_code=403, detail=f"{ctx.resource}.{ctx.action} is not allowed on costguard's server"
    )


@auth.on.threads.read
async def read_thread(ctx: Auth.types.AuthContext, value: Any) -> bool:
    _require(ctx, "read", "read threads")
    return True


@auth.on.threads.search
async def search_threads(ctx: Auth.types.AuthContext, value: Any) -> bool:
    _require(ctx, "read", "list threads")
    return True


@auth.on.threads.create
async def create_thread(ctx: Auth.types.AuthContext, value: Any) -> bool:
    _require(ctx, "submit", "create threads")
    value.setdefault("metadata", {})["submitted_by"] = ctx.user.identity
    return True


@auth.on.threads.create_run
async def create_run(ctx: Auth.types.AuthContext, value: Any) -> bool:
    kwargs = value.get("kwargs") or {}
    command = kwargs.get("command")
    if not command:
        _require(ctx, "submit", "start runs")
        given = kwargs.get("input")
        if given is not None and not (isinstance(given, dict) and "alert" in given):
            # a chat message would re-run the thread from the top and replace a plan waiting for review
            raise Auth.exceptions.HTTPException(
                status_code=400,
                detail="a costguard run takes an alert ({'alert': {...}}); reviews are answered, not chatted to",
            )
        return True
    if command.get("resume") is None:
        raise Auth.exceptions.HTTPException(
            status_code=400,
            detail="a plan is closed by an answer, not by jumping to the end: reject it (with a message) instead",
        )
    _require(ctx, "review", "answer reviews")
    return True


@auth.on.assistants.read
async def read_assistant(ctx: Auth.types.AuthContext, value: Any) -> bool:
    _require(ctx, "read", "read the graph")
    return True


@auth.on.assistants.search
async def search_assistants(ctx: Auth.types.AuthContext, value: Any) -> bool:
    _require(ctx, "read", "list graphs")
    return True
