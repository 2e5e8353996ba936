"""Running strategies and reading their lineage: ``run``, ``lineage``, ``runs`` and the ``schedule`` group."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from typing import Annotated

import typer

from tradetrail.cli.common import (
    JsonOpt,
    NotFound,
    UserOpt,
    _app,
    _emit,
    _fail,
    _user_id,
    console,
)
from tradetrail.cli.step_lines import StepLines
from tradetrail.cli.tables import print_table, short_ids, when


def _execution_end(data: dict) -> str:
    """The line after the steps: the outcome, the market time it saw, how to see it again."""
    short = data["id"][:8]
    seconds = (data.get("duration_ms") or 0) / 1000
    text = f"execution {short} {data['status']} in {seconds:.2f} s, market as of {when(data['as_of'])}"
    if data["status"] == "failed":
        text += f", at {data.get('failed_step')}: {data.get('error')}"
    return text + f"\nevery step in full: tradetrail lineage {short}"


def _print_execution(data: dict) -> None:
    lines = StepLines()
    console.print(f"{data['strategy']}: execution {data['id']} ({data['trigger']})", highlight=False)
    for step in data["steps"]:
        console.print(lines.line(step, console.width), highlight=False, soft_wrap=True)
    console.print(_execution_end(data), highlight=False)


def _run_showing_steps(application, uid: int, name: str):
    """Run, showing each step as it finishes: a live display on a terminal, plain lines through a pipe."""
    from rich.console import Group
    from rich.live import Live
    from rich.spinner import Spinner
    from rich.text import Text

    from tradetrail.services.runs.executions import run_strategy

    lines, shown = StepLines(), []
    if not console.is_terminal:
        def plain(step: dict) -> None:
            console.print(lines.line(step, console.width), highlight=False, soft_wrap=True)
        return run_strategy(application, uid, name, on_step=plain)

    def view() -> Group:
        return Group(*shown, Spinner("dots", text=Text(f" running {name}…", style="dim")))

    with Live(view(), console=console, refresh_per_second=8, transient=False) as live:
        def on_step(step: dict) -> None:
            colour = {"succeeded": "green", "failed": "red", "skipped": "yellow"}.get(step["status"], "white")
            shown.append(Text(lines.line(step, console.width), style=colour))
            live.update(view())
        try:
            return run_strategy(application, uid, name, on_step=on_step)
        finally:
            live.update(Group(*shown))


def run(name: str, as_json: JsonOpt = False, user: UserOpt = "demo") -> None:
    """Run strategy NAME once, now, showing each step as it finishes (--json: the execution as JSON).

    On a terminal the steps appear in a live display; through a pipe each is one plain line, in order, then
    the outcome. Exit 1 if the execution failed."""
    from tradetrail.services.runs.executions import AlreadyRunning, get_execution, run_strategy

    application = _app()
    uid = _user_id(application, user)
    try:
        summary = run_strategy(application, uid, name) if as_json else _run_showing_steps(application, uid, name)
    except (NotFound, AlreadyRunning) as exc:
        _fail(str(exc))
    # Anything else (the database locked or gone, lineage that could not be written) is one line on stderr
    # and exit 1 (cli/errors.py); an execution already created is recorded failed by the executor.
    data = get_execution(application, summary.execution_id)
    if as_json:
        sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
    else:
        console.print(_execution_end(data), highlight=False)
    if summary.status == "failed":
        raise typer.Exit(1)


def lineage(execution_id: Annotated[str, typer.Argument(help="the execution's id, or its first 8+ characters")],
            as_json: JsonOpt = False) -> None:
    """Show one execution with all its recorded steps."""
    from tradetrail.services.runs.executions import get_execution
    from tradetrail.services.runs.ids import execution_id_from_prefix

    application = _app()
    try:
        data = get_execution(application, execution_id_from_prefix(application, execution_id))
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
    _emit(data, as_json, lambda d: print_table(f"{name}: {d['cron']} ({d['timezone']})", ["local", "UTC"], [
        [datetime.fromisoformat(t["local"]).strftime("%a %Y-%m-%d %H:%M"), when(t["utc"])] for t in d["next"]]))


def runs(strategy: Annotated[str, typer.Option("--strategy", help="strategy name")], user: UserOpt = "demo",
         as_json: JsonOpt = False, limit: Annotated[int, typer.Option(min=1, max=100)] = 20,
         lost: Annotated[bool, typer.Option("--lost", help="only the slots skipped or lost (with --json: "
                                                          "those instead of the executions)")] = False) -> None:
    """Recent executions of a strategy, newest first, with their scheduled slot if any; then its schedule
    slots that were skipped or lost (never run, or lost with their worker), with the reason."""
    from tradetrail.services.runs.lineage import recent
    from tradetrail.services.scheduling.slots import lost_slots

    application = _app()
    uid = _user_id(application, user)
    try:
        rows = [] if lost else recent(application, uid, strategy=strategy, limit=limit)
        slots = lost_slots(application, uid, strategy=strategy, limit=limit)
    except NotFound as exc:
        _fail(str(exc))

    def render_slots(slots: list[dict]) -> None:
        if not slots:
            console.print(f"no slot of {strategy} was skipped or lost", highlight=False)
            return
        print_table(f"slots of {strategy} skipped or lost, latest first", ["due", "status", "reason"],
                    [[when(s["scheduled_for"]), s["status"], s["reason"] or ""] for s in slots])

    def render(rows: list[dict]) -> None:
        ids = short_ids(r["id"] for r in rows)
        print_table(f"runs of {strategy}, newest first", ["id", "status", "trigger", "started", "as of", "failed step"],
                    [[ids[r["id"]], r["status"], r["trigger"], when(r["started_at"]), when(r["as_of"]),
                      r["failed_step"] or ""] for r in rows])
        render_slots(slots)

    if lost:
        _emit(slots, as_json, render_slots)
    else:
        _emit(rows, as_json, render)  # --json: the executions, as before
