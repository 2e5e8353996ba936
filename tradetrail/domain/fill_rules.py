"""The simulator's fill rules for one daily bar, shared by the simulated broker and the backtest.

Per bar, over the orders working before it (oldest first):
- MKT fills at the open; STP triggers when the bar trades through the stop and fills at the worse of the
  open and the stop; both pay ``slippage`` (a fraction) against us. LMT fills at the limit or better.
- A DAY order without a parent that did not fill on this bar (the first after it was placed) expires, and
  its children with it.
- Bracket children wake when their parent is filled (before or on this bar) and may fill on the same bar;
  if the stop and the target are both touched, the stop fills first. One child filling cancels its
  siblings (one-cancels-the-other).

:func:`bar_events` only decides; the caller applies the events in the order given (booking fills, cash and
positions its own way: database rows in the broker, arrays in the backtest).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

EXPIRED = "expired unfilled at the end of its day"
PARENT_EXPIRED = f"parent {EXPIRED}"
OCO = "one-cancels-other: sibling filled"


class WorkingOrder(Protocol):
    client_order_id: str
    parent_client_order_id: str | None
    side: str
    order_type: str
    limit_price: float | None
    stop_price: float | None
    tif: str


@dataclass(frozen=True)
class BarEvent:
    """``kind`` "fill" (at ``price``) or "cancel" (with ``reason``) for ``order``."""

    kind: str
    order: WorkingOrder
    price: float | None = None
    reason: str = ""


def trigger_price(side: str, order_type: str, limit_price: float | None, stop_price: float | None,
                  bar_open: float, high: float, low: float, slippage: float) -> float | None:
    """The price an order fills at on a bar, or None when the bar does not reach it (unrounded)."""
    buy = side == "BUY"
    slip = (1 + slippage) if buy else (1 - slippage)
    if order_type == "MKT":
        return bar_open * slip
    if order_type == "LMT":
        if buy and low <= limit_price:
            return min(bar_open, limit_price)
        if not buy and high >= limit_price:
            return max(bar_open, limit_price)
        return None
    if order_type == "STP":
        if buy and high >= stop_price:
            return max(bar_open, stop_price) * slip
        if not buy and low <= stop_price:
            return min(bar_open, stop_price) * slip
    return None


def fill_price(price: float) -> float:
    """A fill's booked price (the simulator books four decimals; Python's correctly rounded ``round``, never
    numpy's, which scales by 10**4 first and can land on the other side of a half)."""
    return round(float(price), 4)


def bar_events(working: Sequence[WorkingOrder], parent_filled: Callable[[str], bool], bar_open: float,
               high: float, low: float, slippage: float) -> list[BarEvent]:
    """What happens to ``working`` (orders working before the bar, oldest first) on one bar.

    ``parent_filled(coid)`` says whether a parent was filled before this bar; parents filled on this bar are
    known here."""
    events: list[BarEvent] = []
    filled_now: set[str] = set()
    expired_now: set[str] = set()
    for order in working:
        if order.parent_client_order_id is not None:
            continue
        price = trigger_price(order.side, order.order_type, order.limit_price, order.stop_price, bar_open, high,
                              low, slippage)
        if price is not None:
            events.append(BarEvent("fill", order, fill_price(price)))
            filled_now.add(order.client_order_id)
        elif order.tif == "DAY":
            events.append(BarEvent("cancel", order, reason=EXPIRED))
            expired_now.add(order.client_order_id)
    children = [o for o in working if o.parent_client_order_id is not None]
    if not children:  # nothing below applies
        return events
    for order in children:
        if order.parent_client_order_id in expired_now:
            events.append(BarEvent("cancel", order, reason=PARENT_EXPIRED))
    live = [o for o in children if o.parent_client_order_id in filled_now or parent_filled(o.parent_client_order_id)]
    done: set[str] = set()
    for order in sorted(live, key=lambda o: (o.parent_client_order_id, o.order_type != "STP")):
        if order.client_order_id in done:
            continue
        price = trigger_price(order.side, order.order_type, order.limit_price, order.stop_price, bar_open, high,
                              low, slippage)
        if price is None:
            continue
        events.append(BarEvent("fill", order, fill_price(price)))
        done.add(order.client_order_id)
        for sibling in live:
            if sibling is not order and sibling.parent_client_order_id == order.parent_client_order_id \
                    and sibling.client_order_id not in done:
                events.append(BarEvent("cancel", sibling, reason=OCO))
                done.add(sibling.client_order_id)
    return events
