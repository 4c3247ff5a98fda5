"""The review queue: list, show, approve, reject, edit."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from pydantic import ValidationError
from rich.table import Table

from costguard.app.desk import server_thread_id
from costguard.cli.base import (
    EXIT_USAGE,
    DbOpt,
    JsonOpt,
    PolicyOpt,
    ServerOpt,
    desk_for,
    emit_json,
    err,
    fail,
    finish,
    out,
    outcome_json,
    outcome_table,
    review_app,
    settings_for,
)
from costguard.state import PlanEdit, ReviewResponse
from costguard.tools.notify import review_link

# --- review ------------------------------------------------------------------------------


@review_app.command("list")
def review_list(
    db: DbOpt = None,
    limit: Annotated[int, typer.Option("--limit", min=1)] = 100,
    offset: Annotated[int, typer.Option("--offset", min=0)] = 0,
    server: ServerOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Plans waiting for a human decision."""
    items = desk_for(server, db).pending(limit=limit, offset=offset)
    if as_json:
        emit_json(
            [
                {
                    "thread_id": i.thread_id,
                    "alert_id": i.alert_id,
                    "digest": i.plan.digest,
                    "action": i.plan.action,
                    "resource_id": i.plan.resource_id,
                    "resource_type": i.plan.resource_type,
                    "instance_id": i.plan.resource_id if i.plan.resource_type == "instance" else None,
                    "target_type": i.plan.target_type,
                    "target_instance_type": i.plan.target_type if i.plan.resource_type == "instance" else None,
                    "savings_usd_per_month": i.plan.savings_usd_per_month,
                    "approval_reasons": list(i.plan.approval_reasons),
                    "expires_at": i.plan.expires_at.isoformat(),
                }
                for i in items
            ]
        )
        return
    table = Table(title=f"{len(items)} plan(s) awaiting review")
    for col in ("thread", "action", "resource", "savings $/mo", "why", "digest", "expires"):
        table.add_column(col, overflow="fold")
    for i in items:
        p = i.plan
        action = p.action + (f" → {p.target_type}" if p.target_type else "")
        savings = "?" if p.savings_usd_per_month is None else f"{p.savings_usd_per_month:,.2f}"
        table.add_row(
            i.thread_id,
            action,
            p.resource_id,
            savings,
            ", ".join(p.approval_reasons),
            p.digest,
            p.expires_at.isoformat(),
        )
    out.print(table)


@review_app.command("show")
def review_show(
    thread: Annotated[str, typer.Argument()], db: DbOpt = None, server: ServerOpt = None, as_json: JsonOpt = False
) -> None:
    """The review request of one thread: the plan in plain words, what a reviewer may change."""
    request = desk_for(server, db).request(thread)
    if request is None:
        fail(f"thread {thread!r} is not waiting for a review")
    if as_json:
        emit_json(request)
        return
    action = request["action_requests"][0]
    out.print(f"[bold]{thread}[/]\n{action['description']}\n")
    link = review_link(settings_for(db).review_ui_url, server_thread_id(thread) if server else thread)
    if link:
        out.print(f"review it in the browser: {link}")
    out.print_json(json.dumps(action["args"], default=str))


def respond(
    thread: str, response: dict[str, Any], db: str | None, policy: Path | None, server: str | None, as_json: bool
) -> None:
    try:
        parsed = ReviewResponse.model_validate(response)
    except ValidationError as exc:
        fail(f"invalid review response: {exc.errors()[0]['loc']}: {exc.errors()[0]['msg']}")
    answered = desk_for(server, db, policy).answer(thread, parsed)
    outcome = answered.outcome
    if as_json:
        data = outcome_json(outcome)
        if answered.refused is not None:
            data["refused"] = answered.refused
        emit_json(data)
    else:
        if answered.refused is not None:
            err.print(f"[bold red]refused:[/] {answered.refused}; the plan is still waiting for a valid review")
        out.print(outcome_table([outcome], thread))
    if answered.refused is not None:
        raise typer.Exit(EXIT_USAGE)
    finish([outcome])


ReviewerOpt = Annotated[str, typer.Option("--reviewer", help="Your identity; must be on the policy's approvers list.")]
DigestOpt = Annotated[str, typer.Option("--digest", help="The plan digest you reviewed (from `review list`).")]
NoteOpt = Annotated[str, typer.Option("--note")]


def _answer(decision: Literal["approve", "reject"], summary: str) -> Callable[..., None]:
    """The approve and reject commands: the same options, one decision each."""

    def command(
        thread: Annotated[str, typer.Argument()],
        reviewer: ReviewerOpt,
        digest: DigestOpt,
        note: NoteOpt = "",
        db: DbOpt = None,
        policy: PolicyOpt = None,
        server: ServerOpt = None,
        as_json: JsonOpt = False,
    ) -> None:
        answer = {"decision": decision, "reviewer": reviewer, "digest": digest, "note": note}
        respond(thread, answer, db, policy, server, as_json)

    command.__doc__ = summary
    command.__name__ = f"review_{decision}"
    return command


review_approve = review_app.command("approve")(
    _answer("approve", "Approve the plan with this digest; it executes once, after a snapshot.")
)
review_reject = review_app.command("reject")(_answer("reject", "Reject the plan: nothing is executed."))


@review_app.command("edit")
def review_edit(
    thread: Annotated[str, typer.Argument()],
    reviewer: ReviewerOpt,
    digest: DigestOpt,
    action: Annotated[str, typer.Option("--action", help="shutdown or resize")],
    target: Annotated[str | None, typer.Option("--target", help="Instance type for resize.")] = None,
    note: NoteOpt = "",
    db: DbOpt = None,
    policy: PolicyOpt = None,
    server: ServerOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Change the plan (action, resize target) and approve it; the rails check the edit."""
    try:
        edit = PlanEdit.model_validate({"action": action, "target_instance_type": target})
    except ValidationError as exc:
        fail(f"invalid edit: {exc.errors()[0]['msg']}")
    respond(
        thread,
        {"decision": "edit", "reviewer": reviewer, "digest": digest, "note": note, "edited_plan": edit.model_dump()},
        db,
        policy,
        server,
        as_json,
    )
