"""ib_async's objects (Trade, Fill, Position, AccountValue, ContractDetails, BarData) read into the ports' types,
and our order specs written as ib_async orders.

Quirks handled here: "no value" is ib_async's UNSET_DOUBLE (or UNSET_INTEGER), not None; sides are BUY/SELL in
orders and BOT/SLD in executions; statuses are TWS's (PreSubmitted, ApiPending...) plus ib_async's own
ValidationError (a warning on a live order); a daily bar carries its session's date only, so it is stamped at
16:00 New York of that date (when a US session is complete; later, never earlier, than any other listing's).
"""

from __future__ import annotations

import math
import re
from datetime import UTC, date, datetime
from typing import Any

import pandas as pd
from ib_async import AccountValue, BarData, ContractDetails, Fill, LimitOrder, MarketOrder, Order, StopOrder, Trade
from ib_async.util import UNSET_DOUBLE, UNSET_INTEGER

from tradetrail.broker.port import AccountValues, BrokerFill, BrokerOrder, BrokerPosition
from tradetrail.domain.bars import BarsError, validate_bars
from tradetrail.domain.market_hours import EXCHANGE_TZ, SESSION_CLOSE
from tradetrail.domain.orders import OrderSpec, OrderType
from tradetrail.ibkr.shapes import is_us
from tradetrail.marketdata.port import MarketDataError
from tradetrail.tws.errors import TwsError, UnmappedOrder

_SIDES = {"BUY": "BUY", "BOT": "BUY", "SELL": "SELL", "SLD": "SELL"}
# TWS order statuses → our vocabulary. ValidationError (ib_async's) and PendingCancel leave the order working.
_STATUS = {"PendingSubmit": "SUBMITTED", "ApiPending": "SUBMITTED", "PreSubmitted": "SUBMITTED",
           "Submitted": "SUBMITTED", "ValidationError": "SUBMITTED", "ApiUpdate": "SUBMITTED",
           "PendingCancel": "SUBMITTED", "Filled": "FILLED", "Cancelled": "CANCELLED", "ApiCancelled": "CANCELLED",
           "Inactive": "REJECTED"}
_TYPES = {"MKT": "MKT", "LMT": "LMT", "STP": "STP"}
_OUR_REF = re.compile(r"tt-[0-9a-f]{20}-[a-z]+")  # tradetrail.domain.orders.client_order_id's format


def ours(order_ref: str | None) -> bool:
    """Whether an orderRef is one of our client order ids (anything else is another program's order)."""
    return bool(order_ref) and _OUR_REF.fullmatch(order_ref) is not None


def num(value: Any) -> float | None:
    """A number ib_async reports, None for its "unset" markers (and NaN)."""
    if value is None or value == "" or value == UNSET_DOUBLE or value == UNSET_INTEGER:
        return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise TwsError(f"TWS sent {value!r} where a number belongs") from None
    return None if math.isnan(out) else out


def side(action: str) -> str:
    text = str(action or "").upper()
    if text not in _SIDES:
        raise UnmappedOrder(f"TWS sent an unknown order side {action!r}")
    return _SIDES[text]


def status(value: str, filled: float) -> str:
    """Our order state for a TWS status; a working order with fills is PARTIALLY_FILLED."""
    if value not in _STATUS:
        raise UnmappedOrder(f"TWS sent an unknown order status {value!r}")
    ours = _STATUS[value]
    return "PARTIALLY_FILLED" if ours == "SUBMITTED" and filled > 0 else ours


def masked(account: str) -> str:
    """An account id as logs and status pages may show it (never whole: /health is not authenticated)."""
    account = str(account or "")
    return f"{account[:2]}***{account[-2:]}" if len(account) > 5 else "***" if account else ""


def paper(account: str) -> bool:
    """IBKR's paper accounts are the ones whose id starts with D (DU..., DF...)."""
    return account.upper().startswith("D")


# -- contracts ----------------------------------------------------------------------------------------------
def listing(details: ContractDetails) -> dict:
    """A contract's details as a listing (the shape the symbol cache keeps)."""
    c = details.contract
    if c is None or not c.conId:
        raise MarketDataError("TWS sent contract details without a contract id")
    exchange = c.primaryExchange or c.exchange or ""
    return {"conid": int(c.conId), "symbol": (c.symbol or "").upper(), "name": details.longName or c.symbol or "",
            "sec_type": c.secType or "", "exchange": exchange, "currency": c.currency or "",
            "is_us": is_us(exchange, c.currency or None),
            "details": {k: v for k, v in (("local_symbol", c.localSymbol), ("trading_class", c.tradingClass),
                                          ("valid_exchanges", details.validExchanges),
                                          ("time_zone", details.timeZoneId), ("industry", details.industry),
                                          ("category", details.category), ("min_tick", details.minTick)) if v}}


# -- bars -----------------------------------------------------------------------------------------------------
def bar_stamp(day: date | datetime) -> datetime:
    """When the daily bar of ``day``'s session is complete: 16:00 New York that day (see the module)."""
    if isinstance(day, datetime):
        day = day.astimezone(EXCHANGE_TZ).date() if day.tzinfo else day.date()
    return datetime.combine(day, SESSION_CLOSE, tzinfo=EXCHANGE_TZ).astimezone(UTC)


