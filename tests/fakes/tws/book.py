"""What the fake TWS holds: its orders and executions, and the values of the messages that report them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from tests.fakes.tws.market import NY, TwsInstrument
from tests.fakes.tws.wire import UNSET_DOUBLE

WORKING = ("PendingSubmit", "PreSubmitted", "Submitted")  # PendingSubmit: booked, not transmitted yet
DONE = ("Filled", "Cancelled", "Inactive")


@dataclass
class FakeTwsOrder:
    order_id: int
    perm_id: int
    client_id: int
    order_ref: str
    parent_id: int
    action: str
    order_type: str
    quantity: float
    lmt_price: float | None
    aux_price: float | None
    tif: str
    transmit: bool
    status: str
    filled: float = 0.0
    avg_fill_price: float = 0.0
    account: str = ""
    conid: int = 0
    symbol: str = ""
    exchange: str = "SMART"
    oca_group: str = ""
    parent_perm_id: int = 0
    connection: int = 0  # serial of the connection that placed it (0: booked by the test)
    last_fill_price: float = 0.0
    why: str = ""  # the reject or cancel text
    completed_time: str = ""
    held: bool = False
    placed_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def remaining(self) -> float:
        return max(0.0, self.quantity - self.filled)

    @property
    def working(self) -> bool:
        return self.status in WORKING


@dataclass
class FakeTwsExecution:
    exec_id: str
    perm_id: int
    order_id: int
    client_id: int
    order_ref: str
    side: str  # "BOT" / "SLD"
    shares: float
    price: float
    time: datetime
    commission: float
    conid: int
    symbol: str
    account: str
    cum_qty: float
    avg_price: float
    exchange: str
    realized_pnl: float | None = None
    commission_reported: bool = True  # False: TWS has not sent its commission report yet


def tws_time(t: datetime) -> str:
    """How TWS 10.x writes an execution's or completed order's time: New York time with the zone's name."""
    return t.astimezone(NY).strftime("%Y%m%d %H:%M:%S") + " US/Eastern"


def contract_values(inst: TwsInstrument, exchange: str) -> dict:
    return {"c.conId": inst.conid, "c.symbol": inst.symbol, "c.secType": inst.sec_type,
            "c.lastTradeDateOrContractMonth": "", "c.strike": 0, "c.right": "", "c.multiplier": "",
            "c.exchange": exchange, "c.currency": inst.currency, "c.localSymbol": inst.symbol,
            "c.tradingClass": inst.symbol if inst.sec_type == "STK" else ""}


def _order_values(o: FakeTwsOrder, inst: TwsInstrument) -> dict:
    return {**contract_values(inst, o.exchange),
            "o.action": o.action, "o.totalQuantity": o.quantity, "o.orderType": o.order_type,
            # TWS writes 0 for the price an order type does not use
            "o.lmtPrice": o.lmt_price if o.lmt_price is not None else 0,
            "o.auxPrice": o.aux_price if o.aux_price is not None else 0,
            "o.tif": o.tif, "o.ocaGroup": o.oca_group, "o.account": o.account, "o.openClose": "",
            "o.orderRef": o.order_ref, "o.permId": o.perm_id, "o.parentId": o.parent_id,
            "o.ocaType": 3 if o.oca_group else 0, "o.percentOffset": "", "o.startingPrice": "",
            "o.stockRefPrice": "", "o.delta": "", "o.stockRangeLower": "", "o.stockRangeUpper": "",
            "o.minQty": "", "o.nbboPriceCap": "", "o.volatility": "", "o.volatilityType": "",
            "o.deltaNeutralAuxPrice": "", "o.referencePriceType": "", "o.trailStopPrice": "",
            "o.trailingPercent": "", "o.basisPoints": "", "o.basisPointsType": "", "o.scaleInitLevelSize": "",
            "o.scaleSubsLevelSize": "", "o.triggerPrice": "", "o.lmtPriceOffset": "", "o.adjustedStopPrice": "",
            "o.adjustedStopLimitPrice": "", "o.adjustedTrailingAmount": "", "o.cashQty": "",
            "o.adjustedOrderType": o.order_type, "o.duration": "", "o.postToAts": "", "o.minTradeQty": "",
            "o.minCompeteSize": "", "o.competeAgainstBestOffset": "", "o.midOffsetAtWhole": "",
            "o.midOffsetAtHalf": "", "st.status": o.status}


