"""Orders, positions, portfolio, reconciliation, halt/resume, and the ``broker`` group."""

from __future__ import annotations

from typing import Annotated

import typer

from tradetrail.cli.common import (
    JsonOpt,
    NotFound,
    StrategyOpt,
    UserOpt,
    _app,
    _emit,
    _fail,
    _user_id,
    console,
)
from tradetrail.cli.tables import DASH, num, print_table, qty, when


def orders(as_json: JsonOpt = False, user: UserOpt = "demo",
           state: Annotated[str | None, typer.Option(help="e.g. SUBMITTED, FILLED, UNKNOWN")] = None,
           strategy: Annotated[str | None, typer.Option(help="strategy name")] = None,
           limit: Annotated[int, typer.Option(min=1, max=1000)] = 100) -> None:
    """Orders, newest first, with their fills (--json)."""
    from tradetrail.services.trading.order_lists import list_fills, list_orders

    application = _app()
    uid = _user_id(application, user)
    rows = list_orders(application, uid, state=state, strategy=strategy, limit=limit)
    data = {"orders": rows, "fills": list_fills(application, uid)}
    _emit(data, as_json, lambda d: _print_orders(d["orders"]))


def _print_orders(rows: list[dict]) -> None:
    def price(o: dict) -> str:
        level = o["limit_price"] if o["limit_price"] is not None else o["stop_price"]
        return o["type"] if level is None else f"{o['type']} {num(level)}"

    print_table("orders, newest first", ["id", "strategy", "symbol", "leg", "order", "price", "state", "filled"], [
        [str(o["id"]), o["strategy"] or DASH, o["symbol"], o["leg"], f"{o['side']} {qty(o['quantity'])}", price(o),
         o["state"], f"{qty(o['filled_quantity'])} @ {num(o['avg_fill_price'])}" if o["avg_fill_price"] else ""]
        for o in rows], right={0})


def _print_positions(rows: list[dict]) -> None:
    print_table("positions", ["strategy", "symbol", "qty", "avg cost", "price", "realized", "unrealized"], [
        [p["strategy"] or DASH, p["symbol"], qty(p["quantity"]), num(p["avg_cost"]), num(p["market_price"]),
         num(p["realized_pnl"]), num(p["unrealized_pnl"])] for p in rows], right={2, 3, 4, 5, 6})


STAT_ROWS = (("trades", "trades", "{:,}"), ("wins", "wins", "{:,}"), ("losses", "losses", "{:,}"),
             ("win_rate", "win rate", "{:,.1f} %"), ("profit_factor", "profit factor", "{:,.2f}"),
             ("average_win", "average win", "{:,.2f}"), ("average_loss", "average loss", "{:,.2f}"),
             ("largest_win", "largest win", "{:,.2f}"), ("largest_loss", "largest loss", "{:,.2f}"),
             ("average_r", "average R", "{:,.2f}"), ("max_drawdown", "max drawdown", "{:,.2f}"),
             ("max_drawdown_pct", "max drawdown %", "{:,.2f} %"))


def _print_statistics(stats: dict) -> None:
    print_table("statistics (closed trades)", ["statistic", "value"], [
        [label, DASH if stats.get(key) is None else fmt.format(stats[key])] for key, label, fmt in STAT_ROWS],
        right={1})


def positions(as_json: JsonOpt = False, user: UserOpt = "demo") -> None:
    """Positions per strategy with average cost and P&L."""
    from tradetrail.trading.portfolio import current, latest_as_of

    application = _app()
    uid = _user_id(application, user)
    data = current(application, uid, latest_as_of(application, uid))
    _emit(data["positions"], as_json, _print_positions)


def portfolio(as_json: JsonOpt = False, user: UserOpt = "demo") -> None:
    """Cash, equity, positions, realized and unrealized P&L, and trading statistics."""
    from tradetrail.services.trading.portfolio_report import portfolio_now

    application = _app()
    data = portfolio_now(application, _user_id(application, user))

    def render(d):
        print_table(f"account {d['account']} ({'paper' if d['paper'] else 'LIVE'}) as of {when(d['as_of'])}",
                    ["cash", "equity", "realized", "unrealized"],
                    [[num(d["cash"]), num(d["equity"]), num(d["realized_pnl"]), num(d["unrealized_pnl"])]],
                    right={0, 1, 2, 3})
        _print_positions(d["positions"])
        _print_statistics(d["statistics"])

    _emit(data, as_json, render)


def reconcile(as_json: JsonOpt = False, user: UserOpt = "demo") -> None:
    """Compare our orders and positions with the broker's and settle every order of unknown fate."""
    from tradetrail.trading.reconcile import reconcile as do_reconcile

    application = _app()
    report = do_reconcile(application, _user_id(application, user))
    _emit(report, as_json, lambda r: console.print_json(data=r))
    if report["position_mismatches"]:
        raise typer.Exit(1)


def _set_state(user: str, change) -> None:
    """Apply ``change(app, user_id)`` (a halt or a resume) and print the new state."""
    application = _app()
    uid = _user_id(application, user)
    try:
        console.print_json(data=change(application, uid))
    except NotFound as exc:
        _fail(str(exc))


def halt(strategy: StrategyOpt = None, user: UserOpt = "demo",
         reducing: Annotated[bool, typer.Option(help="allow exits (REDUCING) instead of nothing (HALTED)")] = False,
         reason: Annotated[str, typer.Option(help="why, for the record")] = "") -> None:
    """Stop trading: HALTED (no orders) or, with --reducing, exits only."""
    from tradetrail.services.trading import halts

    _set_state(user, lambda a, uid: halts.halt(a, uid, strategy=strategy or None, reducing=reducing, reason=reason))


def resume(strategy: StrategyOpt = None, user: UserOpt = "demo",
           reason: Annotated[str, typer.Option(help="why, for the record")] = "") -> None:
    """Back to ACTIVE (also restarts the count of consecutive losses)."""
    from tradetrail.services.trading import halts

    _set_state(user, lambda a, uid: halts.resume(a, uid, strategy=strategy or None, reason=reason))


broker_app = typer.Typer(no_args_is_help=True, help="The broker connection.")


@broker_app.command("status")
def broker_status(user: UserOpt = "demo", as_json: JsonOpt = False) -> None:
    """Is the broker session healthy (authenticated, connected, not competing)? Exit 1 if not."""
    from tradetrail.services.trading.broker_status import broker_status as status

    application = _app()
    data = status(application, user_id=_user_id(application, user))
    _emit(data, as_json, lambda d: console.print_json(data=d))
    if not data.get("healthy", False):
        raise typer.Exit(1)
