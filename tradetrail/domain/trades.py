"""A round trip (trade) built up from its fills: the average entry as the position grows, the average exit
as it shrinks, and the R achieved when it closes. Pure arithmetic; the books (``trading/books.py``) store it."""

from __future__ import annotations

from dataclasses import dataclass, replace


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
        trade = RoundTrip(quantity=abs(after), entry_price=price, entry_at=at, risk_per_unit=risk_per_unit)
    elif abs(after) > abs(before):  # added to the position
        total = abs(after)
        trade = replace(trade, entry_price=added_entry_price(trade.entry_price, trade.quantity, price, total),
                        quantity=total)
    else:  # reduced or closed
        closed_before = trade.quantity - abs(before)
        closed_now = abs(before) - abs(after)
        trade = replace(trade, exit_price=reduced_exit_price(trade.exit_price, closed_before, price, closed_now))
    trade = replace(trade, pnl=round(trade.pnl + realized, 6))
    if abs(after) < 1e-9:
        r = r_multiple(trade.pnl, trade.risk_per_unit, trade.quantity) if trade.risk_per_unit else None
        trade = replace(trade, status="closed", exit_at=at, r_multiple=r)
    return trade
