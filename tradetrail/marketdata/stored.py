"""Market data from bars already stored (a backtest's ``bars_daily`` artifact), for re-running one of its
sessions through the live steps: every stored bar up to ``as_of``, whatever ``lookback`` asks, so the
indicators are seeded on the same first bar as the backtest's (the rules and plug-ins compute over the whole
series); or, ``windowed``, the last ``lookback`` of them as a live source answers, which is what a backtest
with the model analyst built each session's request from. Contracts come from the source the bars were
loaded from; this adapter carries its name, so the symbol cache and the simulator's books read alike.
"""

from __future__ import annotations

from datetime import datetime

import pandas as pd

from tradetrail.domain.contract import Contract
from tradetrail.marketdata.port import MarketData, MarketDataError


class StoredBars:
    """Daily bars of one symbol held in memory; any other symbol is not known here."""

    def __init__(self, origin: MarketData, symbols: set[str], bars: pd.DataFrame, *, windowed: bool = False):
        """``symbols``: the names the bars' instrument goes by (the strategy's symbol, the contract's)."""
        self.name = origin.name
        self._origin = origin
        self._symbols = {s.upper() for s in symbols}
        self._bars = bars
        self.windowed = windowed

    def _check(self, symbol: str) -> None:
        if symbol.upper() not in self._symbols:
            raise MarketDataError(f"the stored bars are of {'/'.join(sorted(self._symbols))}, not {symbol}")

    def resolve(self, symbol: str) -> Contract:
        self._check(symbol)
        return self._origin.resolve(symbol)

    def daily_bars(self, contract: Contract, *, as_of: datetime, lookback: int) -> pd.DataFrame:
        """Every stored bar complete at ``as_of`` (``lookback`` is ignored: the window is the stored one), or
        the last ``lookback`` of them when ``windowed``."""
        self._check(contract.symbol)
        bars = self._bars.loc[self._bars.index <= pd.Timestamp(as_of)]
        return bars.iloc[-lookback:] if self.windowed and lookback > 0 else bars

    def sessions(self, contract: Contract) -> pd.DatetimeIndex:
        self._check(contract.symbol)
        return self._bars.index
