"""The ``files`` adapter: one CSV or Parquet file of daily bars per symbol in a folder.

``<folder>/<SYMBOL>.csv`` (or ``.csv.gz`` / ``.parquet``) with columns date, open, high, low, close, volume
(case-insensitive). Files are re-read when they change on disk, so a nightly export is picked up.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pandas as pd

from tradetrail.domain.contract import Contract
from tradetrail.marketdata.daily_csv import read_daily_table, tail_as_of
from tradetrail.marketdata.port import MarketDataError

SUFFIXES = (".parquet", ".csv", ".csv.gz")


class FilesMarketData:
    """Daily bars from a folder the user controls."""

    name = "files"

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self._cache: dict[Path, tuple[tuple[int, int, int], pd.DataFrame]] = {}

    def _path(self, symbol: str) -> Path:
        if not symbol or any(ch in symbol for ch in "/\\") or symbol.startswith("."):
            raise MarketDataError(f"invalid symbol {symbol!r}")
        for suffix in SUFFIXES:
            candidate = self.folder / f"{symbol}{suffix}"
            if candidate.is_file():
                return candidate
        raise MarketDataError(f"no data file for {symbol!r} in the market data folder (looked for "
                              f"{', '.join(symbol + s for s in SUFFIXES)})")

    def _load(self, symbol: str) -> pd.DataFrame:
        path = self._path(symbol)
        st = path.stat()
        stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
        hit = self._cache.get(path)
        if hit and hit[0] == stamp:
            return hit[1]
        frame = read_daily_table(path)
        self._cache[path] = (stamp, frame)
        return frame

    def resolve(self, symbol: str) -> Contract:
        key = symbol.strip().upper()
        self._path(key)
        return Contract(source="files", symbol=key, name=key)

    def daily_bars(self, contract: Contract, *, as_of: datetime, lookback: int) -> pd.DataFrame:
        return tail_as_of(self._load(contract.symbol), as_of, lookback)

    def sessions(self, contract: Contract) -> pd.DatetimeIndex:
        return self._load(contract.symbol).index
