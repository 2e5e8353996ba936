"""The books a backtest held when one of its sessions began, rebuilt from its artifacts, and written to the
isolated simulated account that session's re-run trades on.

From the ``orders`` artifact (every order with the sessions it was placed and closed on) the fills before the
session are replayed through the rules the backtest's account applies (:func:`domain.positions.apply_fill`,
:func:`domain.trades.after_fill`): the position with its average cost, the closed round trips (consecutive
losses) and the open one; the orders placed before the session and not closed before it were working. Cash
and the day's starting equity come from the ``equity`` artifact (after the previous session); the replayed
position must agree with its quantity, or the re-run is refused rather than started from other books.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime

from tradetrail.db.sim_models import SimAccount, SimClock, SimOrder, SimPosition
from tradetrail.db.trading_models import Order, OrderEvent, PortfolioSnapshot, Position, Trade
from tradetrail.domain.contract import Contract
from tradetrail.domain.positions import Position as Pos
from tradetrail.domain.positions import apply_fill
from tradetrail.domain.trades import RoundTrip, after_fill
from tradetrail.services.errors import InvalidBacktest
from tradetrail.settings import SIMULATED

FILLED, WORKING = "FILLED", "SUBMITTED"


@dataclass
class Books:
    """The backtest's account at the end of the session before ``session`` (dates are ISO strings)."""

    session: str
    previous: str | None  # the previous bar's session (None: the session is the first bar)
    cash: float
    equity: float | None  # at the previous session's close, when it was a tested session
    position: Pos
    closed: list[RoundTrip] = field(default_factory=list)
    open_trade: RoundTrip | None = None
    working: list[dict] = field(default_factory=list)  # orders working at that moment
    parents: list[dict] = field(default_factory=list)  # filled entries whose protective legs are working

    def summary(self) -> dict:
        return {"after_session": self.previous, "cash": self.cash, "equity": self.equity,
                "position": {"quantity": self.position.quantity, "avg_cost": self.position.avg_cost},
                "closed_trades": len(self.closed), "open_trade": self.open_trade is not None,
                "working_orders": [{k: o[k] for k in ("leg", "side", "order_type", "quantity", "limit_price",
                                                       "stop_price", "placed")} for o in self.working]}


def books_before(orders: list[dict], equity: dict, initial_cash: float, session: str,
                 previous: str | None) -> Books:
    """Rebuild the books at the end of ``previous`` from the backtest's artifacts."""
    by_coid = {o["client_order_id"]: o for o in orders}
    fills = sorted((i, o) for i, o in enumerate(orders) if o["state"] == FILLED and o["closed"] < session)
    fills.sort(key=lambda pair: (pair[1]["closed"], pair[0]))  # in time order, a bracket's entry first
    pos, cash, trade, closed = Pos(), initial_cash, None, []
    for _, o in fills:
        before = pos.quantity
        pos, realized = apply_fill(pos, o["side"], o["quantity"], o["fill_price"], o["commission"])
        cash -= (1 if o["side"] == "BUY" else -1) * o["quantity"] * o["fill_price"] + o["commission"]
        risk = o["risk_per_unit"]
        if risk is None and o["parent_client_order_id"]:
            risk = by_coid[o["parent_client_order_id"]]["risk_per_unit"]
        trade = after_fill(trade, o["fill_price"], o["closed"], before, pos.quantity, realized, risk)
        if trade is not None and trade.status == "closed":
            closed.append(trade)
            trade = None
    working = [o for o in orders if o["placed"] < session and (o["closed"] is None or o["closed"] >= session)]
    parents = [by_coid[c] for c in sorted({o["parent_client_order_id"] for o in working
                                           if o["parent_client_order_id"]})
               if by_coid[c]["state"] == FILLED and by_coid[c]["closed"] < session]
    dates = equity["dates"]
    day_equity = None
    if previous is not None and previous in dates:
        i = dates.index(previous)
        if abs(equity["quantity"][i] - pos.quantity) > 1e-9:
            raise InvalidBacktest(f"the backtest's orders give a position of {pos.quantity:g} after {previous}, its "
                                  f"equity curve {equity['quantity'][i]:g}: its books cannot be rebuilt")
        cash, day_equity = equity["cash"][i], equity["equity"][i]
    return Books(session, previous, cash, day_equity, pos, closed, trade, working, parents)


