"""Positions and trades from fills: average cost, realized P&L on reductions, unrealized at market.

Commissions are part of realized P&L when paid, so at any price p:
``initial cash + realized + unrealized(p) == cash + quantity × p`` — the identity the property tests check.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Position:
    quantity: float = 0.0  # signed: > 0 long, < 0 short
    avg_cost: float = 0.0
    realized_pnl: float = 0.0

    def unrealized(self, price: float) -> float:
        return self.quantity * (price - self.avg_cost) if self.quantity else 0.0

    def market_value(self, price: float) -> float:
        return self.quantity * price


def apply_fill(pos: Position, side: str, quantity: float, price: float, commission: float) -> tuple[Position, float]:
    """The position after one fill, and the realized P&L the fill produced (commission included; a negative
    commission is a rebate the broker paid, as IBKR reports one)."""
    if not (quantity > 0 and price > 0 and math.isfinite(quantity) and math.isfinite(price)
            and math.isfinite(commission)):
        raise ValueError(f"invalid fill: quantity {quantity}, price {price}, commission {commission}")
    signed = quantity if side == "BUY" else -quantity
    realized = -commission
    q0 = pos.quantity
    if q0 == 0 or (q0 > 0) == (signed > 0):  # opening or adding
        new_q = q0 + signed
        avg = (abs(q0) * pos.avg_cost + abs(signed) * price) / abs(new_q)
        return Position(new_q, avg, pos.realized_pnl + realized), realized
    closing = min(abs(q0), abs(signed))
    realized += closing * (price - pos.avg_cost) * (1 if q0 > 0 else -1)
    new_q = q0 + signed
    if abs(new_q) < 1e-9:  # fractional fills must still close the position exactly
        new_q, avg = 0.0, 0.0
    elif (new_q > 0) == (q0 > 0):
        avg = pos.avg_cost  # reduced: the remaining units keep their cost
    else:
        avg = price  # flipped: the new side opened at this price
    return Position(new_q, avg, pos.realized_pnl + realized), realized


def exposure(positions) -> float:
    """Gross value of ``positions`` (anything with ``quantity``, ``market_price`` and ``avg_cost``), valued at
    the market price where known, else at cost."""
    return sum(abs(p.quantity) * (p.market_price or p.avg_cost) for p in positions)
