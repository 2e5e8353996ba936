"""The ``ibkr`` market data adapter: contracts from ``secdef/search`` and ``contract/{conid}/info``, daily bars
from ``/iserver/marketdata/history`` with a bar cache in the database.

Which listing a ticker means (the rules, in order; anything else is reported as ambiguous, never guessed):
1. results whose ticker is exactly the symbol asked for;
2. stocks/ETFs (``STK``) before anything else when both exist;
3. the US primary listing (primary exchange NASDAQ, NYSE, ARCA, AMEX, BATS, ...): if exactly one, it is it;
4. with no US listing, a single remaining listing is it.
A symbol made of digits is taken as a conid, which is how an ambiguous ticker is pinned down.

Bars: a daily bar is stamped when it completes (16:00 New York for US listings, later for others; see
:func:`tradetrail.ibkr.shapes.daily_stamp`), as every source does. The cache remembers which span it holds
completely; a request inside that span, or one where no new session can have closed since the last fetch,
is answered without asking IBKR. Only the missing sessions are fetched otherwise.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

import pandas as pd
from sqlalchemy import Engine

from tradetrail.db.market_models import BarSeries
from tradetrail.db.types import utcnow
from tradetrail.domain.bars import BarsError, validate_bars
from tradetrail.domain.contract import Contract
from tradetrail.ibkr import shapes
from tradetrail.ibkr.client import IbkrSession
from tradetrail.ibkr.errors import IbkrError, IbkrHttpError
from tradetrail.marketdata.bar_cache import DAILY, CachedGatewayBars, DailyBarCache
from tradetrail.marketdata.port import MarketDataError

SOURCE = "ibkr"
MAX_DAYS_PERIOD = 1000  # the largest "d" period IBKR documents; beyond it we ask in years (up to 15)


class UnknownContract(MarketDataError):
    """IBKR has no contract with that id."""


def _listing(entry: dict) -> dict | None:
    """A ``secdef/search`` result (conid as a string) as a listing; None for entries without a contract."""
    try:
        conid = shapes.conid_of(entry.get("conid"))
    except IbkrError:  # an entry without a usable contract id (bonds' issuers and the like): skipped
        return None
    if conid <= 0:
        return None
    sec_types = [s.get("secType") for s in entry.get("sections") or [] if isinstance(s, dict) and s.get("secType")]
    exchange = str(entry.get("description") or "").strip()
    return {"conid": conid, "symbol": str(entry.get("symbol") or "").upper(), "name": entry.get("companyName") or "",
            "sec_type": "STK" if "STK" in sec_types else (sec_types[0] if sec_types else ""),
            "exchange": exchange, "currency": "", "is_us": shapes.is_us(exchange, None),
            "details": {"company_header": entry.get("companyHeader"), "sec_types": sec_types,
                        "restricted": entry.get("restricted")}}


def rank(listings: list[dict], query: str) -> list[dict]:
    """Best first: exact ticker, then stocks, then US listings; IBKR's own order otherwise."""
    q = query.strip().upper()
    order = {id(x): i for i, x in enumerate(listings)}
    return sorted(listings, key=lambda x: (x["symbol"] != q, x["sec_type"] != "STK", not x["is_us"], order[id(x)]))


def choose(listings: list[dict], symbol: str) -> tuple[dict, str]:
    """The one listing ``symbol`` means by the documented rules, and which rule decided; else raise."""
    key = symbol.strip().upper()
    exact = [x for x in listings if x["symbol"] == key]
    if not exact:
        raise MarketDataError(f"IBKR knows no contract with the ticker {key!r}")
    pool = [x for x in exact if x["sec_type"] == "STK"] or exact
    us = [x for x in pool if x["is_us"]]
    if len(us) == 1:
        return us[0], f"US primary listing ({us[0]['exchange']}) of {len(exact)} listing(s)"
    if not us and len(pool) == 1:
        return pool[0], "the only listing"
    options = ", ".join(f"conid {x['conid']} ({x['exchange'] or '?'}, {x['sec_type'] or '?'})" for x in us or pool)
    raise MarketDataError(f"ticker {key!r} is ambiguous at IBKR: {options}; use the conid as the symbol")


