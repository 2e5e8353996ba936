"""The ``ibkr_tws`` market data adapter: contracts from TWS's contract details (what ``qualifyContracts`` asks),
daily bars from ``reqHistoricalData`` behind the pacing limiter, with a bar cache in the database.

Contracts: a ticker is looked up as a stock (``reqContractDetails`` of symbol + STK) and the listing it means
is chosen by the same documented rules as the Web API adapter (:func:`tradetrail.ibkr.marketdata.choose`:
exact ticker, stocks first, the one US primary listing; ambiguity is reported, never guessed); a symbol made
of digits is a conid. conid = TWS's conId (IBKR's contract ids are the same in both APIs). The symbol cache
(``tradetrail.catalogue.symbols``) keeps what was resolved under this source's name.

Bars: ``1 day`` TRADES bars, regular hours, stamped when their session completes (16:00 New York of the bar's
date; see :func:`tradetrail.tws.shapes.bar_stamp`). The cache remembers the span it holds completely; a request
inside it, or one where no new session can have closed since the last fetch, asks nobody. Every failure is a
MarketDataError saying why (not connected, no subscription, a pacing violation held back): never "0 bars".
"""

from __future__ import annotations

import math
import time
from datetime import datetime, timedelta

import pandas as pd
from ib_async import Contract as IbContract
from ib_async import ContractDetails
from sqlalchemy import Engine

from tradetrail.db.market_models import BarSeries
from tradetrail.db.types import utcnow
from tradetrail.domain.contract import Contract
from tradetrail.ibkr import shapes as web_shapes
from tradetrail.ibkr.marketdata import UnknownContract, choose, rank
from tradetrail.marketdata.bar_cache import CachedGatewayBars, DailyBarCache
from tradetrail.marketdata.port import MarketDataError
from tradetrail.tws import shapes
from tradetrail.tws.connection import TwsConnection
from tradetrail.tws.errors import RequestFailed, TwsError
from tradetrail.tws.pacing import PacingHeldBack

SOURCE = "ibkr_tws"
MAX_DAYS = 365  # TWS takes durations above a year in years only
HISTORY_ATTEMPTS = 3  # a pacing violation is waited out and the (idempotent) request asked again, this often
NO_SUBSCRIPTION = {354, 10089, 10090, 10167, 10168}


def _duration(days: int) -> tuple[str, int]:
    """A TWS duration covering ``days`` days, and the days it covers."""
    if days <= MAX_DAYS:
        return f"{days} D", days
    years = math.ceil(days / 365)
    return f"{years} Y", 365 * years


