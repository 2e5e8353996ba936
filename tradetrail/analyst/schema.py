"""The one answer shape every analyst must produce, validated strictly.

A model's answer is only usable if it parses into :class:`AnalystAnswer`. A BUY or SELL needs an entry; the
levels given must make sense for the action (a BUY has stop < entry < take-profit, a SELL the reverse); a HOLD
may leave them empty. A BUY/SELL may leave out the stop and the take-profit (an analyst meant for strategies
without protective orders); the signal policy then holds it back unless the strategy sends no protective
orders. Anything else is an invalid analysis and can never become an actionable signal.
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
    stop_loss: float | None = Field(description="protective stop; needed for BUY/SELL when the strategy places "
                                                "protective orders (the default)", gt=0)
    take_profit: float | None = Field(description="profit target; needed for BUY/SELL when the strategy places "
                                                  "protective orders (the default)", gt=0)
    key_factors: list[str] = Field(min_length=1, max_length=10)
    reasoning: str = Field(min_length=1, max_length=4000)

    @model_validator(mode="after")
    def _levels_fit_action(self) -> AnalystAnswer:
        if self.action == "HOLD":
            return self
        if self.entry is None:
            raise ValueError(f"{self.action} needs an entry")
        low, high = (self.stop_loss, self.take_profit) if self.action == "BUY" else (self.take_profit,
                                                                                     self.stop_loss)
        if (low is not None and not low < self.entry) or (high is not None and not self.entry < high):
            raise ValueError("BUY needs stop_loss < entry < take_profit" if self.action == "BUY" else
                             "SELL needs take_profit < entry < stop_loss")
        return self
