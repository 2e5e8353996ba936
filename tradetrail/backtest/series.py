"""The series a backtest runs over: the bars, the configured indicators computed once over all of them, and
the per-session analysis request exactly as a live run on that session builds it (its weekly bars and their
indicators computed only when something reads them).

The indicators are causal (row t uses bars up to t only), so row t of the whole series is what a run seeded
at the same first bar sees on session t. The bars start where a live run on the first tested session would
start its window (``market_data.lookback_days`` bars back), so the first tested session sees exactly what a
live run would see; a live run later in the range fetches a window that starts later, which moves recursive
indicators (EMA, ATR, RSI, MACD) in digits far below the ones kept (see docs/backtest.md).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd

from tradetrail.analyst.port import AnalysisRequest, AnalysisSeries
from tradetrail.domain.bars import resample_weekly
from tradetrail.domain.confirmation import Confirmation, confirm
from tradetrail.domain.indicators import compute_indicators, indicator_arrays, latest_values, values_at
from tradetrail.domain.market_hours import EXCHANGE_TZ_NAME
from tradetrail.schemas.strategy import StrategyConfig


class LazyTimeframes(Mapping):
    """``{"daily": ..., "weekly": ...}`` where the weekly value is computed on first read."""

    def __init__(self, daily: object, weekly: callable | None):
        self._daily, self._weekly, self._cache = daily, weekly, {}

    def __getitem__(self, key: str):
        if key == "daily":
            return self._daily
        if key == "weekly" and self._weekly is not None:
            if "weekly" not in self._cache:
                self._cache["weekly"] = self._weekly()
            return self._cache["weekly"]
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return iter(("daily", "weekly") if self._weekly is not None else ("daily",))

    def __len__(self) -> int:
        return 2 if self._weekly is not None else 1


@dataclass
class Series:
    """One instrument's daily bars for a backtest and what every session's decision reads from them."""

    config: StrategyConfig
    symbol: str
    bars: pd.DataFrame

    def __post_init__(self) -> None:
        self.columns = indicator_arrays(self.bars, self.config.indicators)
        self.open = self.bars["open"].to_numpy(dtype=np.float64)
        self.high = self.bars["high"].to_numpy(dtype=np.float64)
        self.low = self.bars["low"].to_numpy(dtype=np.float64)
        self.close = self.bars["close"].to_numpy(dtype=np.float64)
        self.times = self.bars.index
        self._weekly_memo: dict[int, tuple[dict, Confirmation]] = {}

    @cached_property
    def _days(self) -> np.ndarray:
        return np.asarray(self.times.tz_convert(EXCHANGE_TZ_NAME).tz_localize(None), dtype="datetime64[D]")

    def day(self, t: int) -> str:
        """Session t's exchange date (ISO)."""
        return str(self._days[t])

    def __len__(self) -> int:
        return len(self.bars)

    @cached_property
    def indicators(self) -> pd.DataFrame:
        """The indicator columns as the frame ``compute_indicators`` returns (for analysts that read one)."""
        return pd.DataFrame(self.columns, index=self.bars.index, dtype=np.float64)

    # -- what a live run on session t sees ----------------------------------------------------------------
    def latest(self, t: int) -> dict[str, float | None]:
        return values_at(self.columns, self.close, t)

    @property
    def weekly_configured(self) -> bool:
        return self.config.market_data.confirmation_timeframe == "weekly"

    def weekly(self, t: int) -> tuple[dict, Confirmation]:
        """The weekly bars as of session t (the week in progress ends at t), their latest indicator values
        and 3-of-4 confirmation, as fetch_market_data and compute_indicators produce them."""
        if t not in self._weekly_memo:
            weekly = resample_weekly(self.bars.iloc[:t + 1])
            frame = compute_indicators(weekly, self.config.indicators)
            latest = latest_values(frame, weekly)
            self._weekly_memo[t] = (latest, confirm(latest))
        return self._weekly_memo[t]

    @cached_property
    def weekly_counts(self) -> np.ndarray:
        """How many weekly bars a run on session t would resample (weeks ending on a Friday, exchange time)."""
        week = self.times.tz_convert(EXCHANGE_TZ_NAME).tz_localize(None).to_period("W-FRI")
        codes = np.asarray(week.asi8)
        return np.cumsum(np.concatenate(([1], (codes[1:] != codes[:-1]).astype(np.int64)))) if len(codes) else codes

    def request(self, t: int) -> AnalysisRequest:
        """The analysis request of session t (no prompts or charts: the rules and plug-in analysts read
        neither; the model analyst's backtest path renders its own)."""
        daily = self.latest(t)
        conf = confirm(daily)
        weekly = (lambda: self.weekly(t)) if self.weekly_configured else None
        indicators = LazyTimeframes(daily, (lambda: weekly()[0]) if weekly else None)
        confirmation = LazyTimeframes(conf.to_dict(), (lambda: weekly()[1].to_dict()) if weekly else None)
        return AnalysisRequest(symbol=self.symbol, as_of=self.times[t].isoformat(), system_prompt="",
                               timeframe_prompts={}, images=[], indicators=indicators,  # type: ignore[arg-type]
                               confirmation=confirmation, prompt_hash="",  # type: ignore[arg-type]
                               bars=LazyTimeframes(self.bars.iloc[:t + 1],  # type: ignore[arg-type]
                                                   (lambda: resample_weekly(self.bars.iloc[:t + 1])) if weekly
                                                   else None))

    def analysis_series(self) -> AnalysisSeries:
        return AnalysisSeries(symbol=self.symbol, bars=self.bars, indicators=self.indicators, request=self.request,
                              columns=self.columns)
