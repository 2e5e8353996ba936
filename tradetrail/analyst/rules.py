"""The rules analyst: deterministic, free, and the default on a fresh install.

It reads no chart. It applies the 3-of-4 confirmation of the primary (daily) timeframe: BULLISH → BUY,
BEARISH → SELL, otherwise HOLD; the stop sits ``atr_stop_multiple`` ATRs from the close and the target
``reward_risk`` times that distance on the other side. Confidence is 25 per agreeing vote (75 or 100).
Lineage labels it ``rules`` so nobody mistakes it for a model's opinion.

For a backtest it also answers a whole series at once (:meth:`RulesAnalyst.analyze_series`): the actions
from the same 3-of-4 votes over whole columns, and the full answer of a session from :meth:`analyze`.
"""

from __future__ import annotations

import numpy as np

from tradetrail.analyst.port import AnalysisFailed, AnalysisRequest, AnalysisResult, AnalysisSeries, SeriesAnswers
from tradetrail.analyst.schema import AnalystAnswer
from tradetrail.domain.confirmation import BEARISH, BULLISH, COLUMNS, directions
from tradetrail.domain.indicators import rounded


class RulesAnalyst:
    name = "rules"

    def __init__(self, atr_stop_multiple: float = 2.0, reward_risk: float = 2.0, timeframe: str = "daily"):
        self.k = atr_stop_multiple
        self.rr = reward_risk
        self.timeframe = timeframe

    def analyze(self, request: AnalysisRequest) -> AnalysisResult:
        latest = request.indicators.get(self.timeframe) or {}
        conf = request.confirmation.get(self.timeframe)
        close, atr = latest.get("close"), latest.get("atr")
        if conf is None or close is None or atr is None or atr <= 0:
            raise AnalysisFailed("rules analyst needs the close, ATR and the 3-of-4 confirmation",
                                 {"close": close, "atr": atr, "confirmation": conf})
        direction = conf["direction"]
        factors = [f"{v['name']}: {v['label']} ({v['compared']})" for v in conf.get("votes", [])] or ["no votes"]
        trend = {"BULLISH": "bullish", "BEARISH": "bearish"}.get(direction, "neutral")
        if direction == "BULLISH":
            stop = close - self.k * atr
            answer = dict(action="BUY", confidence=25 * conf["bullish"], entry=close, stop_loss=stop,
                          take_profit=close + self.rr * (close - stop))
        elif direction == "BEARISH":
            stop = close + self.k * atr
            answer = dict(action="SELL", confidence=25 * conf["bearish"], entry=close, stop_loss=stop,
                          take_profit=close - self.rr * (stop - close))
        else:
            answer = dict(action="HOLD", confidence=50, entry=None, stop_loss=None, take_profit=None)
        if (answer["action"] == "SELL" and answer["take_profit"] <= 0) or \
                (answer["action"] == "BUY" and answer["stop_loss"] <= 0):  # levels that cannot exist
            answer = dict(action="HOLD", confidence=50, entry=None, stop_loss=None, take_profit=None)
        answer = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in answer.items()}
        reasoning = (f"3-of-4 confirmation on {self.timeframe}: {conf['bullish']} bullish, {conf['bearish']} "
                     f"bearish → {direction}; stop {self.k}×ATR({atr:.4g}), target {self.rr}R")
        try:
            parsed = AnalystAnswer(trend=trend, key_factors=factors[:10], reasoning=reasoning, **answer)
        except ValueError as exc:
            raise AnalysisFailed(f"rules analyst produced invalid levels: {exc}", {"answer": answer}) from exc
        return AnalysisResult(answer=parsed, analyst=self.name, model=None, latency_ms=0.0,
                              extra={"label": "rules analyst (deterministic 3-of-4 + ATR levels)"})

    def bars_needed(self) -> int:
        """The rules read only the configured indicators: their warm-up decides."""
        return 1

    def analyze_series(self, series: AnalysisSeries) -> SeriesAnswers:
        """Every session's action in one pass: the same votes as :meth:`analyze` on the values it would see
        (rounded as ``latest_values`` rounds them), and the same HOLD for levels that cannot exist; ""
        where :meth:`analyze` would fail (no close or ATR yet)."""
        close = rounded(series.bars["close"].to_numpy(dtype=np.float64))
        source = series.columns or {k: series.indicators[k].to_numpy(dtype=np.float64) for k in series.indicators}
        columns = {k: close if k == "close" else rounded(source[k]) for k in COLUMNS}
        atr = rounded(source["atr"])
        direction = directions(columns)
        with np.errstate(invalid="ignore"):
            buy_stop = close - self.k * atr
            sell_stop = close + self.k * atr
            sell_target = close - self.rr * (sell_stop - close)
            buy = (direction == BULLISH) & (buy_stop > 0)
            sell = (direction == BEARISH) & (sell_target > 0)
            ready = np.isfinite(close) & np.isfinite(atr) & (atr > 0)
        actions = np.where(buy, "BUY", np.where(sell, "SELL", "HOLD"))
        actions = np.where(ready, actions, "")
        return SeriesAnswers(actions=actions, result=lambda t: self.analyze(series.request(t)))
