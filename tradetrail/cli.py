"""The ``tradetrail`` command line. Every command calls the services; none holds business logic."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from tradetrail.services.strategies import NotFound

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Scheduled, LLM-assisted trading workflows.")
db_app = typer.Typer(no_args_is_help=True, help="Database schema.")
app.add_typer(db_app, name="db")
console = Console()
err = Console(stderr=True)

UserOpt = Annotated[str, typer.Option("--user", help="whose strategies (default: the demo user)")]
JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON instead of a table")]


def _fail(message: str, code: int = 2) -> None:
    err.print(f"[red]error:[/red] {message}", highlight=False)
    raise typer.Exit(code)


def _app(migrate: bool = True):
    from tradetrail.services.app import build_app
    from tradetrail.settings import Settings

    try:
        settings = Settings()
    except ValidationError as exc:
        problems = "; ".join(f"TRADETRAIL_{'_'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in exc.errors())
        _fail(f"invalid settings: {problems}")
    return build_app(settings, migrate=migrate)


def _user_id(application, username: str) -> int:
    from tradetrail.services.strategies import get_user

    with application.Session() as s:
        try:
            return get_user(s, username).id
        except NotFound as exc:
            _fail(f"{exc} (run `tradetrail init` first)")


@app.command()
def init() -> None:
    """Migrate the database, install the built-in prompts, create the demo user and the `demo` strategy."""
    from tradetrail.services.bootstrap import init as do_init

    result = do_init(_app())
    console.print(f"ready: user [bold]{result['user']}[/bold], strategy [bold]{result['strategy']}[/bold], "
                  f"{len(result['templates'])} prompt templates")


def _print_execution(data: dict) -> None:
    table = Table(title=f"execution {data['id']} — {data['strategy']} — {data['status']}")
    for col in ("#", "step", "status", "ms", "summary"):
        table.add_column(col, overflow="fold")
    for st in data["steps"]:
        colour = {"succeeded": "green", "failed": "red", "skipped": "yellow"}.get(st["status"], "white")
        summary = st["error"] or _summary(st["name"], st["output"])
        table.add_row(str(st["number"]), st["name"], f"[{colour}]{st['status']}[/{colour}]",
                      f"{st['duration_ms']:.1f}", summary)
    console.print(table)
    console.print(f"as of {data['as_of']}, total {data['duration_ms']:.1f} ms")


def _summary(name: str, out: dict) -> str:
    if name == "fetch_market_data":
        return ", ".join(f"{tf}: {v.get('count')} bars to {v.get('last', '')[:10]}" for tf, v in out.items())
    if name == "analyze":
        a = out.get("answer", {})
        return f"{out.get('label')}: {a.get('action')} ({a.get('confidence')})"
    if name in ("decide_signal", "complete"):
        return f"{out.get('action') or out.get('signal')}: {out.get('reason')}"
    if name == "render_charts":
        return ", ".join(f"{tf} {v['sha256'][:12]}" for tf, v in out.items() if isinstance(v, dict)) or \
            str(out.get("reason", ""))
    if name == "resolve_contract":
        return f"{out.get('contract', {}).get('name')} (cache {out.get('cache')})"
    text = json.dumps(out, default=str)
    return text if len(text) < 100 else text[:97] + "..."


@app.command()
def run(name: str, as_json: JsonOpt = False, user: UserOpt = "demo") -> None:
    """Run strategy NAME once, now, and show every step."""
    from tradetrail.services.executions import get_execution, run_strategy

    application = _app()
    uid = _user_id(application, user)
    try:
        summary = run_strategy(application, uid, name)
    except NotFound as exc:
        _fail(str(exc))
    data = get_execution(application, summary.execution_id)
    if as_json:
        sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
    else:
        _print_execution(data)
    if summary.status == "failed":
        raise typer.Exit(1)


@app.command()
def lineage(execution_id: str, as_json: JsonOpt = False) -> None:
    """Show one execution with all its recorded steps."""
    from tradetrail.services.executions import get_execution

    try:
        data = get_execution(_app(), execution_id)
    except NotFound as exc:
        _fail(str(exc))
    if as_json:
        sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
    else:
        _print_execution(data)


@app.command()
def serve(host: Annotated[str | None, typer.Option(help="bind address")] = None,
          port: Annotated[int | None, typer.Option(help="port")] = None) -> None:
    """Serve the API (migrations run first)."""
    import uvicorn

    from tradetrail.api.app import create_app

    application = _app()
    s = application.settings
    uvicorn.run(create_app(application), host=host or s.host, port=port or s.port, log_level=s.log_level.lower())


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


if __name__ == "__main__":
    app()
