"""Market-data caches: listings by contract id, search results, and daily bars.

``symbols`` (in :mod:`tradetrail.db.models`) maps what a strategy asks for to one contract; IBKR needs more:
one ticker has several listings, and contracts are looked up by conid. Bars are cached per series so
repeated runs do not ask the source again for sessions it already delivered.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, Float, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from tradetrail.db.models import Base
from tradetrail.db.types import utcnow


class SymbolListing(Base):
    """One listing (contract) at a source, by its contract id; fresh for 7 days like the symbol cache."""

    __tablename__ = "symbol_listings"
    __table_args__ = (UniqueConstraint("source", "conid", name="uq_symbol_listings_source_conid"),
                      Index("ix_symbol_listings_source_symbol", "source", "symbol"))
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source: Mapped[str] = mapped_column(String(32))
    conid: Mapped[int] = mapped_column(BigInteger)
    symbol: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(200), default="")
    sec_type: Mapped[str] = mapped_column(String(16), default="")
    exchange: Mapped[str] = mapped_column(String(32), default="")
    currency: Mapped[str] = mapped_column(String(8), default="")
    is_us: Mapped[bool] = mapped_column(Boolean, default=False)
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    fetched_at: Mapped[datetime] = mapped_column(default=utcnow)


class SymbolSearch(Base):
    """What a search query returned (listing conids, best first), so a repeated search asks nobody."""

    __tablename__ = "symbol_searches"
    __table_args__ = (UniqueConstraint("source", "query", name="uq_symbol_searches_source_query"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source: Mapped[str] = mapped_column(String(32))
    query: Mapped[str] = mapped_column(String(100))
    conids: Mapped[list[Any]] = mapped_column(default=list)
    fetched_at: Mapped[datetime] = mapped_column(default=utcnow)


class BarSeries(Base):
    """A cached bar series: which span the source has delivered completely (``covered_from`` to
    ``complete_through``), so a request inside it is answered from the cache."""

    __tablename__ = "bar_series"
    __table_args__ = (UniqueConstraint("source", "key", "bar", name="uq_bar_series_source_key_bar"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source: Mapped[str] = mapped_column(String(32))
    key: Mapped[str] = mapped_column(String(64))
    bar: Mapped[str] = mapped_column(String(8))
    covered_from: Mapped[datetime]
    complete_through: Mapped[datetime]
    fetched_at: Mapped[datetime] = mapped_column(default=utcnow)
    meta: Mapped[dict[str, Any]] = mapped_column(default=dict)


class CachedBar(Base):
    """One complete bar of a series (stamped when it completed, as in :mod:`tradetrail.domain.bars`)."""

    __tablename__ = "cached_bars"
    series_id: Mapped[int] = mapped_column(ForeignKey("bar_series.id", ondelete="CASCADE"), primary_key=True)
    time: Mapped[datetime] = mapped_column(primary_key=True)
    open: Mapped[float] = mapped_column(Float)
    high: Mapped[float] = mapped_column(Float)
    low: Mapped[float] = mapped_column(Float)
    close: Mapped[float] = mapped_column(Float)
    volume: Mapped[float] = mapped_column(Float)
