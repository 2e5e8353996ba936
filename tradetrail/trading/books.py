"""Our books: applying broker fills to orders, positions and trades, exactly once per execution id.

An entry filled outside the price band it was sized for gets a PRICE DEVIATION event on the order with the
numbers (see :func:`fill_deviation`), whichever path books the fill."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, bindparam, insert, or_, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from tradetrail.broker.port import BrokerFill
from tradetrail.db.notify_models import NotifyEvent
from tradetrail.db.trading_models import Fill, Order, OrderEvent, Position, Trade
from tradetrail.domain.orders import InvalidTransition, OrderState, check_transition
from tradetrail.domain.positions import Position as Pos
from tradetrail.domain.positions import apply_fill
from tradetrail.domain.trades import RoundTrip, after_fill, with_late_commission
from tradetrail.notify import outbox


def move(s: Session, order: Order, new: OrderState | str, detail: str = "") -> None:
    """Move an order through its state machine, leaving an event behind (InvalidTransition if not allowed)."""
    new = check_transition(order.state, new)
    if new == order.state and not detail:
        return
    s.add(OrderEvent(order_id=order.id, from_state=order.state, to_state=new.value, detail=detail))
    if new.value != order.state:
        outbox.order_event(s, order, new.value, detail)  # same transaction as the move
    order.state = new.value


_O, _OE, _NE = Order.__table__, OrderEvent.__table__, NotifyEvent.__table__
_INSERT_EVENTS = insert(_OE)
_INSERT_NOTICES = insert(_NE)
_CHANGEABLE = ("state", "broker_order_id", "reason")  # what a send writes back on an order row


class StaleOrder(Exception):
    """An order changed between the caller's read and its move (a sync committed meanwhile): read it again."""


@lru_cache(maxsize=8)
def _set(columns: tuple[str, ...]):
    """The UPDATE of exactly ``columns`` of one order, if it is still in the state it was read in (built once
    per set). A column a move does not change is not written, so what a sync wrote meanwhile stays; a state
    changed meanwhile is not overwritten (SQLite ignores FOR UPDATE: the read before is not locked)."""
    return (update(_O).where(_O.c.id == bindparam("oid"), _O.c.state == bindparam("read_state"))
            .values({name: bindparam(f"new_{name}") for name in columns}))


def move_rows(conn: Connection, moves: Sequence[tuple[Any, OrderState | str, str, dict]]) -> dict[int, str]:
    """:func:`move` for rows of the orders table on a Core connection, inside the caller's transaction: each
    ``(order row, new state, detail, other changes)`` is checked against the state machine (InvalidTransition
    before anything is written); each order is updated only if its state is still the one read
    (:class:`StaleOrder` otherwise, before any event is written: the caller rolls back and reads again), then
    the events and the outbox entries go as one statement each (the ORM's unit of work wrote them one row at
    a time). Returns every order's state after the moves.

    ``other changes`` may set ``broker_order_id`` and ``reason``; ``(row, row.state, detail, {})`` only leaves
    an event behind (a late answer)."""
    events, notices, updates, states = [], [], [], {}
    for order, new, detail, changes in moves:
        new = check_transition(order.state, new)
        states[order.id] = new.value
        if unknown := set(changes) - set(_CHANGEABLE):
            raise ValueError(f"a move cannot change {sorted(unknown)}")
        if new.value == order.state and not detail and not changes:
            continue
        events.append(dict(order_id=order.id, from_state=order.state, to_state=new.value, detail=detail))
        if new.value != order.state:
            notice = outbox.order_notice(order, new.value, detail)  # same transaction as the move
            if notice is not None:
                notices.append(outbox.row(order.user_id, *notice))
        values = dict(changes)
        if new.value != order.state:
            values["state"] = new.value
        if values:
            updates.append((order, values))
    for order, values in updates:  # first: on SQLite the first write takes the database's write lock
        done = conn.execute(_set(tuple(sorted(values))), {"oid": order.id, "read_state": order.state,
                                                          **{f"new_{k}": v for k, v in values.items()}})
        if done.rowcount != 1:
            raise StaleOrder(f"order {order.id} is no longer {order.state}")
    if events:
        conn.execute(_INSERT_EVENTS, events)
    if notices:
        conn.execute(_INSERT_NOTICES, notices)
    return states


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


