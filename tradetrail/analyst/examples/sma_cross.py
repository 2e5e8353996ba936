"""SmaCross: a moving-average crossover as an analyst plug-in (``tradetrail.analyst.examples.sma_cross:SmaCross``).

BUY on the session the fast SMA of the daily closes closes above the slow one, SELL on the session it closes
below, HOLD otherwise. The entry is the last close and there is no stop or target: it is meant for strategies
without protective orders (``orders.protective: none`` with ``risk.sizing: fixed``), where a SELL closes the
position. The whole-series method gives the same answers as :meth:`SmaCross.analyze` session by session: both
take the SMAs from ``talib.SMA`` over the bars from the same first one, so every value is computed the same way.
"""

from __future__ import annotations

import math

import numpy as np
import talib

from tradetrail.analyst.port import AnalysisFailed, AnalysisRequest, AnalysisResult, AnalysisSeries, SeriesAnswers
from tradetrail.analyst.schema import AnalystAnswer

PERIODS = (2, 1000)
ACTIONS = np.array(["", "BUY", "SELL", "HOLD"], dtype="<U4")  # a session's action by code


def _period(label: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not PERIODS[0] <= value <= PERIODS[1]:
        raise ValueError(f"{label} must be a whole number of sessions from {PERIODS[0]} to {PERIODS[1]}, "
                         f"got {value!r}")
    return value


class SmaCross:
    name = "sma_cross"

    def __init__(self, fast: int = 10, slow: int = 30):
        self.fast, self.slow = _period("fast", fast), _period("slow", slow)
        if self.fast >= self.slow:
            raise ValueError(f"fast ({fast}) must be shorter than slow ({slow})")

    def bars_needed(self) -> int:
        """The slow SMA on this session and on the one before."""
        return self.slow + 1

    def _smas(self, close: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return talib.SMA(close, timeperiod=self.fast), talib.SMA(close, timeperiod=self.slow)

    def analyze(self, request: AnalysisRequest) -> AnalysisResult:
        bars = request.bars.get("daily")
        count = 0 if bars is None else len(bars)
        if count < self.bars_needed():
            raise AnalysisFailed(f"{self.name} needs {self.bars_needed()} daily bars, got {count}")
        close = bars["close"].to_numpy(dtype=float)
        fast, slow = self._smas(close)
        return self._result(close[-1], fast[-1], slow[-1], fast[-2], slow[-2])

    def analyze_series(self, series: AnalysisSeries) -> SeriesAnswers:
        """Every session's action in one pass ("" where fewer than :meth:`bars_needed` bars lead up to it)."""
        close = series.bars["close"].to_numpy(dtype=float)
        fast, slow = self._smas(close)
        codes = np.zeros(len(close), dtype=np.intp)  # indices into ACTIONS: "" until decided
        if len(close) >= 2:
            now_f, now_s, prev_f, prev_s = fast[1:], slow[1:], fast[:-1], slow[:-1]
            known = np.isfinite(now_f) & np.isfinite(now_s) & np.isfinite(prev_f) & np.isfinite(prev_s)
            known[:self.slow - 1] = False  # as analyze: not before slow + 1 bars (row t is known[t - 1])
            buy = (now_f > now_s) & ~(prev_f > prev_s)
            sell = (now_f < now_s) & ~(prev_f < prev_s)
            codes[1:] = np.where(known, np.where(buy, 1, np.where(sell, 2, 3)), 0)
        actions = ACTIONS[codes]

        def result(t: int) -> AnalysisResult:
            if t + 1 < self.bars_needed():
                raise AnalysisFailed(f"{self.name} needs {self.bars_needed()} daily bars, got {t + 1}")
            return self._result(close[t], fast[t], slow[t], fast[t - 1], slow[t - 1])

        return SeriesAnswers(actions=actions, result=result)

    def _result(self, close: float, fast: float, slow: float, prev_fast: float, prev_slow: float) -> AnalysisResult:
        values = list(map(float, (close, fast, slow, prev_fast, prev_slow)))
        if not all(map(math.isfinite, values)):
            raise AnalysisFailed(f"{self.name}: the close or an SMA is not a finite number", {"values": values})
        close, fast, slow, prev_fast, prev_slow = values
        f, s = f"SMA{self.fast}", f"SMA{self.slow}"
        now = f"{f} {fast:.6g} vs {s} {slow:.6g}"
        before = f"previous session {f} {prev_fast:.6g} vs {s} {prev_slow:.6g}"
        if fast > slow and not prev_fast > prev_slow:
            action, how = "BUY", f"{f} closed above {s}"
        elif fast < slow and not prev_fast < prev_slow:
            action, how = "SELL", f"{f} closed below {s}"
        else:
            action, how = "HOLD", "no crossing this session"
        trend = "bullish" if fast > slow else "bearish" if fast < slow else "neutral"
        entry = close if action != "HOLD" else None
        try:
            answer = AnalystAnswer(action=action, confidence=100, trend=trend, entry=entry, stop_loss=None,
                                   take_profit=None, key_factors=[how, now, before],
                                   reasoning=f"{how}: {now} at the close {close:.6g} ({before}); entry at the "
                                             f"last close, no stop or target (the position is closed by a SELL)")
        except ValueError as exc:
            raise AnalysisFailed(f"{self.name} produced an invalid answer: {exc}", {"close": close}) from exc
        return AnalysisResult(answer=answer, analyst=self.name, model=None, latency_ms=0.0,
                              extra={"label": f"plug-in SMA crossover ({f}/{s})"})
