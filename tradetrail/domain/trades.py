"""A round trip (trade) built up from its fills: the average entry as the position grows, the average exit
as it shrinks, and the R achieved when it closes. Pure arithmetic; the books (``trading/books.py``) store it."""

from __future__ import annotations


def added_entry_price(entry_price: float, quantity: float, fill_price: float, total: float) -> float:
    """The average entry after a fill grows the position from ``quantity`` to ``total`` at ``fill_price``."""
    return (entry_price * quantity + fill_price * (total - quantity)) / total


def reduced_exit_price(prior_exit: float | None, closed_before: float, fill_price: float, closed_now: float) -> float:
    """The average exit after a fill closes ``closed_now`` more, ``closed_before`` having closed at ``prior_exit``."""
    return ((prior_exit or 0.0) * closed_before + fill_price * closed_now) / (closed_before + closed_now)


def r_multiple(pnl: float, risk_per_unit: float, quantity: float) -> float:
    """The P&L in units of the risk taken at entry (``risk_per_unit`` × the largest quantity held)."""
    return round(pnl / (risk_per_unit * quantity), 4)