def fill_deviation(order: Order, price: float) -> dict | None:
    """How a fill of an entry lies outside what the risk gate sized it for; None when inside (or not an entry).

    A BUY sized at ``sized_price`` (MKT: the last price plus the allowance; LMT: the limit) may cross the caps
    checked at that price when it fills above it; a MKT fill more than the allowance below the expected price is
    a gap the other way (the stop may already be behind it). Both are recorded, with the numbers. A LMT fill
    at or below its limit is the order doing what it says, never a deviation."""
    if order.sized_price is None or order.leg != "entry" or order.side != "BUY" or not price > 0:
        return None
    allowance = order.price_allowance_pct or 0.0
    sized = order.sized_price
    expected = sized / (1 + allowance / 100) if order.order_type == "MKT" else sized
    floor = expected * (1 - allowance / 100) if order.order_type == "MKT" else 0.0
    if price > sized * (1 + 1e-9):
        direction = "above"
    elif price < floor * (1 - 1e-9):
        direction = "below"
    else:
        return None
    pct = (price / expected - 1) * 100
    detail = (f"PRICE DEVIATION: filled at {price:g}, {pct:+.2f}% from the price {expected:.6g} the {order.order_type} "
              f"entry was sized from (allowance {allowance:g}%, sized at {sized:.6g})")
    if direction == "above":
        detail += ": the caps checked at the sizing price may be crossed by the gap"
    return {"client_order_id": order.client_order_id, "order_type": order.order_type, "fill_price": price,
            "expected_price": round(expected, 6), "sized_price": sized, "allowance_pct": allowance,
            "deviation_pct": round(pct, 4), "direction": direction, "detail": detail}


def record_fill(s: Session, order: Order, fill: BrokerFill) -> bool:
    """Apply one broker fill to the order, its position and its trade. False if already recorded."""
    if s.scalar(select(Fill.id).where(Fill.exec_id == fill.exec_id)) is not None:
        return False
    booked = Fill(order_id=order.id, exec_id=fill.exec_id, account=order.account, symbol=order.symbol,
                  side=fill.side, quantity=fill.quantity, price=fill.price, commission=fill.commission,
                  filled_at=fill.time)
    s.add(booked)
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
        outbox.order_event(s, order, target.value, "corrected: the broker filled it")
    deviation = fill_deviation(order, fill.price)
    if deviation is not None:
        s.add(OrderEvent(order_id=order.id, from_state=order.state, to_state=order.state,
                         detail=f"{deviation['detail']} (fill {fill.exec_id})"))
    row = position_row(s, order)
    before = row.quantity
    new, realized = apply_fill(Pos(row.quantity, row.avg_cost, row.realized_pnl), fill.side, fill.quantity,
                               fill.price, fill.commission)
    row.quantity, row.avg_cost, row.realized_pnl = new.quantity, new.avg_cost, new.realized_pnl
    row.last_price = fill.price
    trade = _update_trade(s, order, fill, before, new.quantity, realized)
    if trade is not None:  # the trade it was booked to (a commission reported later is charged there)
        if trade.id is None:
            s.flush()  # a new trade: its id
        booked.trade_id = trade.id
    return True


def _round_trip(row: Trade) -> RoundTrip:
    """The domain's view of a stored trade."""
    return RoundTrip(quantity=row.quantity, entry_price=row.entry_price, entry_at=row.entry_at, pnl=row.pnl,
                     risk_per_unit=row.risk_per_unit, exit_price=row.exit_price, exit_at=row.exit_at,
                     r_multiple=row.r_multiple, status=row.status)