def open_order_values(o: FakeTwsOrder, inst: TwsInstrument) -> dict:
    return {**_order_values(o, inst), "o.orderId": o.order_id, "o.clientId": o.client_id,
            "st.commissionCurrency": "", "st.commission": UNSET_DOUBLE, "st.minCommission": UNSET_DOUBLE,
            "st.maxCommission": UNSET_DOUBLE}


def completed_order_values(o: FakeTwsOrder, inst: TwsInstrument) -> dict:
    text = {"Filled": "Filled Size: " + f"{o.filled:g}", "Cancelled": "Cancelled by Trader",
            "Inactive": "Rejected: " + o.why}.get(o.status, o.status)
    return {**_order_values(o, inst), "o.filledQuantity": o.filled, "o.parentPermId": o.parent_perm_id,
            "o.autoCancelDate": "", "o.shareholder": "", "st.completedTime": o.completed_time,
            "st.completedStatus": text}


def order_status_fields(o: FakeTwsOrder) -> list:
    return [3, o.order_id, o.status, o.filled, o.remaining, o.avg_fill_price, o.perm_id, o.parent_id,
            o.last_fill_price, o.client_id, "", ""]


def exec_values(req_id: int, e: FakeTwsExecution, inst: TwsInstrument, zoneless: bool = False) -> dict:
    """``zoneless``: the time without its zone's name, as TWS sends it when set so (New York time here)."""
    when = tws_time(e.time).removesuffix(" US/Eastern") if zoneless else tws_time(e.time)
    return {**contract_values(inst, e.exchange), "reqId": req_id, "ex.orderId": e.order_id,
            "ex.execId": e.exec_id, "time": when, "ex.acctNumber": e.account,
            "ex.exchange": e.exchange, "ex.side": e.side, "ex.shares": e.shares, "ex.price": e.price,
            "ex.permId": e.perm_id, "ex.clientId": e.client_id, "ex.cumQty": e.cum_qty,
            "ex.avgPrice": e.avg_price, "ex.orderRef": e.order_ref, "ex.evRule": "", "ex.evMultiplier": "",
            "ex.modelCode": ""}


def commission_fields(e: FakeTwsExecution) -> list:
    pnl = UNSET_DOUBLE if e.realized_pnl is None else round(e.realized_pnl, 2)
    return [59, 1, e.exec_id, e.commission, "USD", pnl, UNSET_DOUBLE, ""]


def _hours(today: date, open_: str, close: str) -> str:
    out = []
    for k in range(6):
        d = today + timedelta(days=k)
        day = d.strftime("%Y%m%d")
        out.append(f"{day}:CLOSED" if d.weekday() >= 5 else f"{day}:{open_}-{day}:{close}")
    return ";".join(out)


def contract_details_values(req_id: int, inst: TwsInstrument, exchange: str) -> dict:
    today = datetime.now(NY).date()
    stock = inst.sec_type == "STK"
    return {**contract_values(inst, exchange), "reqId": req_id, "lastTimes": "",
            "cd.marketName": inst.symbol if stock else inst.symbol, "cd.minTick": 0.01,
            "cd.orderTypes": "ACTIVETIM,ADJUST,ALERT,ALGO,ALLOC,DAY,GTC,IOC,LMT,LOC,MKT,MOC,OCA,STP,STPLMT,TRAIL,"
                             "WHATIF",
            "cd.validExchanges": f"SMART,{inst.primary_exchange},BATS,IEX" if stock else inst.primary_exchange,
            "cd.priceMagnifier": 1, "cd.underConId": 0, "cd.longName": inst.name,
            "c.primaryExchange": inst.primary_exchange, "cd.contractMonth": "", "cd.industry": inst.industry,
            "cd.category": inst.category, "cd.subcategory": "", "cd.timeZoneId": "US/Eastern",
            "cd.tradingHours": _hours(today, "0400", "2000"), "cd.liquidHours": _hours(today, "0930", "1600"),
            "cd.evRule": "", "cd.evMultiplier": "", "cd.aggGroup": 1, "cd.underSymbol": "", "cd.underSecType": "",
            "cd.marketRuleIds": "26,26,26,26", "cd.realExpirationDate": "",
            "cd.stockType": ("ETF" if "ETF" in inst.name or "TRUST" in inst.name else "COMMON") if stock else "",
            "cd.minSize": 1, "cd.sizeIncrement": 1, "cd.suggestedSizeIncrement": 100}
