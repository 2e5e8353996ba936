"""The ``sample`` adapter: real daily data bundled with the package, so a fresh install has a market.

Series: ``SPX`` (S&P 500 index) and ``COMP`` (NASDAQ Composite), daily OHLCV 1999-01-04 to 2018-12-31,
taken from the PyPI package ``arch`` (Kevin Sheppard, NCSA licence); ``scripts/make_sample_data.py``
regenerates the files. Each series is there as a gzipped CSV (readable, diffable) and as Parquet with the same
bars, which is what is read: the dates already parsed, it loads in a fraction of the CSV's time (a backtest
counts loading its data).
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from pathlib import Path

import pandas as pd

from tradetrail.domain.contract import Contract
from tradetrail.marketdata.daily_csv import read_daily_table, tail_as_of
from tradetrail.marketdata.port import MarketDataError

DATA_DIR = Path(__file__).with_name("data")
SERIES = {
    "SPX": Contract(source="sample", symbol="SPX", name="S&P 500 Index", sec_type="IND", exchange="CBOE"),
    "COMP": Contract(source="sample", symbol="COMP", name="NASDAQ Composite Index", sec_type="IND",
                     exchange="NASDAQ"),
}


@lru_cache(maxsize=len(SERIES))
def load_sample_daily(symbol: str) -> pd.DataFrame:
    """The whole bundled daily series for ``symbol`` (parsed once per process; treat as read-only)."""
    if symbol not in SERIES:
        raise MarketDataError(f"the sample data has no symbol {symbol!r}; it has {sorted(SERIES)}")
    return read_daily_table(DATA_DIR / f"{symbol}.parquet")


class SampleMarketData:
    """Bundled historical data; with a replay clock it behaves like a market that moves one session a run."""

    name = "sample"
    listed = SERIES  # every series it has, for a symbol search without a search of its own

    def resolve(self, symbol: str) -> Contract:
        key = symbol.strip().upper()
        if key not in SERIES:
            raise MarketDataError(f"the sample data has no symbol {symbol!r}; it has {sorted(SERIES)}")
        return SERIES[key]

    def daily_bars(self, contract: Contract, *, as_of: datetime, lookback: int) -> pd.DataFrame:
        return tail_as_of(load_sample_daily(contract.symbol), as_of, lookback)

    def sessions(self, contract: Contract) -> pd.DatetimeIndex:
        return load_sample_daily(contract.symbol).index
