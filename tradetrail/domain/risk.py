"""The risk gate: pure functions that size an entry and say no, with the rule and the numbers, when a limit
would be crossed. Applied by the risk_check step before any order exists.

Entries (BUY) are sized from the price the order will trade at (:class:`EntryPrice`), never from the
analyst's entry for a market order: a MKT entry from the latest market price plus a slippage allowance, a
LMT entry from its limit. With ``sizing="risk"`` (the default) size = floor(equity × risk_per_trade ÷ (that
price − stop)); with ``sizing="fixed"`` size = ``quantity``, capped by that risk budget when there is a stop.
Either is capped by max position % of equity and
by cash (after commission), all at that price; reward/risk is measured from the expected price (the latest
price, or the limit). An entry without protective orders (``protective=False``: the strategy's
``orders.protective`` is ``none``) has no stop or target: it needs fixed sizing (risk sizing has no stop to
size from), its stop and target are ignored and the reward/risk minimum does not apply; every other rule does.
Denied when there is no usable price, the stop is not below it, the size is below one unit, reward/risk is
below the minimum,
exposure would pass its maximum, too many positions are open, today's loss has reached the daily limit,
the strategy lost N trades in a row, a position is already open, an earlier order of the strategy is
still working or of unknown fate, or trading is REDUCING or HALTED.
Exits (SELL): close the strategy's open position; allowed while REDUCING, denied while HALTED; without a
position a SELL is a recorded no-op (no shorting).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from operator import attrgetter

from tradetrail.domain.bounds import Bound, check_number
from tradetrail.domain.records import as_dict
from tradetrail.domain.trading_states import TradingState, strictest

LIMIT_BOUNDS: dict[str, Bound] = {
    "risk_per_trade_pct": Bound(0.01, 5.0),
    "max_position_pct": Bound(0.1, 100.0),
    "max_exposure_pct": Bound(1.0, 100.0),
    "max_open_positions": Bound(1, 1000, whole=True),
    "min_reward_risk": Bound(0.1, 20.0),
    "daily_loss_limit_pct": Bound(0.1, 100.0),
    "max_consecutive_losses": Bound(1, 100, whole=True),
    "quantity": Bound(1, 1_000_000, whole=True),
}
SIZINGS = ("risk", "fixed")


@dataclass(frozen=True)
class RiskLimits:
    risk_per_trade_pct: float = 1.0
    max_position_pct: float = 20.0
    max_exposure_pct: float = 90.0
    max_open_positions: int = 10
    min_reward_risk: float = 1.0
    daily_loss_limit_pct: float = 3.0
    max_consecutive_losses: int = 3
    sizing: str = "risk"  # "risk": from the risk budget and the stop; "fixed": ``quantity`` units
    quantity: int = 1  # the size of every entry with fixed sizing (still capped like any other)

    def __post_init__(self) -> None:
        for name, bound in LIMIT_BOUNDS.items():
            check_number("risk", name, getattr(self, name), bound)
        if self.sizing not in SIZINGS:
            raise ValueError(f"risk.sizing must be one of {', '.join(SIZINGS)}, got {self.sizing!r}")


@dataclass(frozen=True)
class RiskInputs:
    """What the gate looks at, read from the broker and the database just before deciding."""

    equity: float
    cash: float
    exposure: float  # market value of all open positions (absolute)
    open_positions: int
    position_qty: float  # this strategy's position in this contract (0 if none)
    day_start_equity: float
    consecutive_losses: int
    strategy_state: TradingState = TradingState.ACTIVE
    global_state: TradingState = TradingState.ACTIVE
    commission_per_unit: float = 0.0
    min_commission: float = 0.0
    pending_orders: int = 0  # this strategy's entries/exits on this instrument, unsettled or still working
    open_protection: int = 0  # its stop/target orders on this instrument still working


@dataclass(frozen=True)
class EntryPrice:
    """The price an entry order will trade at, given to the gate apart from the analyst's levels.

    MKT: ``reference`` is the latest market price and the gate sizes at ``reference × (1 + allowance_pct/100)``,
    the worst fill it tolerates; a fill beyond that is flagged when it is booked. LMT: ``reference`` is the
    limit, the worst fill possible, and the gate sizes at it."""

    order_type: str  # MKT | LMT
    reference: float | None
    allowance_pct: float = 0.0

    @classmethod
    def market(cls, last_price: float | None, allowance_pct: float) -> EntryPrice:
        return cls("MKT", last_price, allowance_pct)

    @classmethod
    def limit(cls, limit_price: float | None) -> EntryPrice:
        return cls("LMT", limit_price, 0.0)

    @property
    def sizing(self) -> float | None:
        """The price the gate sizes at, or None when there is no usable one."""
        ok = _positive(self.reference) and _finite(self.allowance_pct) and 0 <= self.allowance_pct
        if not ok or self.order_type not in ("MKT", "LMT"):
            return None
        if self.order_type == "LMT":
            return float(self.reference)
        value = self.reference * (1 + self.allowance_pct / 100)
        return value if math.isfinite(value) else None


def _finite(value: object) -> bool:
    if type(value) is float:  # the common case, without the checks below
        return math.isfinite(value)
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _positive(value: object) -> bool:
    return _finite(value) and value > 0


@dataclass(frozen=True)
class Denial:
    rule: str
    detail: str
    numbers: dict = field(default_factory=dict)


@dataclass(frozen=True)
class RiskDecision:
    action: str  # "enter" | "exit" | "none"
    approved: bool
    quantity: float  # whole units for entries; the exact position for exits
    reason: str
    denials: tuple[Denial, ...] = ()
    numbers: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return as_dict(self)


def _state(inputs: RiskInputs) -> TradingState:
    return strictest(inputs.strategy_state, inputs.global_state)


def evaluate(action: str, entry: float | None, stop: float | None, target: float | None,
             inputs: RiskInputs, limits: RiskLimits, price: EntryPrice | None = None, *,
             protective: bool = True) -> RiskDecision:
    """Decide what the signal may do. Never raises for a bad signal: it denies it.

    ``price`` is what a BUY will trade at; without it the entry is taken as a limit order at ``entry``.
    ``protective`` says whether the entry carries a protective stop and take-profit (the default): without
    them ``stop`` and ``target`` are ignored."""
    state = _state(inputs)
    if action == "HOLD":
        return RiskDecision("none", False, 0, "HOLD: nothing to do")
    if action == "SELL":
        return _exit(inputs, state)
    if action != "BUY":
        return RiskDecision("none", False, 0, f"unknown action {action!r}", (Denial("action", action),))
    if not protective:
        stop = target = None  # no protective order will carry them: nothing may be decided on them
    return _entry(entry, stop, target, inputs, limits, state, price, protective)


ACCOUNT_NUMBERS = ("equity", "cash", "exposure", "position_qty", "day_start_equity", "commission_per_unit",
                   "min_commission")
_account_numbers = attrgetter(*ACCOUNT_NUMBERS)


def _unusable_account(inputs: RiskInputs) -> Denial | None:
    """A denial when the account's numbers are no numbers (NaN or infinite from a broker's reply) or the
    commission is negative: no cap can be checked against them, and a comparison with NaN never trips."""
    values = _account_numbers(inputs)
    if all(map(_finite, values)) and inputs.commission_per_unit >= 0 and inputs.min_commission >= 0:
        return None  # the usual case, without building the details below
    bad = {name: value for name, value in zip(ACCOUNT_NUMBERS, values, strict=True) if not _finite(value)}
    if inputs.commission_per_unit < 0 or inputs.min_commission < 0:
        bad |= {"commission_per_unit": inputs.commission_per_unit, "min_commission": inputs.min_commission}
    if not bad:
        return None
    return Denial("account_values", f"the account's values are not usable numbers ({', '.join(sorted(bad))}): "
                  "no limit can be checked against them", {k: repr(v) for k, v in bad.items()})


def _exit(inputs: RiskInputs, state: TradingState) -> RiskDecision:
    if not _finite(inputs.position_qty):
        d = _unusable_account(inputs)
        return RiskDecision("exit", False, 0, f"{d.rule}: {d.detail}", (d,))
    if inputs.position_qty <= 0:
        return RiskDecision("none", False, 0, "SELL with no open position: nothing to close (no shorting)")
    if state == TradingState.HALTED:
        d = Denial("trading_state", "trading is HALTED: no orders, not even exits", {"state": state.value})
        return RiskDecision("exit", False, 0, d.detail, (d,))
    if inputs.pending_orders > 0:  # an earlier exit (or entry) still working or of unknown fate: never sell twice
        d = Denial("orders_pending", f"{inputs.pending_orders} earlier order(s) still working or of unknown fate",
                   {"pending_orders": inputs.pending_orders})
        return RiskDecision("exit", False, 0, f"{d.rule}: {d.detail}", (d,))
    qty = inputs.position_qty  # all of it, fractions included: an exit closes the position
    return RiskDecision("exit", True, qty, f"close the position of {qty:g}", numbers={"position": qty})


def _entry(entry, stop, target, inputs: RiskInputs, limits: RiskLimits, state: TradingState,
           price: EntryPrice | None, protective: bool) -> RiskDecision:
    denials: list[Denial] = []

    def deny(rule: str, detail: str, **numbers) -> None:
        denials.append(Denial(rule, detail, numbers))

    def denied(numbers: dict | None = None) -> RiskDecision:
        return RiskDecision("enter", False, 0, f"{denials[0].rule}: {denials[0].detail}", tuple(denials),
                            numbers or {})

    if state != TradingState.ACTIVE:
        deny("trading_state", f"trading is {state.value}: no new entries", state=state.value)
    unusable = _unusable_account(inputs)
    if unusable is not None:
        denials.append(unusable)
        return denied()
    if protective:
        finite = all(_finite(v) for v in (entry, stop, target))
        if not finite or entry <= 0 or stop <= 0 or not stop < entry < target:
            deny("levels", "a BUY needs finite levels with 0 < stop < entry < take-profit", entry=entry, stop=stop,
                 target=target)
    elif not _finite(entry) or entry <= 0:
        deny("levels", "a BUY needs a finite entry above zero", entry=entry)
    elif limits.sizing != "fixed":
        deny("sizing", "risk sizing needs a stop to size from, and an entry without protective orders has none "
             "(set risk.sizing to fixed)", sizing=limits.sizing)
    if denials and denials[-1].rule in ("levels", "sizing"):
        return RiskDecision("enter", False, 0, denials[-1].detail if len(denials) == 1 else denials[0].detail,
                            tuple(denials))
    if inputs.position_qty != 0:
        deny("position_open", f"the strategy already holds {inputs.position_qty:g}", position=inputs.position_qty)
    if inputs.pending_orders > 0 or inputs.open_protection > 0:
        count = inputs.pending_orders + inputs.open_protection
        deny("orders_pending", f"{count} earlier order(s) still working or of unknown fate",
             pending_orders=inputs.pending_orders, open_protection=inputs.open_protection)
    price = price if price is not None else EntryPrice.limit(entry)
    ref, sizing = price.reference, price.sizing
    if sizing is None:
        deny("sizing_price", f"no usable price to size the {price.order_type} entry from (a market order needs the "
             "latest market price)", order_type=price.order_type, reference_price=ref,
             slippage_allowance_pct=price.allowance_pct)
        return denied()
    if stop is not None and stop >= ref:
        deny("sizing_price", f"the stop {stop:g} is not below the price the entry trades at ({ref:g})",
             order_type=price.order_type, reference_price=ref, stop=stop)
        return denied()
    if inputs.equity <= 0:
        deny("equity", "no equity", equity=inputs.equity)
        return denied()
    numbers = {"equity": round(inputs.equity, 2), "cash": round(inputs.cash, 2), "entry": entry, "stop": stop,
               "target": target, "order_type": price.order_type, "reference_price": ref,
               "slippage_allowance_pct": price.allowance_pct, "sizing_price": sizing}
    budget = inputs.equity * limits.risk_per_trade_pct / 100
    per_unit = None
    if stop is not None:
        per_unit = sizing - stop  # the risk of a fill at the worst price tolerated
        rr = (target - ref) / (ref - stop)  # at the expected price: the allowance is a bound, not a forecast
        numbers.update(risk_per_unit=round(per_unit, 6), reward_risk=round(rr, 4))
        if rr < limits.min_reward_risk:
            deny("min_reward_risk", f"reward/risk {rr:.2f} below {limits.min_reward_risk}", reward_risk=round(rr, 4))
        sizes = (budget / per_unit, inputs.equity * limits.max_position_pct / 100 / sizing)
        if not all(math.isfinite(x) for x in (per_unit, rr, *sizes)) or per_unit <= 0:
            deny("levels", f"the levels give no finite size or reward/risk at the sizing price {sizing:g} (stop too "
                 "close?)", entry=entry, stop=stop, target=target)
            return denied(numbers)
    if limits.sizing == "fixed":
        qty = limits.quantity
        numbers.update(size_fixed=qty)
    else:
        qty = math.floor(budget / per_unit + 1e-9)
        numbers.update(risk_budget=round(budget, 2), size_by_risk=qty)
    caps = {}
    if limits.sizing == "fixed" and per_unit is not None:  # with a stop, the risk budget is a limit too
        by_risk = math.floor(budget / per_unit + 1e-9)
        numbers.update(risk_budget=round(budget, 2))
        if by_risk < qty:
            caps["risk_per_trade_pct"] = by_risk
            qty = by_risk
    by_position = math.floor(inputs.equity * limits.max_position_pct / 100 / sizing + 1e-9)
    if by_position < qty:
        caps["max_position_pct"] = by_position
        qty = by_position
    unit_cost = sizing + inputs.commission_per_unit
    by_cash = math.floor(max(inputs.cash - inputs.min_commission, 0) / unit_cost + 1e-9)
    if by_cash < qty:
        caps["cash"] = by_cash
        qty = by_cash
    numbers.update(capped_by=caps, quantity=qty)
    if qty < 1:
        deny("min_size", "the size rounds down to zero units (risk budget, position cap or cash)", **numbers)
    exposure_after = (inputs.exposure + qty * sizing) / inputs.equity * 100
    numbers["exposure_after_pct"] = round(exposure_after, 2)
    if exposure_after > limits.max_exposure_pct + 1e-9:
        deny("max_exposure", f"exposure would be {exposure_after:.1f}% > {limits.max_exposure_pct}%",
             exposure_after_pct=round(exposure_after, 2))
    if inputs.open_positions >= limits.max_open_positions:
        deny("max_open_positions", f"{inputs.open_positions} positions open, maximum {limits.max_open_positions}",
             open_positions=inputs.open_positions)
    day_pnl = inputs.equity - inputs.day_start_equity
    loss_limit = inputs.day_start_equity * limits.daily_loss_limit_pct / 100
    numbers["day_pnl"] = round(day_pnl, 2)
    if day_pnl <= -loss_limit:
        deny("daily_loss_limit", f"today's P&L {day_pnl:.2f} reached the daily loss limit -{loss_limit:.2f}",
             day_pnl=round(day_pnl, 2), limit=round(-loss_limit, 2))
    if inputs.consecutive_losses >= limits.max_consecutive_losses:
        deny("consecutive_losses", f"paused after {inputs.consecutive_losses} losing trades in a row "
             f"(limit {limits.max_consecutive_losses}); resume the strategy to trade again",
             consecutive_losses=inputs.consecutive_losses)
    if denials:
        return denied(numbers)
    at = f"{price.order_type} at up to {sizing:.6g}" if price.order_type == "MKT" else f"LMT {sizing:.6g}"
    if limits.sizing == "risk":
        reason = f"buy {qty} ({at}) risking {qty * per_unit:.2f} of {budget:.2f}"
    elif per_unit is not None:
        reason = f"buy {qty} ({at}), a fixed size, risking {qty * per_unit:.2f} of {budget:.2f}"
    else:
        reason = f"buy {qty} ({at}), a fixed size without a stop or target (closed by a SELL signal)"
    return RiskDecision("enter", True, qty, reason, numbers=numbers)