def bars_frame(bars: list[BarData], conid: int) -> pd.DataFrame:
    """Daily bars as a bars frame (oldest first, one per session), validated."""
    rows = [(bar_stamp(b.date), b.open, b.high, b.low, b.close, max(0.0, float(b.volume or 0.0))) for b in bars]
    frame = pd.DataFrame([r[1:] for r in rows], columns=["open", "high", "low", "close", "volume"],
                         index=pd.DatetimeIndex([r[0] for r in rows], name="time"), dtype=float)
    frame = frame[~frame.index.duplicated(keep="last")].sort_index()
    try:
        return validate_bars(frame, source=f"TWS conid {conid}")
    except BarsError as exc:
        raise MarketDataError(str(exc)) from exc


# -- orders ---------------------------------------------------------------------------------------------------
def ib_order(spec: OrderSpec, account: str, *, order_id: int, parent_id: int, transmit: bool) -> Order:
    """One leg as TWS takes it: our client order id in ``orderRef`` (echoed in openOrder, execDetails and
    completedOrder), the parent's TWS order id in ``parentId``, ``transmit`` only on the last leg."""
    common = dict(orderId=order_id, account=account, tif=spec.tif, orderRef=spec.client_order_id,
                  parentId=parent_id, transmit=transmit)
    if spec.order_type == OrderType.MKT:
        return MarketOrder(spec.side.value, spec.quantity, **common)
    if spec.order_type == OrderType.LMT:
        return LimitOrder(spec.side.value, spec.quantity, spec.limit_price, **common)
    if spec.order_type == OrderType.STP:
        return StopOrder(spec.side.value, spec.quantity, spec.stop_price, **common)
    raise TwsError(f"order type {spec.order_type} is not supported through TWS")


def broker_order(trade: Trade, parent_ref: str | None = None, fills: list[Fill] = ()) -> BrokerOrder:
    """A TWS order (open or completed) as the port reports it; ``fills`` (its executions) give the filled
    quantity and average price when the order itself does not (a completed order carries neither)."""
    o, st = trade.order, trade.orderStatus
    permid = o.permId or st.permId
    filled = num(st.filled) or num(getattr(o, "filledQuantity", None)) or 0.0
    avg = num(st.avgFillPrice) or None
    if fills:
        done = sum(f.execution.shares for f in fills)
        if done > filled + 1e-9 or avg is None:
            filled = max(filled, done)
            avg = round(sum(f.execution.shares * f.execution.price for f in fills) / done, 8) if done else None
    state = status(st.status, filled)
    kind = _TYPES.get(str(o.orderType).upper(), str(o.orderType).upper())
    total = num(o.totalQuantity) or filled + (num(st.remaining) or 0.0)
    reason = ""
    if state in ("CANCELLED", "REJECTED"):
        errors = [e.message for e in trade.log if e.errorCode]
        reason = errors[-1] if errors else st.status
    return BrokerOrder(broker_order_id=str(permid), client_order_id=o.orderRef or None,
                       symbol=(trade.contract.symbol or "").upper(), side=side(o.action), order_type=kind,
                       quantity=float(total), filled_quantity=float(filled),
                       avg_fill_price=avg if filled else None, status=state,
                       limit_price=num(o.lmtPrice) if kind == "LMT" else None,
                       stop_price=num(o.auxPrice) if kind == "STP" else None,
                       parent_client_order_id=parent_ref, reason=reason)


def commission(fill: Fill) -> float:
    """The commission as IB reports it: positive a cost, negative a rebate; 0 while its report has not come
    (BrokerFill needs a number; docs/tws.md says what becomes of a late one)."""
    report = fill.commissionReport
    return (num(report.commission) or 0.0) if report.execId else 0.0


def broker_fill(fill: Fill) -> BrokerFill:
    ex = fill.execution
    when = ex.time if isinstance(ex.time, datetime) else fill.time
    return BrokerFill(exec_id=ex.execId, broker_order_id=str(ex.permId), client_order_id=ex.orderRef or None,
                      symbol=(fill.contract.symbol or "").upper(), side=side(ex.side), quantity=float(ex.shares),
                      price=float(ex.price), commission=commission(fill),
                      time=when.astimezone(UTC) if when.tzinfo else when.replace(tzinfo=UTC))


def broker_position(contract, quantity: float, avg_cost: float, market_price: float | None) -> BrokerPosition:
    return BrokerPosition(symbol=(contract.symbol or "").upper(), conid=int(contract.conId) or None,
                          quantity=float(quantity), avg_cost=float(avg_cost), market_price=market_price)


def account_values(summary: list[AccountValue], account: str) -> AccountValues:
    """NetLiquidation and TotalCashValue from the account summary (in the account's base currency)."""
    def value(tag: str) -> tuple[float, str] | None:
        for v in summary:
            if v.account == account and v.tag == tag and v.currency not in ("", "BASE"):
                amount = num(v.value)
                if amount is not None:
                    return amount, v.currency
        return None

    equity, cash = value("NetLiquidation"), value("TotalCashValue")
    if equity is None or cash is None:
        missing = " and ".join(t for t, got in (("NetLiquidation", equity), ("TotalCashValue", cash)) if got is None)
        raise TwsError(f"TWS's account summary for {account} has no {missing}")
    return AccountValues(account=account, cash=cash[0], equity=equity[0], currency=equity[1], paper=paper(account))
