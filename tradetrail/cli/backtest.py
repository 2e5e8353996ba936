"""``backtest``: a strategy over a range of history, with a progress bar and the report (or a grid of
parameter combinations run on every core)."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated

import typer

from tradetrail.cli.common import JsonOpt, UserOpt, _app, _emit, _fail, _user_id, console, err
from tradetrail.cli.tables import print_table

ROWS = (("total_return_pct", "total return %"), ("cagr_pct", "CAGR %"), ("max_drawdown_pct", "max drawdown %"),
        ("max_drawdown_sessions", "drawdown length (sessions)"), ("sharpe", "Sharpe"), ("sortino", "Sortino"),
        ("calmar", "Calmar"), ("time_in_market_pct", "time in market %"), ("trades", "trades"),
        ("win_rate_pct", "win rate %"), ("profit_factor", "profit factor"), ("average_r", "average R"),
        ("expectancy", "expectancy"), ("best_trade", "best trade"), ("worst_trade", "worst trade"),
        ("average_holding_sessions", "average holding (sessions)"), ("final_equity", "final equity"))


def _date(value: str, option: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        _fail(f"{option} must be a date written YYYY-MM-DD, got {value!r}")


def _fmt(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.2f}" if abs(value) >= 100 else f"{value:.3g}" if abs(value) < 0.01 else f"{value:.2f}"
    return str(value)


def _print_report(data: dict) -> None:
    report = data["report"]
    stats, hold = report["stats"], report["buy_and_hold"]
    console.print(f"backtest {data['id']}: {data['strategy']} {stats['start']} … {stats['end']}, {stats['sessions']} "
                  f"sessions ({report['warmup_sessions']} warm-up), {report['bars']} bars, "
                  f"{report['duration_ms']:.1f} ms", highlight=False)
    print_table("report", ["", "strategy", "buy and hold"],
                [[label, _fmt(stats.get(key)), _fmt(hold.get(key)) if key in hold else ""] for key, label in ROWS])
    trades = report["trades"]
    if trades:
        shown = trades if len(trades) <= 20 else trades[:10] + trades[-10:]
        print_table(f"trades ({len(trades)}{', first and last 10' if len(trades) > 20 else ''})",
                    ["entry", "exit", "qty", "entry price", "exit price", "pnl", "R"],
                    [[t["entry_date"], t["exit_date"] or "open", _fmt(t["quantity"]), _fmt(t["entry_price"]),
                      _fmt(t["exit_price"]), _fmt(t["pnl"]), _fmt(t["r_multiple"])] for t in shown])
    if report.get("paused"):
        console.print(f"paused {report['paused']['date']}: {report['paused']['reason']}", highlight=False)
    if report.get("undecided_sessions"):
        console.print(f"{len(report['undecided_sessions'])} sessions the analyst could not decide", highlight=False)
    if report.get("analysis"):
        _print_analysis(report["analysis"])
    console.print(f"the decision behind each session: tradetrail lineage {data['id'][:8]}", highlight=False)


def _print_analysis(a: dict) -> None:
    """The model analyst's sessions: from the cache, asked, missing (cached mode) and failed, with dates."""
    console.print(f"model {a['model']} ({a['mode']}): {a['asked']} sessions, {a['cached']} answered from the cache, "
                  f"{a['answered_by_model']} by the model ({a['calls']} calls, {a['attempts']} attempts), "
                  f"{a['missing']} without a cached answer, {a['failed']} failed", highlight=False, soft_wrap=True)
    if a["missing"]:
        more = f" … and {a['missing'] - len(a['missing_dates'])} more" if a["missing"] > len(a["missing_dates"]) else ""
        console.print(f"without a cached answer (HOLD, never guessed): {', '.join(a['missing_dates'])}{more}; "
                      "--analyst model --max-calls N asks the model for them", highlight=False, soft_wrap=True)
    for f in a["failed_sessions"]:
        console.print(f"failed {f['date']} (HOLD): {f['reason']}", highlight=False, soft_wrap=True)


def _plan_line(plan: dict) -> str:
    if plan["mode"] == "cached":
        return (f"model {plan['model']}, cached answers only: {plan['cached']} of {plan['asked']} sessions cached, "
                f"{plan['without_answer']} without an answer (HOLD, reported); no model call")
    return (f"model {plan['model']}: {plan['cached']} of {plan['asked']} sessions cached, {plan['calls']} model calls "
            f"to make (max {plan['max_calls']})")


def _with_progress(run):
    """Run ``run(progress)`` with a progress bar on a terminal (nothing through a pipe)."""
    if not console.is_terminal:
        return run(None)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("backtest"), BarColumn(), MofNCompleteColumn(), TextColumn("sessions"),
                  TimeElapsedColumn(), console=console, transient=True) as bar:
        task = bar.add_task("backtest", total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)
        return run(progress)


def _parse_params(values: list[str]) -> dict[str, list]:
    grid: dict[str, list] = {}
    for item in values:
        name, sep, raw = item.partition("=")
        if not sep or not name.strip() or not raw.strip():
            _fail(f"--param must be NAME=V1,V2,… got {item!r}")
        grid[name.strip()] = [_number(v.strip()) for v in raw.split(",") if v.strip()]
    return grid


