"""What every command shares: the typer apps, consoles, exit codes, options and the outcome renderers."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table

from costguard.app.desk import Desk, LocalDesk, RemoteDesk
from costguard.app.logs import configure_logging, level_from_env
from costguard.app.runner import CostGuard
from costguard.app.wiring import build_costguard
from costguard.policy import Policy, PolicyError, load_policy
from costguard.sandbox.scripted_model import ScriptedChatModel, load_script
from costguard.settings import Settings
from costguard.state import Outcome, Phase

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Turn cloud cost alerts into safe actions.",
)
review_app = typer.Typer(no_args_is_help=True, help="The review queue: list, show, approve, reject, edit.")
audit_app = typer.Typer(no_args_is_help=True, help="The hash-chained audit trail.")
app.add_typer(review_app, name="review")
llm_app = typer.Typer(no_args_is_help=True, help="The embedded local model.")
app.add_typer(audit_app, name="audit")
app.add_typer(llm_app, name="llm")
metrics_app = typer.Typer(help="Model, agent and business metrics from the costguard database.")
app.add_typer(metrics_app, name="metrics")

out = Console()
err = Console(stderr=True)

EXIT_OK, EXIT_USAGE, EXIT_PARTIAL = 0, 1, 3
API_KEY_ENV = "COSTGUARD_API_KEY"
FAILED_STATUSES = {"failed"}

JsonOpt = Annotated[bool, typer.Option("--json", help="Machine output: JSON on stdout.")]
DbOpt = Annotated[
    str | None,
    typer.Option("--db", help="SQLite file or postgresql:// URL (default $COSTGUARD_DB or ./costguard.db)."),
]
PolicyOpt = Annotated[Path | None, typer.Option("--policy", help="Policy TOML (default $COSTGUARD_POLICY).")]
PhaseOpt = Annotated[Phase | None, typer.Option("--phase", help="Override the policy's phase.")]
ServerOpt = Annotated[
    str | None,
    typer.Option(
        "--server",
        envvar="COSTGUARD_SERVER",
        help="A LangGraph server serving costguard (instead of the local database); "
        "the API key comes from $COSTGUARD_API_KEY.",
    ),
]
ScriptOpt = Annotated[
    Path | None,
    typer.Option(
        "--scripted-model",
        help="Use a scripted model (a JSON list of decisions, cycled) instead of the model server. "
        "For tests and offline trials.",
    ),
]


def configure_cli_logging() -> None:
    """On stderr, at COSTGUARD_LOG_LEVEL."""
    configure_logging(level_from_env(), sys.stderr)


def report_error(message: str, code: int = EXIT_USAGE) -> int:
    """One line on stderr; the exit code to end with."""
    err.print(f"[bold red]error:[/] {message}", soft_wrap=True)
    return code


def fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    """End the command with one line on stderr and `code`."""
    raise typer.Exit(report_error(message, code))


def settings_for(db: str | None) -> Settings:
    settings = Settings()
    if db is not None:
        settings = settings.model_copy(update={"db": db})
    return settings


def policy_for(settings: Settings, policy: Path | None, phase: Phase | None) -> Policy:
    try:
        return load_policy(policy or settings.policy, phase=phase)
    except PolicyError as exc:
        fail(str(exc))


def scripted_model_from(path: Path | None) -> ScriptedChatModel | None:
    return None if path is None else load_script(path)


def guard_for(
    db: str | None, policy: Path | None = None, phase: Phase | None = None, script: Path | None = None
) -> CostGuard:
    settings = settings_for(db)
    return build_costguard(settings, policy_for(settings, policy, phase), model=scripted_model_from(script))


@dataclass(frozen=True)
class CliGuard:
    """Builds the CLI's CostGuard in a worker process (picklable: paths only)."""

    db: str | None
    policy: Path | None
    phase: Phase | None
    script: Path | None

    def __call__(self) -> CostGuard:
        return guard_for(self.db, self.policy, self.phase, self.script)


def emit_json(data: Any) -> None:
    out.file.write(json.dumps(data, default=str) + "\n")
    out.file.flush()


def outcome_json(o: Outcome) -> dict[str, Any]:
    """An outcome as every interface gives it (`--json`, `--report`, the Python API, the server): one shape."""
    return o.model_dump(mode="json")


def outcome_table(outcomes: list[Outcome], title: str) -> Table:
    table = Table(title=title)
    for col in ("alert", "status", "action", "savings $/mo", "reason"):
        table.add_column(col, overflow="fold")
    for o in outcomes:
        savings = "" if o.savings_usd_per_month is None else f"{o.savings_usd_per_month:,.2f}"
        style = {"executed": "green", "rejected": "red", "failed": "bold red", "awaiting_review": "yellow"}.get(
            o.status
        )
        table.add_row(o.alert_id, f"[{style}]{o.status}[/]" if style else o.status, o.action or "", savings, o.reason)
    return table


def show(outcomes: list[Outcome], title: str, as_json: bool) -> None:
    """Outcomes as JSON lines, or as a table titled `title`."""
    if as_json:
        for o in outcomes:
            emit_json(outcome_json(o))
    else:
        out.print(outcome_table(outcomes, title))


def finish(outcomes: list[Outcome]) -> None:
    if any(o.status in FAILED_STATUSES for o in outcomes):
        raise typer.Exit(EXIT_PARTIAL)


def desk_for(server: str | None, db: str | None, policy: Path | None = None) -> Desk:
    """The review queue: the LangGraph server's (`--server`), else the local database's."""
    if server:
        return RemoteDesk(server, os.environ.get(API_KEY_ENV) or None)
    return LocalDesk(guard_for(db, policy))
