"""Our books: applying broker fills to orders, positions and trades, exactly once per execution id."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from tradetrail.broker.port import BrokerFill
from tradetrail.db.trading_models import Fill, Order, OrderEvent, Position, Trade
from tradetrail.domain.orders import InvalidTransition, OrderState, check_transition
from tradetrail.domain.positions import Position as Pos
from tradetrail.domain.positions import apply_fill


def move(s: Session, order: Order, new: OrderState | str, detail: str = "") -> None:
    """Move an order through its state machine, leaving an event behind (InvalidTransition if not allowed)."""
    new = check_transition(order.state, new)
    if new == order.state and not detail:
        return
    s.add(OrderEvent(order_id=order.id, from_state=order.state, to_state=new.value, detail=detail))
    order.state = new.value


def position_row(s: Session, order: Order) -> Position:
    row = s.scalar(select(Position).where(Position.account == order.account,
                                          Position.strategy_id.is_(None) if order.strategy_id is None
                                          else Position.strategy_id == order.strategy_id,
                                          Position.symbol == order.symbol))
    if row is None:
        row = Position(user_id=order.user_id, account=order.account, strategy_id=order.strategy_id,
                       symbol=order.symbol, conid=order.conid, source=order.source, quantity=0.0, avg_cost=0.0,
                       realized_pnl=0.0)
        s.add(row)
        s.flush()
    return row


def _entry_risk(s: Session, order: Order) -> float | None:
    if order.risk_per_unit is not None:
        return order.risk_per_unit
    if order.parent_client_order_id:
        return s.scalar(select(Order.risk_per_unit).where(Order.client_order_id == order.parent_client_order_id))
    return None


def record_fill(s: Session, order: Order, fill: BrokerFill) -> bool:
    """Apply one broker fill to the order, its position and its trade. False if already recorded."""
    if s.scalar(select(Fill.id).where(Fill.exec_id == fill.exec_id)) is not None:
        return False
    s.add(Fill(order_id=order.id, exec_id=fill.exec_id, account=order.account, symbol=order.symbol, side=fill.side,
               quantity=fill.quantity, price=fill.price, commission=fill.commission, filled_at=fill.time))
    filled = order.filled_quantity + fill.quantity
    avg = ((order.avg_fill_price or 0.0) * order.filled_quantity + fill.price * fill.quantity) / filled
    order.filled_quantity, order.avg_fill_price = filled, round(avg, 6)
    target = OrderState.FILLED if filled >= order.quantity - 1e-9 else OrderState.PARTIALLY_FILLED
    detail = f"fill {fill.exec_id}: {fill.side} {fill.quantity:g} @ {fill.price:g}"
    try:
        move(s, order, target, detail)
    except InvalidTransition:  # the broker filled what we held as final: its books win, and we say so
        s.add(OrderEvent(order_id=order.id, from_state=order.state, to_state=target.value,
                         detail=f"CORRECTION: the broker filled an order we held as {order.state}; {detail}"))
        order.reason = f"corrected from {order.state}: the broker filled it"
        order.state = target.value
    row = position_row(s, order)
    before = row.quantity
    new, realized = apply_fill(Pos(row.quantity, row.avg_cost, row.realized_pnl), fill.side, fill.quantity,
                               fill.price, fill.commission)
    row.quantity, row.avg_cost, row.realized_pnl = new.quantity, new.avg_cost, new.realized_pnl
    row.last_price = fill.price
    _update_trade(s, order, fill, before, new.quantity, realized)
    return True


def _update_trade(s: Session, order: Order, fill: BrokerFill, before: float, after: float, realized: float) -> None:
    trade = s.scalar(select(Trade).where(Trade.account == order.account, Trade.symbol == order.symbol,
                                         Trade.status == "open",
                                         Trade.strategy_id.is_(None) if order.strategy_id is None
                                         else Trade.strategy_id == order.strategy_id))
    if trade is None:
        if after == 0:
            return
        trade = Trade(user_id=order.user_id, account=order.account, strategy_id=order.strategy_id,
                      symbol=order.symbol, status="open", quantity=abs(after), entry_price=fill.price,
                      entry_at=fill.time, pnl=0.0, risk_per_unit=_entry_risk(s, order))
        s.add(trade)
    elif abs(after) > abs(before):  # added to the position
        total = abs(after)
        trade.entry_price = (trade.entry_price * trade.quantity + fill.price * (total - trade.quantity)) / total
        trade.quantity = total
    else:  # reduced or closed
        closed_before = trade.quantity - abs(before)
        closed_now = abs(before) - abs(after)
        prior = trade.exit_price or 0.0
        trade.exit_price = (prior * closed_before + fill.price * closed_now) / (closed_before + closed_now)
    trade.pnl = round(trade.pnl + realized, 6)
    if abs(after) < 1e-9:
        trade.status, trade.exit_at = "closed", fill.time
        if trade.risk_per_unit:
            trade.r_multiple = round(trade.pnl / (trade.risk_per_unit * trade.quantity), 4)


def last_fill_time(s: Session, account: str) -> datetime | None:
    return s.scalar(select(Fill.filled_at).where(Fill.account == account).order_by(Fill.filled_at.desc()).limit(1))
