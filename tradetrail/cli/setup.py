"""Setting up: ``init`` (database, built-in prompts, the demo) and the ``db`` group (schema migrations)."""

from __future__ import annotations

import typer

from tradetrail.cli.common import (
    _app,
    console,
)

db_app = typer.Typer(no_args_is_help=True, help="Database schema.")

def init() -> None:
    """Migrate the database, install the built-in prompts, create the demo user and the `demo` strategy."""
    from tradetrail.services.accounts.bootstrap import init as do_init
    from tradetrail.services.accounts.users import give_password_if_none

    application = _app()
    result = do_init(application)
    console.print(f"ready: user [bold]{result['user']}[/bold], strategy [bold]{result['strategy']}[/bold], "
                  f"{len(result['templates'])} prompt templates")
    password = give_password_if_none(application, result["user"])  # a fresh install only: never a default
    s = application.settings
    host = "127.0.0.1" if s.host in ("0.0.0.0", "::", "") else s.host
    host = f"[{host}]" if ":" in host else host
    if password is not None:
        console.print(f"sign in at http://{host}:{s.port}/login as [bold]{result['user']}[/bold] with the password "
                      f"[bold]{password}[/bold]\n(shown only this once; change it with "
                      f"`tradetrail users set-password {result['user']}`)", highlight=False, soft_wrap=True)
    else:  # `make run` again: say where to go, and how to get in if the first password is lost
        console.print(f"sign in at http://{host}:{s.port}/login as [bold]{result['user']}[/bold] (the password is the "
                      f"one the first init printed; `tradetrail users set-password {result['user']}` sets a new one)",
                      highlight=False, soft_wrap=True)


@db_app.command("upgrade")
def db_upgrade(revision: str = "head") -> None:
    """Apply migrations up to REVISION (default: head)."""
    from tradetrail.db.migrate import current_revision, upgrade

    application = _app(migrate=False)
    upgrade(application.engine, revision)
    console.print(f"schema at revision {current_revision(application.engine)}")


@db_app.command("current")
def db_current() -> None:
    """Print the schema revision of the database."""
    from tradetrail.db.migrate import current_revision

    console.print(current_revision(_app(migrate=False).engine) or "empty (run `tradetrail db upgrade`)")
