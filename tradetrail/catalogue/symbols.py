"""The symbol cache: what a symbol resolved to, and every listing seen, kept for 7 days.

A fresh row is served without asking the source. A stale row is refreshed from the source; if the source
is down, the stale row is served and marked ``stale`` so lineage shows it. A symbol never seen and a
source that is down is an error, never a guess.

Two tables: ``symbols`` maps what a strategy asks for (source, symbol) to one contract; ``symbol_listings``
holds listings by contract id (IBKR: several listings per ticker, and lookups by conid). Search answers are
kept too (``symbol_searches``), so a repeated search asks nobody. Which listing a bare ticker means at IBKR
is decided by :func:`tradetrail.ibkr.marketdata.choose` (US primary listing first; ambiguity is reported).
The functions below return plain JSON-able values for the CLI and the REST API.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import bindparam, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tradetrail.db.market_models import BarSeries, CachedBar, SymbolListing, SymbolSearch
from tradetrail.db.models import Symbol
from tradetrail.db.types import utcnow
from tradetrail.domain.contract import Contract
from tradetrail.domain.errors import NotFound
from tradetrail.marketdata.port import MarketData, MarketDataError

TTL = timedelta(days=7)


@dataclass(frozen=True)
class Resolved:
    contract: Contract
    cache: str  # hit | miss | refreshed | stale
    fetched_at: str
    note: str = ""


def _contract(row: Symbol) -> Contract:
    details = dict(row.details or {})
    ticker = details.pop("ticker", None)  # a symbol given as a conid resolves to a ticker of its own
    return Contract(source=row.source, symbol=ticker or row.symbol, name=row.name, sec_type=row.sec_type,
                    exchange=row.exchange, currency=row.currency, conid=row.conid, details=details)


_CACHED = select(Symbol).where(Symbol.source == bindparam("source"), Symbol.symbol == bindparam("symbol"))  # built once


def resolve_symbol(session: Session, source: MarketData, symbol: str) -> Resolved:
    key = symbol.strip().upper()
    row = session.scalar(_CACHED, {"source": source.name, "symbol": key})
    now = utcnow()
    if row is not None and now - row.fetched_at < TTL:
        return Resolved(_contract(row), "hit", row.fetched_at.isoformat())
    try:
        contract = source.resolve(key)
    except MarketDataError as exc:
        if row is None:
            raise
        return Resolved(_contract(row), "stale", row.fetched_at.isoformat(),
                        note=f"source unavailable ({exc}); serving the cached row from {row.fetched_at:%Y-%m-%d}")
    status = "miss" if row is None else "refreshed"
    if row is None:
        row = Symbol(source=source.name, symbol=key)
        session.add(row)
    details = dict(contract.details) | ({"ticker": contract.symbol} if contract.symbol != key else {})
    row.conid, row.name, row.sec_type = contract.conid, contract.name, contract.sec_type
    row.exchange, row.currency, row.details, row.fetched_at = (contract.exchange, contract.currency, details, now)
    try:
        session.commit()
    except IntegrityError:  # another run cached the same symbol a moment ago: theirs is as good as ours
        session.rollback()
        row = session.scalar(select(Symbol).where(Symbol.source == source.name, Symbol.symbol == key))
        return Resolved(_contract(row), "hit", row.fetched_at.isoformat(), note="cached concurrently by another run")
    if contract.conid is not None:
        _store_listings(session, source.name, [_listing_of(contract)], complete=True)
    return Resolved(contract, status, now.isoformat())


# -- listings -----------------------------------------------------------------------------------------------
def _listing_of(contract: Contract) -> dict:
    from tradetrail.ibkr.shapes import is_us

    return {"conid": contract.conid, "symbol": contract.symbol, "name": contract.name, "sec_type": contract.sec_type,
            "exchange": contract.exchange, "currency": contract.currency,
            "is_us": is_us(contract.exchange, contract.currency), "details": dict(contract.details)}


def _store_listings(s: Session, source: str, listings: list[dict], *, complete: bool) -> None:
    """Upsert by conid; a search result (no currency) never blanks what a contract lookup filled in."""
    now = utcnow()
    for item in listings:
        row = s.scalar(select(SymbolListing).where(SymbolListing.source == source,
                                                   SymbolListing.conid == item["conid"]))
        if row is None:
            row = SymbolListing(source=source, conid=item["conid"], details={})
            s.add(row)
        for key in ("symbol", "name", "sec_type", "exchange", "currency"):
            if item.get(key) or getattr(row, key) is None:
                setattr(row, key, (item.get(key) or "")[:200 if key == "name" else 32])
        row.is_us = bool(item.get("is_us")) if complete or row.details.get("from") != "contract" else row.is_us
        details = dict(row.details or {}) | dict(item.get("details") or {})
        if complete:
            details["from"] = "contract"
        details.setdefault("from", "search")
        row.details, row.fetched_at = details, now
    try:
        s.commit()
    except IntegrityError:  # a concurrent search stored the same listing: keep theirs
        s.rollback()


def _listing_dict(row: SymbolListing, cache: str) -> dict:
    stale = utcnow() - row.fetched_at >= TTL
    return {"source": row.source, "conid": row.conid, "symbol": row.symbol, "name": row.name,
            "sec_type": row.sec_type, "exchange": row.exchange, "currency": row.currency, "is_us": row.is_us,
            "details": row.details, "fetched_at": row.fetched_at.isoformat(), "stale": stale,
            "cache": "stale" if stale and cache == "hit" else cache}


def _listings(s: Session, source: str, conids: list[int]) -> list[SymbolListing]:
    rows = {r.conid: r for r in s.scalars(select(SymbolListing).where(SymbolListing.source == source,
                                                                      SymbolListing.conid.in_(conids)))}
    return [rows[c] for c in conids if c in rows]


def _local_search(app, md: MarketData, query: str, limit: int) -> list[dict]:
    """Sources without a search of their own (sample, files): their symbols by ticker or name."""
    q = query.strip().upper()
    candidates = [q]
    listed = getattr(md, "listed", None)  # a source with a fixed list of series (the bundled sample)
    if listed is not None:
        candidates = [k for k, c in listed.items() if q in k or q in c.name.upper()]
    out = []
    for symbol in candidates[:limit]:
        with app.Session() as s:
            try:
                got = resolve_symbol(s, md, symbol)
            except MarketDataError:
                continue
        c = got.contract
        out.append({"source": md.name, "conid": c.conid, "symbol": c.symbol, "name": c.name, "sec_type": c.sec_type,
                    "exchange": c.exchange, "currency": c.currency, "is_us": c.currency == "USD", "details": c.details,
                    "fetched_at": got.fetched_at, "stale": got.cache == "stale", "cache": got.cache})
    return out


def search_symbols(app, query: str, *, source: str | None = None, limit: int = 20) -> list[dict]:
    """Listings matching a ticker or a company name, best first (exact ticker, stocks, US primary listing
    first); answered from the cache when the same query was asked within 7 days. IBKR down: the cached
    answer is served, marked stale; never cached and down: MarketDataError."""
    md = app.market_data(source)
    q = query.strip()
    if not q:
        raise ValueError("empty search")
    if not hasattr(md, "search"):
        return _local_search(app, md, q, limit)
    key = q.upper()[:100]
    with app.Session() as s:
        cached = s.scalar(select(SymbolSearch).where(SymbolSearch.source == md.name, SymbolSearch.query == key))
        if cached is not None and utcnow() - cached.fetched_at < TTL:
            return [_listing_dict(r, "hit") for r in _listings(s, md.name, cached.conids)][:limit]
    try:
        found = md.search(q)
        if not any(x["symbol"] == key for x in found):  # not a ticker: try it as a company name
            seen = {x["conid"] for x in found}
            found += [x for x in md.search(q, by_name=True) if x["conid"] not in seen]
    except MarketDataError:
        if cached is None:
            raise
        with app.Session() as s:
            return [_listing_dict(r, "stale") | {"stale": True} for r in _listings(s, md.name, cached.conids)][:limit]
    with app.Session() as s:
        _store_listings(s, md.name, found, complete=False)
        row = s.scalar(select(SymbolSearch).where(SymbolSearch.source == md.name, SymbolSearch.query == key))
        if row is None:
            row = SymbolSearch(source=md.name, query=key)
            s.add(row)
        row.conids, row.fetched_at = [x["conid"] for x in found], utcnow()
        try:
            s.commit()
        except IntegrityError:
            s.rollback()
        return [_listing_dict(r, "miss") for r in _listings(s, md.name, [x["conid"] for x in found])][:limit]


def contract_by_conid(app, conid: int, *, source: str | None = None) -> dict:
    """One contract by its id, from the cache when fresh; NotFound if the source has no such contract."""
    md = app.market_data(source)
    if not hasattr(md, "contract"):
        raise NotFound(f"the {md.name} market data has no contract ids")
    with app.Session() as s:
        row = s.scalar(select(SymbolListing).where(SymbolListing.source == md.name, SymbolListing.conid == int(conid)))
        if row is not None and row.details.get("from") == "contract" and utcnow() - row.fetched_at < TTL:
            return _listing_dict(row, "hit")
    from tradetrail.ibkr.marketdata import UnknownContract

    try:
        listing = md.contract(int(conid))
    except UnknownContract as exc:
        raise NotFound(str(exc)) from None
    except MarketDataError:
        if row is None:
            raise
        return _listing_dict(row, "stale") | {"stale": True}
    with app.Session() as s:
        _store_listings(s, md.name, [listing], complete=True)
        row = s.scalar(select(SymbolListing).where(SymbolListing.source == md.name, SymbolListing.conid == int(conid)))
        return _listing_dict(row, "miss" if row.details.get("from") == "contract" else "refreshed")


def cache_conids(app, conids: list[int], *, source: str | None = None) -> dict:
    """Cache several contracts by id; reports, per conid, whether it is now cached or why not."""
    cached, failed = [], {}
    for conid in dict.fromkeys(int(c) for c in conids):
        try:
            got = contract_by_conid(app, conid, source=source)
        except (NotFound, MarketDataError) as exc:
            failed[str(conid)] = str(exc)
            continue
        if got["stale"]:
            failed[str(conid)] = "source unavailable; only a stale cached row exists"
        else:
            cached.append({"conid": conid, "symbol": got["symbol"], "cache": got["cache"]})
    return {"requested": len(cached) + len(failed), "cached": cached, "failed": failed}


def refresh_stale(app, *, source: str | None = None, limit: int = 100) -> dict:
    """Refresh up to ``limit`` entries older than the TTL (symbols first, then listings), oldest first."""
    md = app.market_data(source)
    cutoff = utcnow() - TTL
    refreshed, failed = [], {}
    with app.Session() as s:
        symbols = s.scalars(select(Symbol.symbol).where(Symbol.source == md.name, Symbol.fetched_at <= cutoff)
                            .order_by(Symbol.fetched_at).limit(limit)).all()
    for symbol in symbols:
        with app.Session() as s:
            got = resolve_symbol(s, md, symbol)
        if got.cache == "refreshed":
            refreshed.append(symbol)
        else:
            failed[symbol] = got.note or got.cache
    if hasattr(md, "contract") and len(refreshed) + len(failed) < limit:
        with app.Session() as s:
            conids = s.scalars(select(SymbolListing.conid).where(
                SymbolListing.source == md.name, SymbolListing.fetched_at <= cutoff)
                .order_by(SymbolListing.fetched_at).limit(limit - len(refreshed) - len(failed))).all()
        for conid in conids:
            got = cache_conids(app, [conid], source=md.name)
            if got["cached"]:
                refreshed.append(str(conid))
            else:
                failed.update(got["failed"])
    with app.Session() as s:
        remaining = (s.scalar(select(func.count()).select_from(Symbol).where(
            Symbol.source == md.name, Symbol.fetched_at <= utcnow() - TTL)) or 0) + (s.scalar(
            select(func.count()).select_from(SymbolListing).where(
                SymbolListing.source == md.name, SymbolListing.fetched_at <= utcnow() - TTL)) or 0)
    return {"source": md.name, "refreshed": refreshed, "failed": failed, "remaining_stale": remaining}


def cache_stats(app) -> dict:
    """What the caches hold: contracts in total, by asset type, stale ones, the top exchanges; per source;
    and the bar cache."""
    cutoff = utcnow() - TTL
    with app.Session() as s:
        listings = s.execute(select(SymbolListing.source, SymbolListing.conid, SymbolListing.sec_type,
                                    SymbolListing.exchange, SymbolListing.fetched_at)).all()
        symbols = s.execute(select(Symbol.source, Symbol.conid, Symbol.sec_type, Symbol.exchange,
                                   Symbol.fetched_at)).all()
        series = s.scalar(select(func.count()).select_from(BarSeries)) or 0
        bars = s.scalar(select(func.count()).select_from(CachedBar)) or 0
    known = {(r.source, r.conid) for r in listings}
    entries = list(listings) + [r for r in symbols if r.conid is None or (r.source, r.conid) not in known]
    return {"total": len(entries),
            "by_asset_type": dict(Counter(r.sec_type or "?" for r in entries).most_common()),
            "stale": sum(1 for r in entries if r.fetched_at <= cutoff),
            "top_exchanges": [{"exchange": ex or "?", "count": n}
                              for ex, n in Counter(r.exchange for r in entries).most_common(10)],
            "by_source": dict(Counter(r.source for r in entries).most_common()),
            "resolved_symbols": len(symbols), "ttl_days": TTL.days,
            "bars": {"series": series, "bars": bars}}
