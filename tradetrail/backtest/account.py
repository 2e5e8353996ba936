"""A backtest's own simulated account, in memory: the simulator's books without the database.

Every rule is the one the simulated broker and our books apply: fills from :mod:`tradetrail.domain.fill_rules`,
commissions from :mod:`tradetrail.domain.commissions`, positions from :func:`domain.positions.apply_fill`,
round trips from :func:`domain.trades.after_fill`, order states through :func:`domain.orders.check_transition`,
and the account values rounded as the broker reports them. Nothing here touches a user's paper or live books.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tradetrail.domain.commissions import commission, per_unit_and_minimum
from tradetrail.domain.fill_rules import bar_events
from tradetrail.domain.orders import OPEN, OrderSpec, OrderState, check_transition
from tradetrail.domain.positions import Position, apply_fill
from tradetrail.domain.risk import RiskInputs
from tradetrail.domain.stats import consecutive_losses
from tradetrail.domain.trades import RoundTrip, after_fill

_OPEN = frozenset(s.value for s in OPEN)
_SUBMITTED, _FILLED = OrderState.SUBMITTED.value, OrderState.FILLED.value


@dataclass
class BacktestOrder:
    """One order at the backtest's simulator (the fields :mod:`domain.fill_rules` reads) and in our books."""

    client_order_id: str
    parent_client_order_id: str | None
    leg: str
    side: str
    order_type: str
    quantity: float
    limit_price: float | None
    stop_price: float | None
    tif: str
    placed: int  # the row of the session it was placed on (it works from the next bar)
    sized_price: float | None = None
    risk_per_unit: float | None = None
    state: str = _SUBMITTED
    fill_price: float | None = None
    commission: float = 0.0
    closed: int | None = None
    reason: str = ""

    def move(self, new: OrderState, reason: str = "") -> None:
        self.state = check_transition(self.state, new)._value_
        self.reason = reason or self.reason


