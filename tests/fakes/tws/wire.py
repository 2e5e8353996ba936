"""The TWS socket protocol's framing and the layouts of the long messages the fake sends, at server version
178 (the highest ib_async 2.1.0 speaks), read off ib_async's decoder field by field.

A frame is a 4-byte big-endian length and the fields, each ended by NUL. The long messages (openOrder,
completedOrder, execDetails, contractDetails) are positional: one missing field shifts every field after it
silently, so each layout here is a tuple of the names ib_async assigns (``o.`` Order, ``c.`` Contract,
``st.`` OrderState, ``ex.`` Execution, ``cd.`` ContractDetails). A name starting with ``#`` is a fixed field
(a count of 0, an empty switch that keeps an optional group out); ``-`` is a field ib_async skips.
``tests/integration/tws/test_fake_tws.py`` fills every named field with a distinct value and decodes the
frame with ib_async's own Decoder, so a miscount fails there instead of here.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping

SERVER_VERSION = 178
UNSET_DOUBLE = "1.7976931348623157E308"  # how TWS writes an unset double (realizedPNL of an opening fill)

CONTRACT_12 = ("c.conId", "c.symbol", "c.secType", "c.lastTradeDateOrContractMonth", "c.strike", "c.right",
               "c.multiplier", "c.exchange", "c.currency", "c.localSymbol", "c.tradingClass")

OPEN_ORDER = (
    "#msgId=5", "o.orderId", *CONTRACT_12,
    "o.action", "o.totalQuantity", "o.orderType", "o.lmtPrice", "o.auxPrice", "o.tif", "o.ocaGroup", "o.account",
    "o.openClose", "o.origin", "o.orderRef", "o.clientId", "o.permId", "o.outsideRth", "o.hidden",
    "o.discretionaryAmt", "o.goodAfterTime", "-sharesAllocation", "o.faGroup", "o.faMethod", "o.faPercentage",
    # server >= 177: no faProfile
    "o.modelCode", "o.goodTillDate", "o.rule80A", "o.percentOffset", "o.settlingFirm", "o.shortSaleSlot",
    "o.designatedLocation", "o.exemptCode", "o.auctionStrategy", "o.startingPrice", "o.stockRefPrice", "o.delta",
    "o.stockRangeLower", "o.stockRangeUpper", "o.displaySize", "o.blockOrder", "o.sweepToFill", "o.allOrNone",
    "o.minQty", "o.ocaType", "o.eTradeOnly", "o.firmQuoteOnly", "o.nbboPriceCap", "o.parentId",
    "o.triggerMethod", "o.volatility", "o.volatilityType", "#deltaNeutralOrderType=", "o.deltaNeutralAuxPrice",
    "o.continuousUpdate", "o.referencePriceType", "o.trailStopPrice", "o.trailingPercent", "o.basisPoints",
    "o.basisPointsType", "c.comboLegsDescrip",
    "#comboLegs=0", "#orderComboLegs=0", "#smartComboRoutingParams=0",
    "o.scaleInitLevelSize", "o.scaleSubsLevelSize", "#scalePriceIncrement=",
    "#hedgeType=",
    "o.optOutSmartRouting", "o.clearingAccount", "o.clearingIntent", "o.notHeld", "#deltaNeutralContract=0",
    "#algoStrategy=",
    "o.solicited", "#whatIf=0", "st.status", "st.initMarginBefore", "st.maintMarginBefore",
    "st.equityWithLoanBefore", "st.initMarginChange", "st.maintMarginChange", "st.equityWithLoanChange",
    "st.initMarginAfter", "st.maintMarginAfter", "st.equityWithLoanAfter", "st.commission", "st.minCommission",
    "st.maxCommission", "st.commissionCurrency", "st.warningText", "o.randomizeSize", "o.randomizePrice",
    "#conditions=0",
    "o.adjustedOrderType", "o.triggerPrice", "o.trailStopPrice", "o.lmtPriceOffset", "o.adjustedStopPrice",
    "o.adjustedStopLimitPrice", "o.adjustedTrailingAmount", "o.adjustableTrailingUnit", "o.softDollarTier.name",
    "o.softDollarTier.val", "o.softDollarTier.displayName", "o.cashQty", "o.dontUseAutoPriceForHedge",
    "o.isOmsContainer", "o.discretionaryUpToLimitPrice", "o.usePriceMgmtAlgo",
    "o.duration", "o.postToAts", "o.autoCancelParent",  # server >= 159, 160, 162
    "o.minTradeQty", "o.minCompeteSize", "o.competeAgainstBestOffset", "o.midOffsetAtWhole",
    "o.midOffsetAtHalf",  # server >= 170
)

COMPLETED_ORDER = (
    "#msgId=101", *CONTRACT_12,
    "o.action", "o.totalQuantity", "o.orderType", "o.lmtPrice", "o.auxPrice", "o.tif", "o.ocaGroup", "o.account",
    "o.openClose", "o.origin", "o.orderRef", "o.permId", "o.outsideRth", "o.hidden", "o.discretionaryAmt",
    "o.goodAfterTime", "o.faGroup", "o.faMethod", "o.faPercentage",
    "o.modelCode", "o.goodTillDate", "o.rule80A", "o.percentOffset", "o.settlingFirm", "o.shortSaleSlot",
    "o.designatedLocation", "o.exemptCode", "o.startingPrice", "o.stockRefPrice", "o.delta", "o.stockRangeLower",
    "o.stockRangeUpper", "o.displaySize", "o.sweepToFill", "o.allOrNone", "o.minQty", "o.ocaType",
    "o.triggerMethod", "o.volatility", "o.volatilityType", "#deltaNeutralOrderType=", "o.deltaNeutralAuxPrice",
    "o.continuousUpdate", "o.referencePriceType", "o.trailStopPrice", "o.trailingPercent", "c.comboLegsDescrip",
    "#comboLegs=0", "#orderComboLegs=0", "#smartComboRoutingParams=0",
    "o.scaleInitLevelSize", "o.scaleSubsLevelSize", "#scalePriceIncrement=",
    "#hedgeType=",
    "o.clearingAccount", "o.clearingIntent", "o.notHeld", "#deltaNeutralContract=0",
    "#algoStrategy=",
    "o.solicited", "st.status", "o.randomizeSize", "o.randomizePrice",
    "#conditions=0",
    "o.trailStopPrice", "o.lmtPriceOffset", "o.cashQty", "o.dontUseAutoPriceForHedge", "o.isOmsContainer",
    "o.autoCancelDate", "o.filledQuantity", "o.refFuturesConId", "o.autoCancelParent", "o.shareholder",
    "o.imbalanceOnly", "o.routeMarketableToBbo", "o.parentPermId", "st.completedTime", "st.completedStatus",
    "o.minTradeQty", "o.minCompeteSize", "o.competeAgainstBestOffset", "o.midOffsetAtWhole",
    "o.midOffsetAtHalf",  # server >= 170
)

EXEC_DETAILS = (
    "#msgId=11", "reqId", "ex.orderId", *CONTRACT_12,
    "ex.execId", "time", "ex.acctNumber", "ex.exchange", "ex.side", "ex.shares", "ex.price", "ex.permId",
    "ex.clientId", "ex.liquidation", "ex.cumQty", "ex.avgPrice", "ex.orderRef", "ex.evRule", "ex.evMultiplier",
    "ex.modelCode", "ex.lastLiquidity", "ex.pendingPriceRevision",  # server >= 178
)

CONTRACT_DETAILS = (  # server >= 164: no version field
    "#msgId=10", "reqId", "c.symbol", "c.secType", "lastTimes", "c.strike", "c.right", "c.exchange",
    "c.currency", "c.localSymbol", "cd.marketName", "c.tradingClass", "c.conId", "cd.minTick",
    "c.multiplier", "cd.orderTypes", "cd.validExchanges", "cd.priceMagnifier", "cd.underConId", "cd.longName",
    "c.primaryExchange", "cd.contractMonth", "cd.industry", "cd.category", "cd.subcategory", "cd.timeZoneId",
    "cd.tradingHours", "cd.liquidHours", "cd.evRule", "cd.evMultiplier", "#secIdList=0",
    "cd.aggGroup", "cd.underSymbol", "cd.underSecType", "cd.marketRuleIds", "cd.realExpirationDate",
    "cd.stockType", "cd.minSize", "cd.sizeIncrement", "cd.suggestedSizeIncrement",
)

# What TWS sends for a field it leaves unset in these messages (as read in captures quoted in ib_insync and
# ib_async issues: empty strings, 0 for counts and flags, the unset double for prices it does not know).
_DEFAULTS = {
    "o.openClose": "", "o.origin": "0", "o.outsideRth": "0", "o.hidden": "0", "o.discretionaryAmt": "0",
    "o.shortSaleSlot": "0", "o.exemptCode": "-1", "o.auctionStrategy": "0", "o.displaySize": "0",
    "o.blockOrder": "0", "o.sweepToFill": "0", "o.allOrNone": "0", "o.ocaType": "3", "o.eTradeOnly": "0",
    "o.firmQuoteOnly": "0", "o.parentId": "0", "o.triggerMethod": "0", "o.continuousUpdate": "0",
    "o.optOutSmartRouting": "0", "o.notHeld": "0", "o.solicited": "0", "o.randomizeSize": "0",
    "o.randomizePrice": "0", "o.adjustableTrailingUnit": "0", "o.dontUseAutoPriceForHedge": "0",
    "o.isOmsContainer": "0", "o.discretionaryUpToLimitPrice": "0", "o.usePriceMgmtAlgo": "0",
    "o.autoCancelParent": "0", "o.refFuturesConId": "0", "o.imbalanceOnly": "0", "o.routeMarketableToBbo": "0",
    "o.parentPermId": "0", "c.strike": "0", "ex.liquidation": "0", "ex.lastLiquidity": "1",
    "ex.pendingPriceRevision": "0", "cd.priceMagnifier": "1", "cd.underConId": "0", "cd.aggGroup": "1",
}


def encode(layout: Iterable[str], values: Mapping[str, object]) -> list[str]:
    """The fields of ``layout`` from ``values`` (by name; a missing name is TWS's unset value for it)."""
    out = []
    for name in layout:
        if name.startswith("#"):
            out.append(name.split("=", 1)[1])
        elif name.startswith("-"):
            out.append("")
        else:
            out.append(text(values.get(name, _DEFAULTS.get(name, ""))))
    return out


def text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        return repr(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
    return str(value)


def frame(fields: Iterable[object]) -> bytes:
    body = "".join(text(f) + "\0" for f in fields).encode()
    return struct.pack(">I", len(body)) + body


def split(body: bytes) -> list[str]:
    fields = body.decode(errors="backslashreplace").split("\0")
    if fields and fields[-1] == "":
        fields.pop()
    return fields


class Shown:
    """A frame's fields as ib_async logs them (comma separated), for the DEBUG wire log; joined only when a
    handler writes the record, so the fake costs nothing extra with DEBUG off."""

    def __init__(self, fields: Iterable[object]):
        self.fields = fields

    def __str__(self) -> str:
        return ",".join(text(f) for f in self.fields)


def to_int(s: str) -> int:
    return int(s) if s else 0


def to_price(s: str) -> float | None:
    """A price field as sent (empty or the unset double: none)."""
    if not s:
        return None
    v = float(s)
    return None if v >= 1e300 else v
