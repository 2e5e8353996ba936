"""Orders: what we intend to send, and the one state machine every order follows.

NEW → SUBMITTING → SUBMITTED → PARTIALLY_FILLED → FILLED, with CANCELLED, REJECTED and UNKNOWN.
UNKNOWN means the broker call ended ambiguously (timeout, 5xx, connection lost): the order may or may not
exist at the broker. Only reconciliation moves it on — to what the broker reports, or back to NEW when
the broker provably does not have it. Nothing is ever resent from UNKNOWN.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal, DecimalException, localcontext
from enum import StrEnum


class OrderState(StrEnum):
    NEW = "NEW"
    SUBMITTING = "SUBMITTING"
    SUBMITTED = "SUBMITTED"
    PARTIALLY_FILLED = "PARTIALLY_FILLED"
    FILLED = "FILLED"
    CANCELLED = "CANCELLED"
    REJECTED = "REJECTED"
    UNKNOWN = "UNKNOWN"


TERMINAL = frozenset({OrderState.FILLED, OrderState.CANCELLED, OrderState.REJECTED})
OPEN = frozenset({OrderState.NEW, OrderState.SUBMITTING, OrderState.SUBMITTED, OrderState.PARTIALLY_FILLED,
                  OrderState.UNKNOWN})

_S = OrderState
TRANSITIONS: dict[OrderState, frozenset[OrderState]] = {
    _S.NEW: frozenset({_S.SUBMITTING, _S.CANCELLED}),
    # SUBMITTING -> NEW only by reconciliation: a crash mid-send, and the broker provably has no such order.
    _S.SUBMITTING: frozenset({_S.NEW, _S.SUBMITTED, _S.PARTIALLY_FILLED, _S.FILLED, _S.REJECTED, _S.CANCELLED,
                              _S.UNKNOWN}),
    _S.SUBMITTED: frozenset({_S.PARTIALLY_FILLED, _S.FILLED, _S.CANCELLED, _S.REJECTED}),
    _S.PARTIALLY_FILLED: frozenset({_S.PARTIALLY_FILLED, _S.FILLED, _S.CANCELLED}),
    _S.UNKNOWN: frozenset({_S.NEW, _S.SUBMITTED, _S.PARTIALLY_FILLED, _S.FILLED, _S.CANCELLED, _S.REJECTED}),
    _S.FILLED: frozenset(),
    _S.CANCELLED: frozenset(),
    _S.REJECTED: frozenset(),
}


class InvalidTransition(ValueError):
    """An order asked to move where the state machine does not allow."""


_STATES = {s.value: s for s in OrderState}  # a state or its value -> the state (a StrEnum hashes as its value)


def _order_state(value: OrderState | str) -> OrderState:
    """``OrderState(value)`` without the enum lookup for a state or its value (anything else goes through it)."""
    return (_STATES.get(value) if isinstance(value, str) else None) or OrderState(value)


def check_transition(current: OrderState | str, new: OrderState | str) -> OrderState:
    """Return ``new`` if ``current → new`` is allowed (staying put is always allowed), else raise."""
    cur, nxt = _order_state(current), _order_state(new)
    if cur == nxt or nxt in TRANSITIONS[cur]:
        return nxt
    raise InvalidTransition(f"order cannot go from {cur} to {nxt}")


class Side(StrEnum):
    BUY = "BUY"
    SELL = "SELL"


class OrderType(StrEnum):
    MKT = "MKT"
    LMT = "LMT"
    STP = "STP"


class Leg(StrEnum):
    ENTRY = "entry"
    STOP = "stop"
    TARGET = "target"
    EXIT = "exit"


_LEG_VALUES = {leg.value: leg.value for leg in Leg}  # a leg or its value -> its value
_TICK_ROUNDING = {"down": ROUND_FLOOR, "up": ROUND_CEILING, "nearest": ROUND_HALF_UP}


def to_tick(price: float, tick: float, direction: str) -> float:
    """``price`` on the ``tick`` grid: ``down``, ``up`` or ``nearest`` (decimal arithmetic: 1184.3008 → 1184.30).

    A price that is not a finite positive number, or whose grid value is not a finite float, raises
    ValueError (never a decimal signal): the caller refuses the level with that reason."""
    mode = _TICK_ROUNDING[direction]
    for name, value in (("price", price), ("tick", tick)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
            raise ValueError(f"{name} must be a finite positive number, got {value!r}")
    p, t = Decimal(str(price)), Decimal(str(tick))
    try:
        with localcontext() as dc:  # enough digits for any float ÷ any tick: 1e308 / 0.01 has 311
            dc.prec = max(28, p.adjusted() - t.adjusted() + 10)
            on_grid = (p / t).quantize(Decimal(1), rounding=mode) * t
    except DecimalException as exc:
        raise ValueError(f"price {price!r} cannot be put on the tick {tick!r}: {type(exc).__name__}") from None
    result = float(on_grid)
    if not math.isfinite(result) or result <= 0:
        raise ValueError(f"price {price!r} on the tick {tick!r} is {result!r}, not a usable price")
    return result


def client_order_id(execution_id: str, leg: Leg | str) -> str:
    """Deterministic client order id (IBKR ``cOID``, ≤ 40 chars): the same execution and leg always give the
    same id, so a resend can never become a second order the broker would accept."""
    digest = hashlib.sha256(f"{execution_id}:{leg}".encode()).hexdigest()[:20]
    value = (_LEG_VALUES.get(leg) if isinstance(leg, str) else None) or Leg(leg).value
    return f"tt-{digest}-{value}"


@dataclass(frozen=True)
class OrderSpec:
    """One order as the broker will see it (a bracket is a parent plus children with ``parent_coid``)."""

    client_order_id: str
    leg: Leg
    side: Side
    order_type: OrderType
    quantity: float
    limit_price: float | None = None
    stop_price: float | None = None
    tif: str = "DAY"
    parent_client_order_id: str | None = None

    def __post_init__(self) -> None:
        if self.quantity <= 0:
            raise ValueError(f"order quantity must be positive, got {self.quantity}")
        if self.order_type == OrderType.LMT and (self.limit_price is None or self.limit_price <= 0):
            raise ValueError("a limit order needs a positive limit price")
        if self.order_type == OrderType.STP and (self.stop_price is None or self.stop_price <= 0):
            raise ValueError("a stop order needs a positive stop price")
        if len(self.client_order_id) > 40:
            raise ValueError("client order id longer than 40 characters")


def bracket(execution_id: str, side: Side, quantity: float, *, entry_type: OrderType, entry_price: float,
            stop_price: float, target_price: float, tif: str = "DAY", child_tif: str = "GTC") -> list[OrderSpec]:
    """Entry plus protective stop and take-profit children (one-cancels-the-other at the broker)."""
    exit_side = Side.SELL if side == Side.BUY else Side.BUY
    parent = client_order_id(execution_id, Leg.ENTRY)
    return [
        OrderSpec(parent, Leg.ENTRY, side, entry_type, quantity,
                  limit_price=entry_price if entry_type == OrderType.LMT else None, tif=tif),
        OrderSpec(client_order_id(execution_id, Leg.STOP), Leg.STOP, exit_side, OrderType.STP, quantity,
                  stop_price=stop_price, tif=child_tif, parent_client_order_id=parent),
        OrderSpec(client_order_id(execution_id, Leg.TARGET), Leg.TARGET, exit_side, OrderType.LMT, quantity,
                  limit_price=target_price, tif=child_tif, parent_client_order_id=parent),
    ]
