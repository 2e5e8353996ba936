"""A round trip (trade) built up from its fills: the average entry as the position grows, the average exit
as it shrinks, and the R achieved when it closes. Pure arithmetic; the books (``trading/books.py``) store it."""

from __future__ import annotations

from dataclasses import dataclass


def added_entry_price(entry_price: float, quantity: float, fill_price: float, total: float) -> float:
    """The average entry after a fill grows the position from ``quantity`` to ``total`` at ``fill_price``."""
    return (entry_price * quantity + fill_price * (total - quantity)) / total


def reduced_exit_price(prior_exit: float | None, closed_before: float, fill_price: float, closed_now: float) -> float:
    """The average exit after a fill closes ``closed_now`` more, ``closed_before`` having closed at ``prior_exit``."""
    return ((prior_exit or 0.0) * closed_before + fill_price * closed_now) / (closed_before + closed_now)


def r_multiple(pnl: float, risk_per_unit: float, quantity: float) -> float:
    """The P&L in units of the risk taken at entry (``risk_per_unit`` × the largest quantity held)."""
    return round(pnl / (risk_per_unit * quantity), 4)


@dataclass(frozen=True)
class RoundTrip:
    """One trade as its fills build it: opened by the first fill, grown or reduced by later ones, closed
    when the position is flat again (``pnl`` is realized P&L, commissions included)."""

    quantity: float  # the largest quantity held
    entry_price: float
    entry_at: object
    pnl: float = 0.0
    risk_per_unit: float | None = None
    exit_price: float | None = None
    exit_at: object = None
    r_multiple: float | None = None
    status: str = "open"


def after_fill(trade: RoundTrip | None, price: float, at: object, before: float, after: float, realized: float,
               risk_per_unit: float | None) -> RoundTrip | None:
    """The trade after one fill moved the position from ``before`` to ``after`` (signed quantities) and
    realized ``realized``; a fill that opens nothing (no trade, flat after) gives None. ``risk_per_unit`` is
    the entry's 1 R per unit, used when the fill opens the trade."""
    if trade is None:
        if after == 0:
            return None
        quantity, entry_price, entry_at, pnl = abs(after), price, at, 0.0
        exit_price, exit_at, r, status = None, None, None, "open"
    else:
        quantity, entry_price, entry_at, pnl = trade.quantity, trade.entry_price, trade.entry_at, trade.pnl
        risk_per_unit, exit_price, exit_at, r, status = (trade.risk_per_unit, trade.exit_price, trade.exit_at,
                                                         trade.r_multiple, trade.status)
        if abs(after) > abs(before):  # added to the position
            entry_price = added_entry_price(entry_price, quantity, price, abs(after))
            quantity = abs(after)
        else:  # reduced or closed
            closed_before = quantity - abs(before)
            closed_now = abs(before) - abs(after)
            exit_price = reduced_exit_price(exit_price, closed_before, price, closed_now)
    pnl = round(pnl + realized, 6)
    if abs(after) < 1e-9:
        r = r_multiple(pnl, risk_per_unit, quantity) if risk_per_unit else None
        return RoundTrip(quantity, entry_price, entry_at, pnl, risk_per_unit, exit_price, at, r, "closed")
    return RoundTrip(quantity, entry_price, entry_at, pnl, risk_per_unit, exit_price, exit_at, r, status)


def with_late_commission(trade: RoundTrip, commission: float) -> RoundTrip:
    """The trade once a commission the broker reported after its fill was booked (booked as 0) is charged:
    its P&L lower by it (higher for a rebate), its R again from that P&L when it is closed."""
    pnl = round(trade.pnl - commission, 6)
    r = trade.r_multiple
    if trade.status == "closed" and trade.risk_per_unit:
        r = r_multiple(pnl, trade.risk_per_unit, trade.quantity)
    return RoundTrip(trade.quantity, trade.entry_price, trade.entry_at, pnl, trade.risk_per_unit, trade.exit_price,
                     trade.exit_at, r, trade.status)
