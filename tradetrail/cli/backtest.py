"""``backtest``: a strategy over a range of history, with a progress bar and the report (or a grid of
parameter combinations run on every core)."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated

import typer

from tradetrail.cli.common import JsonOpt, UserOpt, _app, _emit, _fail, _user_id, console
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
    console.print(f"the decision behind each session: tradetrail lineage {data['id'][:8]}", highlight=False)


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
             as_json: JsonOpt = False, user: UserOpt = "demo") -> None:
    """Backtest strategy NAME over --from … --to on an account of its own (the user's books are not touched),
    with the decision code of a live run; prints the report (--json: as JSON)."""
    from tradetrail.services.backtests.queries import chart_png
    from tradetrail.services.backtests.running import BacktestRequest, run_backtest
    from tradetrail.services.errors import InvalidBacktest, NotFound

    first, last = _date(start, "--from"), _date(end, "--to")
    application = _app()
    uid = _user_id(application, user)
    if param:
        return _grid(application, uid, name, first, last, cash, _parse_params(param), sort, as_json)
    request = BacktestRequest(name, first, last, cash)
    try:
        backtest_id, report = _with_progress(lambda progress: run_backtest(application, uid, request, progress))
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
