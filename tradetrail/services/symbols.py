"""The symbol cache: what a symbol resolved to, kept for 7 days.

A fresh row is served without asking the source. A stale row is refreshed from the source; if the source
is down, the stale row is served and marked ``stale`` so lineage shows it. A symbol never seen and a
source that is down is an error, never a guess.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tradetrail.db.models import Symbol
from tradetrail.db.types import utcnow
from tradetrail.marketdata.port import Contract, MarketData, MarketDataError

TTL = timedelta(days=7)


@dataclass(frozen=True)
class Resolved:
    contract: Contract
    cache: str  # hit | miss | refreshed | stale
    fetched_at: str
    note: str = ""


def _contract(row: Symbol) -> Contract:
    return Contract(source=row.source, symbol=row.symbol, name=row.name, sec_type=row.sec_type,
                    exchange=row.exchange, currency=row.currency, conid=row.conid, details=row.details or {})


def resolve_symbol(session: Session, source: MarketData, symbol: str) -> Resolved:
    key = symbol.strip().upper()
    row = session.scalar(select(Symbol).where(Symbol.source == source.name, Symbol.symbol == key))
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
    row.conid, row.name, row.sec_type = contract.conid, contract.name, contract.sec_type
    row.exchange, row.currency, row.details, row.fetched_at = (contract.exchange, contract.currency,
                                                               contract.details, now)
    try:
        session.commit()
    except IntegrityError:  # another run cached the same symbol a moment ago: theirs is as good as ours
        session.rollback()
        row = session.scalar(select(Symbol).where(Symbol.source == source.name, Symbol.symbol == key))
        return Resolved(_contract(row), "hit", row.fetched_at.isoformat(), note="cached concurrently by another run")
    return Resolved(contract, status, now.isoformat())
