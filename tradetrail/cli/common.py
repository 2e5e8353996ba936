"""What every command group shares: the consoles, the common options, building the app, failing with a
message, and printing rows or JSON."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape

from tradetrail.domain.errors import NotFound

console = Console()
err = Console(stderr=True)

UserOpt = Annotated[str, typer.Option("--user", help="whose strategies (default: the demo user)")]
JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON instead of a table")]
StrategyOpt = Annotated[str | None, typer.Option("--strategy", help="one strategy instead of the whole account")]
__all__ = ["NotFound", "console", "err", "UserOpt", "JsonOpt", "StrategyOpt", "_fail", "_app", "_user_id",
           "_print_rows", "_emit"]


def _fail(message: str, code: int = 2) -> None:
    # one line, however long; the message is text (a path or a value in [brackets] must show as written)
    err.print(f"[red]error:[/red] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def _app(migrate: bool = True):
    from tradetrail.runtime.build import build_app
    from tradetrail.settings import Settings

    try:
        settings = Settings()
    except ValidationError as exc:
        problems = "; ".join(f"TRADETRAIL_{'_'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in exc.errors())
        _fail(f"invalid settings: {problems}")
    return build_app(settings, migrate=migrate)


def _user_id(application, username: str) -> int:
    from tradetrail.services.strategies.configs import user_id_named

    try:
        return user_id_named(application, username)
    except NotFound as exc:
        _fail(f"{exc} (run `tradetrail init` first)")


def _print_rows(title: str, rows: list[dict], columns: list[str]) -> None:
    """A plain table of ``columns`` (a key's underscores read as spaces); see ``cli/tables.py``."""
    from tradetrail.cli.tables import print_table

    print_table(title, [c.replace("_", " ") for c in columns],
                [["" if row.get(c) is None else str(row.get(c)) for c in columns] for row in rows])


def _emit(data, as_json: bool, render) -> None:
    if as_json:
        sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
    else:
        render(data)


