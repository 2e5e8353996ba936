"""What an execution caused and what caused a trade: the orders one execution placed (with their events and
fills), the fills a strategy had on a symbol up to a time (the markers on a run's chart), and, for each
round-trip trade, the executions whose orders opened and closed it. Every query is scoped to a user."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select

from tradetrail.db.models import Execution, Strategy
from tradetrail.db.trading_models import Fill, Order, OrderEvent, Trade
from tradetrail.domain.errors import NotFound
from tradetrail.services.trading.order_lists import order_dict
from tradetrail.trading.portfolio import trades as trade_rows

MAX_MARKERS = 500


def orders_of_execution(app, user_id: int, execution_id: str) -> list[dict[str, Any]]:
    """The orders the execution placed, in the order they were saved, each with ``events`` and ``fills``."""
    with app.Session() as s:
        owner = s.scalar(select(Execution.user_id).where(Execution.id == execution_id))
        if owner is None or owner != user_id:
            raise NotFound(f"no execution {execution_id!r}")
        orders = s.scalars(select(Order).where(Order.execution_id == execution_id, Order.user_id == user_id)
                           .order_by(Order.id)).all()
        ids = [o.id for o in orders]
        events: dict[int, list] = {i: [] for i in ids}
        fills: dict[int, list] = {i: [] for i in ids}
        if ids:
            for e in s.scalars(select(OrderEvent).where(OrderEvent.order_id.in_(ids)).order_by(OrderEvent.id)):
                events[e.order_id].append({"at": e.at.isoformat(), "from": e.from_state, "to": e.to_state,
                                           "detail": e.detail})
            for f in s.scalars(select(Fill).where(Fill.order_id.in_(ids)).order_by(Fill.id)):
                fills[f.order_id].append({"exec_id": f.exec_id, "side": f.side, "quantity": f.quantity,
                                          "price": f.price, "commission": f.commission,
                                          "filled_at": f.filled_at.isoformat()})
        return [{**order_dict(o, None), "events": events[o.id], "fills": fills[o.id]} for o in orders]


def strategy_fills(app, user_id: int, strategy_id: int, symbol: str, until: datetime) -> list[dict[str, Any]]:
    """The strategy's fills on ``symbol`` up to ``until`` (the newest ``MAX_MARKERS``), oldest first."""
    with app.Session() as s:
        rows = s.execute(select(Fill.side, Fill.quantity, Fill.price, Fill.filled_at, Order.execution_id)
                         .join(Order, Order.id == Fill.order_id)
                         .where(Order.user_id == user_id, Order.strategy_id == strategy_id,
                                Order.symbol == symbol, Fill.filled_at <= until)
                         .order_by(Fill.filled_at.desc(), Fill.id.desc()).limit(MAX_MARKERS)).all()
    return [{"side": side, "quantity": qty, "price": price, "filled_at": at.isoformat(), "execution_id": eid}
            for side, qty, price, at, eid in reversed(rows)]


def trades_with_executions(app, user_id: int, strategy_id: int | None = None) -> list[dict[str, Any]]:
    """The portfolio's trades (as the API lists them), each with ``opened_by`` and ``closed_by``: the
    executions whose orders filled at the trade's entry (a BUY: no shorting) and exit (None for an external
    order, or while the trade is open)."""
    rows = trade_rows(app, user_id, strategy_id)
    with app.Session() as s:
        q = (select(Strategy.name, Trade.strategy_id, Trade.symbol, Trade.account, Trade.entry_at, Trade.exit_at)
             .outerjoin(Strategy, Strategy.id == Trade.strategy_id).where(Trade.user_id == user_id))
        if strategy_id is not None:
            q = q.where(Trade.strategy_id == strategy_id)
        trades = s.execute(q).all()
        times = {t.entry_at for t in trades} | {t.exit_at for t in trades if t.exit_at is not None}
        fills = s.execute(select(Fill.filled_at, Order.strategy_id, Order.symbol, Order.account, Order.side,
                                 Order.execution_id)
                          .join(Order, Order.id == Fill.order_id)
                          .where(Order.user_id == user_id, Fill.filled_at.in_(times))
                          .order_by(Fill.id)).all() if times else []
    by_fill: dict[tuple, str | None] = {}
    for at, sid, symbol, account, side, eid in fills:
        by_fill.setdefault((sid, symbol, account, at, side), eid)
    links: dict[tuple, tuple[str | None, str | None]] = {}
    for t in trades:
        opened = by_fill.get((t.strategy_id, t.symbol, t.account, t.entry_at, "BUY"))
        closed = by_fill.get((t.strategy_id, t.symbol, t.account, t.exit_at, "SELL")) if t.exit_at else None
        links[(t.name, t.symbol, t.entry_at.isoformat())] = (opened, closed)
    return [{**row, "opened_by": links.get((row["strategy"], row["symbol"], row["entry_at"]), (None, None))[0],
             "closed_by": links.get((row["strategy"], row["symbol"], row["entry_at"]), (None, None))[1]}
            for row in rows]