class TwsMarketData(CachedGatewayBars):
    name = SOURCE

    def __init__(self, conn: TwsConnection, engine: Engine):
        self.conn, self.engine = conn, engine
        self.bars = DailyBarCache(engine, SOURCE, "TWS")
        self.history_timeout = conn.timeout * 4  # years of daily bars take a gateway a while

    # -- contracts ---------------------------------------------------------------------------------------
    def _details(self, contract: IbContract, what: str) -> list[ContractDetails]:
        try:
            return self.conn.run(lambda ib: ib.reqContractDetailsAsync(contract), what=what)
        except RequestFailed as exc:
            if exc.code == 200:  # "No security definition has been found for the request"
                return []
            raise MarketDataError(f"TWS {what}: {exc}") from None
        except TwsError as exc:
            raise MarketDataError(f"TWS {what}: {exc}") from None

    def search(self, query: str, *, by_name: bool = False) -> list[dict]:
        """Listings for a ticker (stocks of that symbol on every exchange TWS knows), ranked best first; by
        company name, TWS's matching symbols."""
        q = query.strip()
        if by_name:
            try:
                found = self.conn.run(lambda ib: ib.reqMatchingSymbolsAsync(q), what=f"matching symbols for {q!r}")
            except TwsError as exc:
                raise MarketDataError(f"TWS search for {q!r}: {exc}") from None
            if found is None:  # ib_async gives up after 4 s: not an empty answer (it would be cached as one)
                raise MarketDataError(f"TWS search for {q!r}: no answer to the symbol search")
            listings = []
            for d in found:
                c = d.contract
                if c is not None and c.conId:
                    exchange = c.primaryExchange or c.exchange or ""
                    listings.append({"conid": int(c.conId), "symbol": (c.symbol or "").upper(), "name": "",
                                     "sec_type": c.secType or "", "exchange": exchange, "currency": c.currency or "",
                                     "is_us": web_shapes.is_us(exchange, c.currency or None),
                                     "details": {"derivatives": list(d.derivativeSecTypes or [])}})
            return rank(listings, q)
        details = self._details(IbContract(symbol=q.upper(), secType="STK", exchange="SMART"),
                                f"contract details for {q!r}")
        return rank([shapes.listing(d) for d in details], q)

    def contract(self, conid: int) -> dict:
        """One contract by id (UnknownContract if TWS has none)."""
        details = self._details(IbContract(conId=int(conid)), f"contract {conid}")
        if not details:
            raise UnknownContract(f"TWS has no contract {conid}")
        return shapes.listing(details[0])

    def resolve(self, symbol: str) -> Contract:
        key = symbol.strip().upper()
        if key.isdigit():
            return to_contract(self.contract(int(key)), "by conid")
        chosen, rule = choose(self.search(key), key)
        return to_contract(chosen, rule)

    # -- bars --------------------------------------------------------------------------------------------
    def _history(self, conid: int, duration: str) -> list:
        """Daily bars from TWS, paced; a pacing violation (162) waited out and recorded; no bars an error."""
        contract = IbContract(conId=conid, exchange="SMART")
        what = f"historical data for conid {conid} ({duration})"
        key = (conid, "", duration, "1 day", "TRADES", True)
        for _ in range(HISTORY_ATTEMPTS):
            started = time.monotonic()
            try:
                with self.conn.pacer.slot(key, conid):
                    bars = self.conn.run(lambda ib: ib.reqHistoricalDataAsync(
                        contract, endDateTime="", durationStr=duration, barSizeSetting="1 day", whatToShow="TRADES",
                        useRTH=True, formatDate=1, timeout=self.history_timeout),
                        timeout=self.history_timeout + 5, what=what)
            except PacingHeldBack as exc:
                raise MarketDataError(f"TWS {what}: {exc}") from None
            except RequestFailed as exc:
                text = exc.text.lower()
                if exc.code == 162 and "pacing" in text:
                    self.conn.pacer.violation(what, exc.text)
                    continue
                if exc.code == 162 and "no data" in text:
                    raise MarketDataError(f"TWS has no daily bars for conid {conid} over {duration} ({exc.text})") \
                        from None
                hint = ""
                if exc.code in NO_SUBSCRIPTION or "permission" in text:
                    hint = " (no market data subscription for it: subscribe, or set TRADETRAIL_TWS_MARKET_DATA_TYPE" \
                           "=delayed where IBKR offers delayed data)"
                raise MarketDataError(f"TWS refused {what}: {exc}{hint}") from None
            except TwsError as exc:
                raise MarketDataError(f"TWS {what}: {exc}") from None
            if not bars:
                waited = time.monotonic() - started
                why = f"no answer within {self.history_timeout:g} s" if waited >= self.history_timeout \
                    else "an empty answer"
                raise MarketDataError(f"TWS {what}: {why}; no bars")
            self.conn.pacer.succeeded()
            return list(bars)
        raise MarketDataError(f"TWS {what}: pacing violation (162) {HISTORY_ATTEMPTS} times in a row, each waited "
                              "out; held back (recorded in the connection's pacing report)")

    def _fetch(self, conid: int, *, since: datetime, series: BarSeries | None) -> None:
        now = utcnow()
        duration, days = _duration(max(1, math.ceil((now - since).total_seconds() / 86400)))
        frame = shapes.bars_frame(self._history(conid, duration), conid)
        frame = frame.loc[frame.index <= pd.Timestamp(now)]  # a session still running is not a bar yet
        meta = {"duration": duration, "what": "TRADES", "rth": True,
                "market_data_type": self.conn.market_data_type}
        self.bars.store(conid, frame, now, now - timedelta(days=days), meta, series)


def to_contract(listing: dict, rule: str = "") -> Contract:
    details = dict(listing.get("details") or {})
    if rule:
        details["resolution"] = rule
    return Contract(source=SOURCE, symbol=listing["symbol"], name=listing["name"] or listing["symbol"],
                    sec_type=listing["sec_type"] or "STK", exchange=listing["exchange"],
                    currency=listing["currency"] or "USD", conid=int(listing["conid"]), details=details)
