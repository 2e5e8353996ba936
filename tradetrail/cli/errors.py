"""What the command line prints when a command fails outside its own checks: one line on stderr saying what
failed and where ("database is locked: sqlite:////srv/tt/tradetrail.db"), and exit code 1 — not a
few hundred lines of traceback in front of the one that matters. ``TRADETRAIL_TRACEBACK=1`` shows the
traceback as well, for a bug report.
"""

from __future__ import annotations

import os
import sys

import typer
from typer.core import TyperGroup
from typer.exceptions import TyperException

from tradetrail.db.failure_text import database_message, is_database_error, one_line


def _database_url() -> str:
    """The database URL the command used, password hidden (empty if the settings cannot be read)."""
    from sqlalchemy.engine import make_url

    from tradetrail.settings import Settings

    try:
        return make_url(Settings().resolved_database_url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - the message still says what failed
        return ""


def describe(exc: BaseException) -> str:
    """One line for ``exc``: the database error with the database's URL, a file error with its path, the
    message of our own errors; anything else with its type."""
    from tradetrail.app_context import ConfigurationError
    from tradetrail.workflow.executor import ExecutionNotRecorded

    if isinstance(exc, ExecutionNotRecorded) and is_database_error(exc.__cause__):
        return f"{database_message(exc.__cause__)}: {_database_url()} (execution {exc.execution_id} could not be " \
               "recorded as failed; the next run of the strategy or the sweep will)"
    if is_database_error(exc):
        return f"{database_message(exc)}: {_database_url()}"
    if isinstance(exc, (ConfigurationError, ExecutionNotRecorded)):
        return str(exc)
    if isinstance(exc, OSError) and exc.filename:
        return f"{exc.strerror or type(exc).__name__}: {exc.filename}"
    return one_line(exc)


class ReportingGroup(TyperGroup):
    """The root command group: a command that raises ends with :func:`describe`'s line and exit code 1."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, TyperException):  # exits, aborts and usage errors: the CLI's own
            raise
        except Exception as exc:
            if os.environ.get("TRADETRAIL_TRACEBACK", "").lower() in ("1", "true", "yes"):
                raise
            sys.stderr.write(f"error: {describe(exc)}\n")
            sys.stderr.flush()
            raise typer.Exit(1) from None
