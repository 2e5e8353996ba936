"""Running strategies and reading their lineage: ``run``, ``lineage``, ``runs`` and the ``schedule`` group."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer
from rich.table import Table

from tradetrail.cli.common import (
    JsonOpt,
    NotFound,
    UserOpt,
    _app,
    _emit,
    _fail,
    _print_rows,
    _user_id,
    console,
)


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


def run(name: str, as_json: JsonOpt = False, user: UserOpt = "demo") -> None:
    """Run strategy NAME once, now, and show every step."""
    from tradetrail.services.runs.executions import AlreadyRunning, get_execution, run_strategy

    application = _app()
    uid = _user_id(application, user)
    try:
        summary = run_strategy(application, uid, name)
    except (NotFound, AlreadyRunning) as exc:
        _fail(str(exc))
    # Anything else (the database locked or gone, lineage that could not be written) is one line on stderr
    # and exit 1 (cli/errors.py); an execution already created is recorded failed by the executor.
    data = get_execution(application, summary.execution_id)
    if as_json:
        sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
    else:
        _print_execution(data)
    if summary.status == "failed":
        raise typer.Exit(1)


def lineage(execution_id: str, as_json: JsonOpt = False) -> None:
    """Show one execution with all its recorded steps."""
    from tradetrail.services.runs.executions import get_execution

    try:
        data = get_execution(_app(), execution_id)
    except NotFound as exc:
        _fail(str(exc))
    if as_json:
        sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
    else:
        _print_execution(data)


schedule_app = typer.Typer(no_args_is_help=True, help="Schedules.")


@schedule_app.command("preview")
def schedule_preview(name: str, user: UserOpt = "demo", as_json: JsonOpt = False,
                     count: Annotated[int, typer.Option(min=1, max=500)] = 10) -> None:
    """The next COUNT run times of strategy NAME (in UTC and in the strategy's time zone)."""
    from tradetrail.domain.schedule import ScheduleError
    from tradetrail.services.strategies.configs import next_runs

    application = _app()
    uid = _user_id(application, user)
    try:
        data = next_runs(application, uid, name, count)
    except (NotFound, ScheduleError) as exc:
        _fail(str(exc))
    if not data["cron"]:
        _fail(f"strategy {name!r} has no schedule (schedule.cron is empty)")
    _emit(data, as_json, lambda d: _print_rows(f"{name}: {d['cron']} ({d['timezone']})", d["next"],
                                               ["local", "utc"]))


def runs(strategy: Annotated[str, typer.Option("--strategy", help="strategy name")], user: UserOpt = "demo",
         as_json: JsonOpt = False, limit: Annotated[int, typer.Option(min=1, max=100)] = 20) -> None:
    """Recent executions of a strategy, newest first, with their scheduled slot if any."""
    from tradetrail.services.runs.lineage import recent

    application = _app()
    uid = _user_id(application, user)
    try:
        rows = recent(application, uid, strategy=strategy, limit=limit)
    except NotFound as exc:
        _fail(str(exc))
    _emit(rows, as_json, lambda r: _print_rows(f"runs of {strategy}", r, [
        "id", "status", "trigger", "started_at", "as_of", "failed_step"]))
