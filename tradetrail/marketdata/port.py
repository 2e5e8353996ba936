"""Market data port: contracts and daily bars from one source.

Adapters: ``sample`` (real S&P 500 / NASDAQ Composite daily data bundled with the package), ``files`` (a
folder of CSV/Parquet files) and, later, ``ibkr``. Every adapter returns bars in the format of
:mod:`tradetrail.domain.bars`, never a bar after ``as_of``, and raises :class:`MarketDataError` with a clear
message instead of returning something made up.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Protocol

import pandas as pd


class MarketDataError(Exception):
    """The source cannot give what was asked (unknown symbol, unreadable file, no data)."""


@dataclass(frozen=True)
class Contract:
    """What a symbol resolves to at one source. ``conid`` is IBKR's contract id when the source is IBKR."""

    source: str
    symbol: str
    name: str
    sec_type: str = "STK"
    exchange: str = ""
    currency: str = "USD"
    conid: int | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


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
