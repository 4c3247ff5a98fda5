"""The command line: typer commands, tables for people, JSON for machines. The only layer that prints."""

import typer
from typer.exceptions import TyperException

from costguard.cli import local, process, records, review, watch
from costguard.cli.base import EXIT_OK, app, configure_cli_logging, report_error
from costguard.errors import CostguardError

__all__ = ["app", "local", "main", "process", "records", "review", "watch"]


def main() -> None:
    """Run the CLI: every error a user can cause ends in one line and exit code 1, never a traceback."""
    configure_cli_logging()
    try:
        code = app(standalone_mode=False)
    except typer.Exit as exc:  # a command's own exit code (3: partial)
        code = exc.exit_code
    except typer.Abort:  # Ctrl-C at a prompt
        code = report_error("aborted")
    except TyperException as exc:  # an unknown command or option, a missing argument, a bad value
        ctx = getattr(exc, "ctx", None)
        hint = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
        code = report_error(f"{exc.format_message()}{hint}")
    except CostguardError as exc:
        code = report_error(str(exc))
    raise SystemExit(code if isinstance(code, int) else EXIT_OK)
