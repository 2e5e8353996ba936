"""Market data port: contracts and daily bars from one source.

Adapters: ``sample`` (real S&P 500 / NASDAQ Composite daily data bundled with the package), ``files`` (a
folder of CSV/Parquet files) and, later, ``ibkr``. Every adapter returns bars in the format of
:mod:`tradetrail.domain.bars`, never a bar after ``as_of``, and raises :class:`MarketDataError` with a clear
message instead of returning something made up.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

import pandas as pd

from tradetrail.domain.contract import Contract


class MarketDataError(Exception):
    """The source cannot give what was asked (unknown symbol, unreadable file, no data)."""


class MarketData(Protocol):
    """What every market-data adapter implements."""

    name: str

    def resolve(self, symbol: str) -> Contract:
        """The contract for ``symbol``; :class:`MarketDataError` if the source does not know it."""
        ...

    def daily_bars(self, contract: Contract, *, as_of: datetime, lookback: int) -> pd.DataFrame:
        """Up to ``lookback`` most recent daily bars complete at ``as_of`` (oldest first)."""
        ...

    def sessions(self, contract: Contract) -> pd.DatetimeIndex:
        """Every bar time the source has for ``contract`` (used by the replay clock)."""
        ...
