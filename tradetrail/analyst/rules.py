"""The rules analyst: deterministic, free, and the default on a fresh install.

It reads no chart. It applies the 3-of-4 confirmation of the primary (daily) timeframe: BULLISH → BUY,
BEARISH → SELL, otherwise HOLD; the stop sits ``atr_stop_multiple`` ATRs from the close and the target
``reward_risk`` times that distance on the other side. Confidence is 25 per agreeing vote (75 or 100).
Lineage labels it ``rules`` so nobody mistakes it for a model's opinion.
"""

from __future__ import annotations

from tradetrail.analyst.port import AnalysisFailed, AnalysisRequest, AnalysisResult
from tradetrail.analyst.schema import AnalystAnswer


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
