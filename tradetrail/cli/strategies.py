"""The ``strategies`` group: list, show, create, edit, enable, pause and validate strategies written as YAML
or JSON files, under the same schema as the API (``services/strategies/documents.py`` reads them)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from tradetrail.cli.common import JsonOpt, NotFound, UserOpt, _app, _fail, _user_id, console, err
from tradetrail.cli.tables import print_table, when

strategies_app = typer.Typer(no_args_is_help=True, help="Strategies: list, show, create and edit from YAML or JSON "
                                                        "files, enable, pause, validate.")

FileOpt = Annotated[Path, typer.Option("--file", "-f", help="the configuration, YAML or JSON (JSON is YAML)",
                                       dir_okay=False)]


def _read(path: Path):
    """The document in ``path``; a missing, unreadable, huge or non-strategy file ends with one line."""
    from tradetrail.services.errors import DocumentError, InvalidStrategy
    from tradetrail.services.strategies.documents import MAX_DOCUMENT_BYTES, parse_document

    try:
        if path.stat().st_size > MAX_DOCUMENT_BYTES:
            _fail(f"{path}: larger than {MAX_DOCUMENT_BYTES // 1024} KiB: not a strategy configuration")
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        _fail(f"{path}: no such file")
    except UnicodeDecodeError:
        _fail(f"{path}: not UTF-8 text")
    except OSError as exc:
        _fail(f"{path}: {exc.strerror or exc}")
    try:
        return parse_document(text)
    except DocumentError as exc:
        _fail(f"{path}: {exc}")
    except InvalidStrategy as exc:
        _problems(path, exc.problems)


def _problems(source, problems: list[str]) -> None:
    """One line per problem, each naming its field by its path; exit 1."""
    for problem in problems:
        err.print(f"{source}: {problem}", highlight=False, soft_wrap=True, markup=False)
    raise typer.Exit(1)


def _saved(verb: str, data: dict, how: str = "") -> None:
    state = "enabled" if data["enabled"] else "paused"
    console.print(f"strategy {data['name']} {verb}{how}: version {data['version']}, {state}", highlight=False,
                  soft_wrap=True)


@strategies_app.command("list")
def strategies_list(user: UserOpt = "demo", as_json: JsonOpt = False) -> None:
    """The user's strategies by name."""
    from tradetrail.services.strategies.configs import list_strategies

    application = _app()
    rows = list_strategies(application, _user_id(application, user), limit=1000)
    if as_json:
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
        return
    print_table(f"strategies of {user}", ["name", "state", "version", "symbol", "mode", "schedule", "updated"], [
        [r["name"], "enabled" if r["enabled"] else "paused", str(r["version"]), r["symbol"] or "", r["mode"] or "",
         r["cron"] or "by hand", when(r["updated_at"])] for r in rows], right={2})


@strategies_app.command("show")
def strategies_show(name: str, user: UserOpt = "demo", as_json: JsonOpt = False) -> None:
    """Strategy NAME's current version as YAML that `create` and `edit` read back (--json: as the API shows it)."""
    from tradetrail.services.strategies.configs import strategy_detail
    from tradetrail.services.strategies.documents import config_document

    application = _app()
    try:
        detail = strategy_detail(application, _user_id(application, user), name)
    except NotFound as exc:
        _fail(str(exc))
    if as_json:
        sys.stdout.write(json.dumps(detail, indent=2) + "\n")
        return
    state = "enabled" if detail["enabled"] else "paused"
    sys.stdout.write(f"# version {detail['version']}, {state}, updated {when(detail['updated_at'])} UTC\n"
                     + config_document(detail))


@strategies_app.command("create")
def strategies_create(file: FileOpt,
                      name: Annotated[str | None, typer.Option(
                          help="the strategy's name; without it, the file's `name:` key")] = None,
                      paused: Annotated[bool, typer.Option("--paused", help="create it paused")] = False,
                      user: UserOpt = "demo") -> None:
    """Create a strategy from a YAML or JSON file. Its name is --name if given, else the file's `name:` key."""
    from tradetrail.services.errors import InvalidStrategy
    from tradetrail.services.strategies.configs import create_strategy

    document = _read(file)
    chosen = name or document.name
    if not chosen:
        _fail(f"{file}: no name: give --name NAME or a `name:` key in the file")
    how = " (name from --name)" if name else " (name from the file)"
    application = _app()
    try:
        data = create_strategy(application, _user_id(application, user), chosen, document.config, enabled=not paused)
    except InvalidStrategy as exc:
        _problems(file, exc.problems)
    _saved("created", data, how)


@strategies_app.command("edit")
def strategies_edit(name: str, file: FileOpt, user: UserOpt = "demo") -> None:
    """Save the file as a new version of strategy NAME (an unchanged configuration adds none). A `name:` key in
    the file must be NAME: a strategy is not renamed."""
    from tradetrail.services.errors import InvalidStrategy
    from tradetrail.services.strategies.configs import update_strategy

    document = _read(file)
    if document.name is not None and document.name != name:
        _fail(f"{file}: the file is strategy {document.name!r}, not {name!r} (a strategy is not renamed; remove "
              "or change its name: key)")
    application = _app()
    try:
        data = update_strategy(application, _user_id(application, user), name, document.config)
    except NotFound as exc:
        _fail(str(exc))
    except InvalidStrategy as exc:
        _problems(file, exc.problems)
    _saved("saved", data)


def _set_enabled(name: str, user: str, enabled: bool) -> None:
    from tradetrail.services.strategies.configs import set_enabled

    application = _app()
    try:
        data = set_enabled(application, _user_id(application, user), name, enabled)
    except NotFound as exc:
        _fail(str(exc))
    _saved("enabled" if enabled else "paused", data)


@strategies_app.command("enable")
def strategies_enable(name: str, user: UserOpt = "demo") -> None:
    """Let strategy NAME run on its schedule again."""
    _set_enabled(name, user, True)


@strategies_app.command("pause")
def strategies_pause(name: str, user: UserOpt = "demo") -> None:
    """Pause strategy NAME: its runs, scheduled or by hand, stop at their first step (skipped); its history stays."""
    _set_enabled(name, user, False)


@strategies_app.command("validate")
def strategies_validate(file: FileOpt, user: UserOpt = "demo") -> None:
    """Check a YAML or JSON file as `create` would, without saving: every field, then what needs the database or
    a source (the symbol, the prompts, the schedule). Exit 1 with one line per problem."""
    from tradetrail.services.strategies.configs import validate_config

    document = _read(file)
    application = _app()
    problems = validate_config(application, _user_id(application, user), document.config)
    if problems:
        _problems(file, problems)
    console.print(f"{file}: valid" + (f" (strategy {document.name})" if document.name else ""), highlight=False,
                  soft_wrap=True)
