"""The database cache of a gateway's daily bars (Client Portal and TWS alike): what a source asked the gateway
for once is read back from ``bar_series``/``cached_bars`` until a new session can have closed, so repeated runs
and processes ask nothing. One series per (source, conid); its ``covered_from`` and ``complete_through`` say
what was asked for, not merely what came back.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

import pandas as pd
from sqlalchemy import Engine, delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tradetrail.db.market_models import BarSeries, CachedBar
from tradetrail.db.models import Symbol
from tradetrail.db.types import utcnow
from tradetrail.domain.bars import BarsError, validate_bars
from tradetrail.domain.contract import Contract
from tradetrail.domain.market_hours import next_close_after
from tradetrail.marketdata.port import MarketDataError

DAILY = "1d"


class DailyBarCache:
    """One source's cached daily bars; ``label`` names the source in errors (e.g. "IBKR", "TWS")."""

    def __init__(self, engine: Engine, source: str, label: str):
        self.engine, self.source, self.label = engine, source, label

    def series(self, conid: int) -> BarSeries | None:
        with Session(self.engine, expire_on_commit=False) as s:
            return s.scalar(select(BarSeries).where(BarSeries.source == self.source, BarSeries.key == str(conid),
                                                    BarSeries.bar == DAILY))

    def missing_since(self, series: BarSeries | None, as_of: datetime, lookback: int) -> datetime | None:
        """From when the gateway must be asked so that ``lookback`` bars up to ``as_of`` are here (None: they
        are): everything when the series does not reach back far enough, else from a few days before its last
        bar once a session has closed since it was completed."""
        needed_from = as_of - timedelta(days=math.ceil(lookback * 7 / 5) + 7)
        if series is None or series.covered_from > needed_from:
            return needed_from
        if as_of > series.complete_through and next_close_after(series.complete_through) <= as_of:
            last = self._last_bar_time(series.id) or series.covered_from
            return min(last, as_of) - timedelta(days=3)
        return None

    def store(self, conid: int, frame: pd.DataFrame, now: datetime, covered: datetime, meta: dict,
              series: BarSeries | None) -> None:
        with Session(self.engine, expire_on_commit=False) as s:
            row = s.get(BarSeries, series.id) if series is not None else None
            if row is None:
                row = BarSeries(source=self.source, key=str(conid), bar=DAILY, covered_from=covered,
                                complete_through=now, meta=meta)
                s.add(row)
                s.flush()
            if len(frame):
                s.execute(delete(CachedBar).where(CachedBar.series_id == row.id,
                                                  CachedBar.time >= frame.index[0].to_pydatetime(),
                                                  CachedBar.time <= frame.index[-1].to_pydatetime()))
                s.add_all(CachedBar(series_id=row.id, time=ts.to_pydatetime(), open=float(r.open), high=float(r.high),
                                    low=float(r.low), close=float(r.close), volume=float(r.volume))
                          for ts, r in frame.iterrows())
            row.covered_from = min(row.covered_from, covered)
            row.complete_through, row.fetched_at, row.meta = max(row.complete_through, now), now, meta
            try:
                s.commit()
            except IntegrityError:  # another process stored the same bars a moment ago: theirs are as good
                s.rollback()

    def _last_bar_time(self, series_id: int) -> datetime | None:
        with Session(self.engine) as s:
            return s.scalar(select(CachedBar.time).where(CachedBar.series_id == series_id)
                            .order_by(CachedBar.time.desc()).limit(1))

    def read(self, conid: int, as_of: datetime, lookback: int) -> pd.DataFrame:
        """The last ``lookback`` cached bars up to ``as_of``, validated (MarketDataError when they are not)."""
        with Session(self.engine) as s:
            series_id = s.scalar(select(BarSeries.id).where(BarSeries.source == self.source,
                                                            BarSeries.key == str(conid), BarSeries.bar == DAILY))
            rows = s.execute(select(CachedBar.time, CachedBar.open, CachedBar.high, CachedBar.low, CachedBar.close,
                                    CachedBar.volume).where(CachedBar.series_id == series_id, CachedBar.time <= as_of)
                             .order_by(CachedBar.time.desc()).limit(lookback)).all()
        frame = pd.DataFrame([r[1:] for r in reversed(rows)], columns=["open", "high", "low", "close", "volume"],
                             index=pd.DatetimeIndex([pd.Timestamp(r[0]) for r in reversed(rows)], name="time"))
        if frame.index.tz is None:
            frame.index = frame.index.tz_localize("UTC")
        try:
            return validate_bars(frame, source=f"{self.label} conid {conid}")
        except BarsError as exc:
            raise MarketDataError(str(exc)) from exc


class CachedGatewayBars:
    """What a gateway's market-data adapter shares: daily bars read through :class:`DailyBarCache`, asking the
    gateway (``_fetch``, the adapter's own) only for what is missing; a contract without a conid found through
    the symbol cache (or resolved). The adapter sets ``name``, ``engine``, ``bars`` and implements ``resolve``
    and ``_fetch(conid, since=, series=)``."""

    name: str
    engine: Engine
    bars: DailyBarCache

    def daily_bars(self, contract: Contract, *, as_of: datetime, lookback: int) -> pd.DataFrame:
        conid = contract.conid or self._conid_for(contract.symbol)
        series = self.bars.series(conid)
        since = self.bars.missing_since(series, as_of, lookback)
        if since is not None:
            self._fetch(conid, since=since, series=series)
        return self.bars.read(conid, as_of, lookback)

    def sessions(self, contract: Contract) -> pd.DatetimeIndex:
        return self.daily_bars(contract, as_of=utcnow(), lookback=3000).index

    def _conid_for(self, symbol: str) -> int:
        with Session(self.engine) as s:
            conid = s.scalar(select(Symbol.conid).where(Symbol.source == self.name, Symbol.symbol == symbol.upper()))
        return int(conid) if conid else int(self.resolve(symbol).conid)
