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
    _print_rows,
    _user_id,
    console,
)


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
    for row in rows:
        row["price"] = row["limit_price"] or row["stop_price"]
        row["fill"] = f"{row['filled_quantity']:g} @ {row['avg_fill_price']:g}" if row["avg_fill_price"] else ""
    _emit(data, as_json, lambda d: _print_rows("orders", d["orders"], [
        "id", "strategy", "symbol", "leg", "side", "type", "quantity", "price", "state", "fill"]))


def positions(as_json: JsonOpt = False, user: UserOpt = "demo") -> None:
    """Positions per strategy with average cost and P&L."""
    from tradetrail.trading.portfolio import current, latest_as_of

    application = _app()
    uid = _user_id(application, user)
    data = current(application, uid, latest_as_of(application, uid))
    _emit(data["positions"], as_json, lambda rows: _print_rows("positions", rows, [
        "strategy", "symbol", "quantity", "avg_cost", "market_price", "realized_pnl", "unrealized_pnl"]))


def portfolio(as_json: JsonOpt = False, user: UserOpt = "demo") -> None:
    """Cash, equity, positions, realized and unrealized P&L, and trading statistics."""
    from tradetrail.services.trading.portfolio_report import portfolio_now

    application = _app()
    data = portfolio_now(application, _user_id(application, user))

    def render(d):
        console.print(f"account {d['account']} ({'paper' if d['paper'] else 'LIVE'}): cash {d['cash']:,.2f}, "
                      f"equity {d['equity']:,.2f}, realized {d['realized_pnl']:,.2f}, "
                      f"unrealized {d['unrealized_pnl']:,.2f}")
        _print_rows("positions", d["positions"], ["strategy", "symbol", "quantity", "avg_cost", "market_price",
                                                  "realized_pnl", "unrealized_pnl"])
        console.print(d["statistics"])

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