def _number(text: str):
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def backtest(name: str,
             start: Annotated[str, typer.Option("--from", help="first session, YYYY-MM-DD")],
             end: Annotated[str, typer.Option("--to", help="last session, YYYY-MM-DD")],
             cash: Annotated[float | None, typer.Option("--cash", help="starting cash (default "
                                                                       "TRADETRAIL_SIM_INITIAL_CASH)")] = None,
             param: Annotated[list[str] | None, typer.Option(
                 "--param", help="analyst parameter values to try, NAME=V1,V2 (repeat: every combination runs, "
                                 "on all cores)")] = None,
             sort: Annotated[str, typer.Option("--sort", help="grid: the stats key to sort by (descending)")]
             = "sharpe",
             chart: Annotated[Path | None, typer.Option("--chart", help="write the equity and drawdown PNG "
                                                                        "here")] = None,
             analyst: Annotated[str | None, typer.Option(
                 "--analyst", metavar="cached|model",
                 help="a strategy whose analyst is the model: cached (default) answers from the answer cache only, "
                      "sessions without one reported; model also asks the model for those (counted and shown "
                      "first) and caches every answer")] = None,
             max_calls: Annotated[int | None, typer.Option(
                 "--max-calls", help="--analyst model: refuse, asking nothing, when more sessions than this need a "
                                     "model call (default 100, at most 2000)")] = None,
             as_json: JsonOpt = False, user: UserOpt = "demo") -> None:
    """Backtest strategy NAME over --from … --to on an account of its own (the user's books are not touched),
    with the decision code of a live run; prints the report (--json: as JSON). With the model analyst, each
    session's prompts and charts are built as a live run builds them and answered from the answer cache (or the
    model, with --analyst model): the number of model calls is printed before any is made."""
    from tradetrail.services.backtests.queries import chart_png
    from tradetrail.services.backtests.running import BacktestRequest, run_backtest
    from tradetrail.services.errors import InvalidBacktest, NotFound

    first, last = _date(start, "--from"), _date(end, "--to")
    application = _app()
    uid = _user_id(application, user)
    if param:
        if analyst is not None or max_calls is not None:
            _fail("--analyst and --max-calls apply to one backtest, not to a grid of --param values")
        return _grid(application, uid, name, first, last, cash, _parse_params(param), sort, as_json)
    request = BacktestRequest(name, first, last, cash, analyst=analyst, max_calls=max_calls)
    say = err if as_json else console  # --json: stdout holds the JSON alone

    def planned(plan: dict) -> None:
        say.print(_plan_line(plan), highlight=False, soft_wrap=True)
    try:
        backtest_id, report = _with_progress(lambda progress: run_backtest(application, uid, request, progress,
                                                                           planned))
    except (InvalidBacktest, NotFound) as exc:
        _fail(str(exc))
    if chart is not None:
        chart.write_bytes(chart_png(application, uid, backtest_id))
    _emit({"id": backtest_id, "strategy": name, "report": report}, as_json,
          _print_report)
    if chart is not None and not as_json:
        console.print(f"chart: {chart}", highlight=False)


def _grid(application, uid: int, name: str, first: date, last: date, cash: float | None, grid: dict, sort: str,
          as_json: bool) -> None:
    from tradetrail.services.backtests.grid import run_grid
    from tradetrail.services.errors import InvalidBacktest, NotFound

    try:
        rows = run_grid(application, uid, name, first, last, cash, grid, sort=sort)
    except (InvalidBacktest, NotFound) as exc:
        _fail(str(exc))
    if as_json:
        _emit(rows, True, None)
        return
    keys = list(grid)
    print_table(f"{len(rows)} combinations, sorted by {sort}", [*keys, "return %", "max dd %", "Sharpe", "trades",
                                                                 "backtest"],
                [[*(_fmt(r["params"][k]) for k in keys), _fmt(r["stats"].get("total_return_pct")),
                  _fmt(r["stats"].get("max_drawdown_pct")), _fmt(r["stats"].get("sharpe")),
                  _fmt(r["stats"].get("trades")), r["id"][:8]] for r in rows])


def backtest_session(backtest_id: Annotated[str, typer.Argument(help="the backtest's id")],
                     day: Annotated[str, typer.Argument(metavar="DATE", help="a tested session, YYYY-MM-DD")],
                     as_json: JsonOpt = False, user: UserOpt = "demo") -> None:
    """Re-run one session of a backtest through the 13 steps of a live run (on a simulated account of its own,
    from the backtest's stored bars and books), showing each step; asking again shows the same execution."""
    import json
    import sys

    from tradetrail.cli.runs import _execution_end, _print_execution
    from tradetrail.cli.step_lines import StepLines
    from tradetrail.services.backtests.sessions import rerun_session
    from tradetrail.services.errors import InvalidBacktest, NotFound
    from tradetrail.services.runs.executions import get_execution

    session = _date(day, "DATE")
    application = _app()
    uid = _user_id(application, user)
    lines, shown = StepLines(), []

    def show(step: dict) -> None:
        shown.append(step)
        if not as_json:
            console.print(lines.line(step, console.width), highlight=False, soft_wrap=True)
    try:
        execution_id = rerun_session(application, uid, backtest_id, session, on_step=show)
    except (NotFound, InvalidBacktest) as exc:
        _fail(str(exc))
    data = get_execution(application, execution_id)
    if as_json:
        sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
    elif shown:
        console.print(_execution_end(data), highlight=False)
    else:  # an earlier re-run of this session: its recorded steps
        _print_execution(data)
    if data["status"] == "failed":
        raise typer.Exit(1)