@dataclass
class Account:
    cash: float
    schedule: str = "fixed"
    slippage: float = 0.0005  # a fraction (the simulator's TRADETRAIL_SIM_SLIPPAGE_BPS / 10,000)
    position: Position = field(default_factory=Position)
    orders: list[BacktestOrder] = field(default_factory=list)
    fills: list[dict] = field(default_factory=list)
    trades: list[RoundTrip] = field(default_factory=list)
    _open_trade: RoundTrip | None = None

    def __post_init__(self) -> None:
        self.initial_cash = self.cash
        self._working: list[BacktestOrder] = []
        self._by_coid: dict[str, BacktestOrder] = {}
        self._per_unit_and_minimum = per_unit_and_minimum(self.schedule)
        self._losses = consecutive_losses([t.pnl for t in reversed(self.trades)])

    # -- the broker side ----------------------------------------------------------------------------------
    @property
    def working(self) -> list[BacktestOrder]:
        return self._working

    def place(self, specs: list[OrderSpec], row: int, *, sized_price: float | None = None,
              risk_per_unit: float | None = None) -> list[BacktestOrder]:
        placed = []
        for spec in specs:
            if spec.client_order_id in self._by_coid:  # as the broker would: never a second order for one id
                raise ValueError(f"client order id {spec.client_order_id} is already registered")
            leg = spec.leg._value_  # the member's value, as .value reads it (without the enum's descriptor)
            entry = leg == "entry"
            order = BacktestOrder(spec.client_order_id, spec.parent_client_order_id, leg, spec.side._value_,
                                  spec.order_type._value_, spec.quantity, spec.limit_price, spec.stop_price, spec.tif,
                                  row, sized_price if entry else None, risk_per_unit if entry else None)
            self.orders.append(order)
            self._working.append(order)
            self._by_coid[order.client_order_id] = order
            placed.append(order)
        return placed

    def cancel(self, order: BacktestOrder, row: int, reason: str = "cancelled on request") -> None:
        """Cancel a working order and its working children (the simulator confirms at once)."""
        for o in [order] + [c for c in self._working if c.parent_client_order_id == order.client_order_id]:
            if o.state == _SUBMITTED:
                o.move(OrderState.CANCELLED, reason if o is order else f"parent {reason}")
                o.closed = row
        self._working = [o for o in self._working if o.state == _SUBMITTED]

    def process_bar(self, row: int, time: object, bar_open: float, high: float, low: float) -> bool:
        """Fill or expire what works on this bar; True when anything changed."""
        working = [o for o in self._working if o.placed < row]
        if not working:
            return False
        filled = self._by_coid
        events = bar_events(working, lambda coid: filled[coid].state == _FILLED, bar_open, high, low,
                            self.slippage)
        for event in events:
            order = event.order
            if event.kind == "fill":
                self._fill(order, event.price, row, time)
            else:
                order.move(OrderState.CANCELLED, event.reason)
                order.closed = row
        self._working = [o for o in self._working if o.state == _SUBMITTED]
        return bool(events)

    def _fill(self, order: BacktestOrder, price: float, row: int, time: object) -> None:
        fee = commission(self.schedule, order.quantity, price)
        sign = 1 if order.side == "BUY" else -1
        self.cash -= sign * order.quantity * price + fee
        before = self.position.quantity
        self.position, realized = apply_fill(self.position, order.side, order.quantity, price, fee)
        order.move(OrderState.FILLED, f"fill: {order.side} {order.quantity:g} @ {price:g}")
        order.fill_price, order.commission, order.closed = price, fee, row
        self.fills.append({"client_order_id": order.client_order_id, "leg": order.leg, "side": order.side,
                           "quantity": order.quantity, "price": price, "commission": fee, "row": row})
        risk = order.risk_per_unit
        if risk is None and order.parent_client_order_id:
            risk = self._by_coid[order.parent_client_order_id].risk_per_unit
        trade = after_fill(self._open_trade, price, row, before, self.position.quantity, realized, risk)
        if trade is not None and trade.status == "closed":
            self.trades.append(trade)
            self._open_trade = None
            self._losses = consecutive_losses([t.pnl for t in reversed(self.trades)])
        else:
            self._open_trade = trade

    # -- what the broker reports and the risk gate reads ---------------------------------------------------
    @property
    def open_trade(self) -> RoundTrip | None:
        return self._open_trade

    @property
    def losses_in_a_row(self) -> int:
        """Losing trades in a row up to the last closed one (counted again only when a trade closes)."""
        return self._losses

    def equity(self, close: float) -> float:
        """Cash plus the position at ``close``, rounded as the simulated broker reports it."""
        return round(self.cash + self.position.quantity * close, 6)

    def risk_inputs(self, close: float, day_start_equity: float | None) -> RiskInputs:
        """What ``trading.risk_inputs.gather`` reads for the strategy's own account, from these books."""
        equity = self.equity(close)
        open_orders = [o for o in self._working if o.state in _OPEN]  # the rest are filled or cancelled
        working_entries = [o for o in open_orders if o.leg == "entry"]
        notional = sum(o.quantity * (o.sized_price or o.limit_price or 0.0) for o in working_entries)
        held = abs(self.position.quantity) * close if self.position.quantity else 0.0
        per_unit, minimum = self._per_unit_and_minimum
        pending = sum(o.leg in ("entry", "exit") for o in open_orders)
        protection = sum(o.leg in ("stop", "target") for o in open_orders)
        symbols = (1 if self.position.quantity else 0) or (1 if working_entries else 0)
        return RiskInputs(equity=equity, cash=round(self.cash, 6) - notional, exposure=held + notional,
                          open_positions=symbols, position_qty=float(self.position.quantity),
                          day_start_equity=day_start_equity if day_start_equity is not None else equity,
                          consecutive_losses=self._losses,
                          commission_per_unit=per_unit, min_commission=minimum, pending_orders=pending,
                          open_protection=protection)