def _update_trade(s: Session, order: Order, fill: BrokerFill, before: float, after: float,
                  realized: float) -> Trade | None:
    row = s.scalar(select(Trade).where(Trade.account == order.account, Trade.symbol == order.symbol,
                                       Trade.status == "open",
                                       Trade.strategy_id.is_(None) if order.strategy_id is None
                                       else Trade.strategy_id == order.strategy_id))
    current = None if row is None else _round_trip(row)
    risk = _entry_risk(s, order) if row is None and after != 0 else None
    trade = after_fill(current, fill.price, fill.time, before, after, realized, risk)  # domain/trades.py
    if trade is None:
        return None
    if row is None:
        row = Trade(user_id=order.user_id, account=order.account, strategy_id=order.strategy_id, symbol=order.symbol)
        s.add(row)
    row.quantity, row.entry_price, row.entry_at, row.pnl = trade.quantity, trade.entry_price, trade.entry_at, trade.pnl
    row.risk_per_unit, row.exit_price, row.exit_at = trade.risk_per_unit, trade.exit_price, trade.exit_at
    was_open = row.status != "closed"
    row.r_multiple, row.status = trade.r_multiple, trade.status
    if trade.status == "closed" and was_open:
        outbox.position_closed(s, order.user_id, order.symbol, order.account, trade.pnl, trade.r_multiple)
    return row


def charge_late_commission(s: Session, order: Order, fill: Fill, commission: float) -> str | None:
    """A commission the broker reported after ``fill`` was booked without one (booked as 0: TWS's commission
    report came after the wait, the Web API's trade listed none yet): charge it once to the fill, the
    position's realized P&L and the trade the fill belongs to, leave an event on the order, and say so.

    Only a fill booked at 0 is charged, and only once (it is not 0 afterwards); a broker that later reports
    another non-zero amount for a charged fill is not followed (a correction of a correction is for a person
    to look at). Returns the note, or None when there is nothing to charge."""
    if fill.commission != 0 or not commission or not math.isfinite(commission):
        return None
    if s.execute(_CHARGE, {"fill": fill.id, "new_commission": commission}).rowcount != 1:
        return None  # charged meanwhile (one sync per account runs at a time; this says so again)
    set_committed_value(fill, "commission", commission)
    pos = position_row(s, order)
    pos.realized_pnl = pos.realized_pnl - commission  # as apply_fill charges it: realized P&L, not the cost
    trade = s.get(Trade, fill.trade_id) if fill.trade_id is not None else s.scalar(_trade_of_fill(order, fill))
    if trade is not None:
        charged = with_late_commission(_round_trip(trade), commission)
        trade.pnl, trade.r_multiple = charged.pnl, charged.r_multiple
    note = (f"fill {fill.exec_id}: commission {commission:g} reported after the fill was booked; charged now "
            f"(realized P&L of {order.symbol} {-commission:+g})")
    s.add(OrderEvent(order_id=order.id, from_state=order.state, to_state=order.state, detail=note))
    return note


_CHARGE = (update(Fill.__table__)
           .where(Fill.__table__.c.id == bindparam("fill"), Fill.__table__.c.commission == 0)
           .values(commission=bindparam("new_commission")))


def _trade_of_fill(order: Order, fill: Fill):
    """For a fill booked before the books kept its trade (migration 0013): the trade open at its time; an
    entry's fill the latest opened by then, an exit's the earliest still open then (at one timestamp a trade
    may close and the next open, which only the kept trade id tells apart)."""
    same = [Trade.account == order.account, Trade.symbol == order.symbol,
            Trade.strategy_id.is_(None) if order.strategy_id is None else Trade.strategy_id == order.strategy_id,
            Trade.entry_at <= fill.filled_at, or_(Trade.exit_at.is_(None), Trade.exit_at >= fill.filled_at)]
    order_by = (Trade.entry_at.desc(), Trade.id.desc()) if order.leg == "entry" else (Trade.entry_at, Trade.id)
    return select(Trade).where(*same).order_by(*order_by).limit(1)


_F = Fill.__table__
_LAST_FILL = select(_F.c.filled_at).where(_F.c.account == bindparam("account")).order_by(_F.c.filled_at.desc()).limit(1)


def last_fill_time(s: Session, account: str) -> datetime | None:
    return s.scalar(_LAST_FILL, {"account": account})
