"""The one answer shape every analyst must produce, validated strictly.

A model's answer is only usable if it parses into :class:`AnalystAnswer`. Price levels must make sense for
the action (a BUY has stop < entry < take-profit, a SELL the reverse); a HOLD may leave them empty. Anything
else is an invalid analysis and can never become an actionable signal.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class AnalystAnswer(BaseModel):
    """Strict JSON answer: action, confidence, trend, levels, key factors and reasoning."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)  # json.loads reads Infinity and NaN

    action: Literal["BUY", "SELL", "HOLD"]
    confidence: int = Field(ge=0, le=100, description="0-100, how sure the analyst is of the action")
    trend: Literal["bullish", "bearish", "neutral"]
    entry: float | None = Field(description="entry price; required for BUY/SELL", gt=0)
    stop_loss: float | None = Field(description="protective stop; required for BUY/SELL", gt=0)
    take_profit: float | None = Field(description="profit target; required for BUY/SELL", gt=0)
    key_factors: list[str] = Field(min_length=1, max_length=10)
    reasoning: str = Field(min_length=1, max_length=4000)

    @model_validator(mode="after")
    def _levels_fit_action(self) -> AnalystAnswer:
        if self.action == "HOLD":
            return self
        if self.entry is None or self.stop_loss is None or self.take_profit is None:
            raise ValueError(f"{self.action} needs entry, stop_loss and take_profit")
        if self.action == "BUY" and not (self.stop_loss < self.entry < self.take_profit):
            raise ValueError("BUY needs stop_loss < entry < take_profit")
        if self.action == "SELL" and not (self.take_profit < self.entry < self.stop_loss):
            raise ValueError("SELL needs take_profit < entry < stop_loss")
        return self