def _coid(account: str, original: str) -> str:
    """A client order id of this account's own (≤ 40 characters): the simulator's are unique across accounts."""
    return f"bs-{hashlib.sha256(f'{account}:{original}'.encode()).hexdigest()[:24]}"


def seed(s, books: Books, *, user_id: int, strategy_id: int, account: str, contract: Contract,
         initial_cash: float, times: dict[str, datetime]) -> None:
    """Write ``books`` to ``account``: the simulator's side (cash, position, working orders, its clock at the
    previous session's bar) and ours (orders, position, round trips, the previous session's snapshot).
    ``times``: each session's bar time. Nothing outside ``account`` is written."""
    symbol, source = contract.symbol, contract.source
    pos = books.position
    s.add(SimAccount(account=account, cash=books.cash, initial_cash=initial_cash))
    if books.previous is not None:
        s.add(SimClock(account=account, symbol=symbol, source=source, clock=times[books.previous]))
    if pos.quantity:
        s.add(SimPosition(account=account, symbol=symbol, source=source, quantity=pos.quantity, avg_cost=pos.avg_cost))
    seeded = books.parents + books.working
    sims = []
    for o in seeded:
        filled = o in books.parents
        parent = _coid(account, o["parent_client_order_id"]) if o["parent_client_order_id"] else None
        sims.append(SimOrder(account=account, client_order_id=_coid(account, o["client_order_id"]),
                             parent_client_order_id=parent, symbol=symbol, source=source, side=o["side"],
                             order_type=o["order_type"], quantity=o["quantity"], limit_price=o["limit_price"],
                             stop_price=o["stop_price"], tif=o["tif"], status=FILLED if filled else WORKING,
                             filled_quantity=o["quantity"] if filled else 0.0,
                             avg_fill_price=o["fill_price"] if filled else None, placed_at=times[o["placed"]],
                             closed_at=times[o["closed"]] if filled else None,
                             reason=o["reason"] if filled else ""))
    s.add_all(sims)
    s.flush()
    for o, sim in zip(seeded, sims, strict=True):
        row = Order(user_id=user_id, strategy_id=strategy_id, execution_id=None, broker=SIMULATED, account=account,
                    client_order_id=sim.client_order_id, parent_client_order_id=sim.parent_client_order_id,
                    leg=o["leg"], symbol=symbol, conid=contract.conid, source=source, side=o["side"],
                    order_type=o["order_type"], quantity=o["quantity"], limit_price=o["limit_price"],
                    stop_price=o["stop_price"], tif=o["tif"], state=sim.status, broker_order_id=str(sim.id),
                    filled_quantity=sim.filled_quantity, avg_fill_price=sim.avg_fill_price,
                    risk_per_unit=o["risk_per_unit"], sized_price=o["sized_price"],
                    reason=f"seeded: the backtest's order {o['client_order_id']} placed on {o['placed']}")
        s.add(row)
        s.flush()
        s.add(OrderEvent(order_id=row.id, from_state=None, to_state=row.state, detail=row.reason))
    if pos.quantity or pos.realized_pnl:
        s.add(Position(user_id=user_id, account=account, strategy_id=strategy_id, symbol=symbol, conid=contract.conid,
                       source=source, quantity=pos.quantity, avg_cost=pos.avg_cost, realized_pnl=pos.realized_pnl))
    for trade in [*books.closed, *([books.open_trade] if books.open_trade else [])]:
        s.add(Trade(user_id=user_id, account=account, strategy_id=strategy_id, symbol=symbol, status=trade.status,
                    quantity=trade.quantity, entry_price=trade.entry_price, exit_price=trade.exit_price,
                    entry_at=times[trade.entry_at], exit_at=times[trade.exit_at] if trade.exit_at else None,
                    pnl=trade.pnl, risk_per_unit=trade.risk_per_unit, r_multiple=trade.r_multiple))
    if books.equity is not None:  # the day's starting equity, as the backtest's risk gate read it
        s.add(PortfolioSnapshot(user_id=user_id, account=account, kind="daily", at=times[books.previous],
                                execution_id=None, cash=books.cash, equity=books.equity,
                                positions_value=round(books.equity - books.cash, 6), realized_pnl=pos.realized_pnl,
                                unrealized_pnl=0.0, positions=[]))