class IbkrMarketData(CachedGatewayBars):
    name = SOURCE

    def __init__(self, session: IbkrSession, engine: Engine):
        self.session, self.engine = session, engine
        self.bars = DailyBarCache(engine, SOURCE, "IBKR")

    # -- contracts ---------------------------------------------------------------------------------------
    def search(self, query: str, *, by_name: bool = False) -> list[dict]:
        """``secdef/search`` by ticker (or by company name), ranked best first."""
        params = {"symbol": query.strip(), "secType": "STK"} if not by_name else {"symbol": query.strip(), "name": True}
        try:
            data = self.session.get("iserver/secdef/search", params)
        except IbkrHttpError as exc:
            if exc.status in (400, 404) and "no" in exc.error_text.lower():  # "No symbol found" and the like
                return []
            raise MarketDataError(f"IBKR search for {query!r} failed: {exc}") from None
        except IbkrError as exc:
            raise MarketDataError(f"IBKR search for {query!r} failed: {exc}") from None
        if isinstance(data, dict) and "error" in data:
            return []
        if not isinstance(data, list):
            raise MarketDataError(f"IBKR search for {query!r}: unexpected answer {str(data)[:200]}")
        return rank([x for x in (_listing(e) for e in data if isinstance(e, dict)) if x], query)

    def contract(self, conid: int) -> dict:
        """``/iserver/contract/{conid}/info`` as a listing (UnknownContract if IBKR has no such conid)."""
        try:
            info = self.session.get(f"iserver/contract/{int(conid)}/info")
        except IbkrHttpError as exc:
            if exc.status in (400, 404):
                raise UnknownContract(f"IBKR has no contract {conid}: {exc.error_text or exc.status}") from None
            raise MarketDataError(f"IBKR contract {conid}: {exc}") from None
        except IbkrError as exc:
            raise MarketDataError(f"IBKR contract {conid}: {exc}") from None
        if not isinstance(info, dict) or "error" in info or "con_id" not in info:
            raise UnknownContract(f"IBKR has no contract {conid}: {str(info)[:200]}")
        exchange = str(info.get("exchange") or info.get("listing_exchange") or "")
        currency = str(info.get("currency") or "")
        return {"conid": shapes.conid_of(info["con_id"]), "symbol": str(info.get("symbol") or "").upper(),
                "name": info.get("company_name") or "", "sec_type": info.get("instrument_type") or "",
                "exchange": exchange, "currency": currency, "is_us": shapes.is_us(exchange, currency),
                "details": {k: info.get(k) for k in ("local_symbol", "valid_exchanges", "multiplier",
                                                      "trading_class", "category", "industry") if k in info}}

    def resolve(self, symbol: str) -> Contract:
        key = symbol.strip().upper()
        if key.isdigit():
            listing, rule = self.contract(int(key)), "by conid"
        else:
            chosen, rule = choose(self.search(key), key)
            listing = self.contract(chosen["conid"]) | {"details": chosen["details"]}
            listing["exchange"] = listing["exchange"] or chosen["exchange"]
        return to_contract(listing, rule)

    # -- bars --------------------------------------------------------------------------------------------
    def _fetch(self, conid: int, *, since: datetime, series: BarSeries | None) -> None:
        now = utcnow()
        days = max(1, math.ceil((now - since).total_seconds() / 86400))
        years = min(15, math.ceil(days / 365))
        period = f"{days}d" if days <= MAX_DAYS_PERIOD else f"{years}y"
        covered = now - timedelta(days=days if days <= MAX_DAYS_PERIOD else 365 * years)
        params = {"conid": conid, "bar": DAILY, "period": period, "outsideRth": "false"}
        try:
            data = self.session.get("iserver/marketdata/history", params)
        except IbkrHttpError as exc:
            if "no data" in exc.error_text.lower():
                raise MarketDataError(f"IBKR has no daily bars for conid {conid} over {period} (No data.)") from None
            raise MarketDataError(f"IBKR history for conid {conid}: {exc}") from None
        except IbkrError as exc:
            raise MarketDataError(f"IBKR history for conid {conid}: {exc}") from None
        if not isinstance(data, dict) or not isinstance(data.get("data"), list):
            if isinstance(data, dict) and "no data" in str(data.get("error", "")).lower():
                raise MarketDataError(f"IBKR has no daily bars for conid {conid} over {period} (No data.)")
            raise MarketDataError(f"IBKR history for conid {conid}: unexpected answer {str(data)[:200]}")
        frame = _frame(data["data"], conid)
        frame = frame.loc[frame.index <= pd.Timestamp(now)]  # a session still running is not a bar yet
        meta = {k: data.get(k) for k in ("symbol", "mdAvailability", "mktDataDelay", "volumeFactor", "priceFactor",
                                          "barLength", "timePeriod") if k in data} | {"period": period}
        self.bars.store(conid, frame, now, covered, meta, series)


def _frame(points: list, conid: int) -> pd.DataFrame:
    """History points ``{o, h, l, c, v, t}`` as a bars frame, each stamped when its session completes."""
    try:
        rows = [(shapes.daily_stamp(p["t"]), shapes.num(p["o"]), shapes.num(p["h"]), shapes.num(p["l"]),
                 shapes.num(p["c"]), shapes.num(p.get("v")) or 0.0) for p in points]
    except (KeyError, TypeError) as exc:
        raise MarketDataError(f"IBKR history for conid {conid}: a bar lacks {exc}") from None
    except IbkrError as exc:
        raise MarketDataError(f"IBKR history for conid {conid}: {exc}") from None
    frame = pd.DataFrame([r[1:] for r in rows], columns=["open", "high", "low", "close", "volume"],
                         index=pd.DatetimeIndex([r[0] for r in rows], name="time"))
    frame = frame[~frame.index.duplicated(keep="last")].sort_index()
    try:
        return validate_bars(frame, source=f"IBKR conid {conid}")
    except BarsError as exc:
        raise MarketDataError(str(exc)) from exc


def to_contract(listing: dict, rule: str = "") -> Contract:
    details = dict(listing.get("details") or {})
    if rule:
        details["resolution"] = rule
    return Contract(source=SOURCE, symbol=listing["symbol"], name=listing["name"] or listing["symbol"],
                    sec_type=listing["sec_type"] or "STK", exchange=listing["exchange"],
                    currency=listing["currency"] or "USD", conid=int(listing["conid"]), details=details)
