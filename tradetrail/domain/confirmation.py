"""The 3-of-4 confirmation: four independent trend readings must mostly agree before a direction counts.

Votes (+1 bullish, -1 bearish, 0 abstain when a value is missing, non-finite or exactly neutral):

* ``supertrend``: sign of ``supertrend_dir``;
* ``close_vs_sma20``: ``close`` above / below ``sma_20``;
* ``macd_hist``: sign of ``macd_hist``;
* ``rsi_vs_50``: ``rsi`` above / below 50.

Three or more bullish votes make the direction BULLISH, three or more bearish BEARISH, anything else NEUTRAL.
The input is the dict from :func:`tradetrail.domain.indicators.latest_values` (with ``close``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

BULLISH, BEARISH, NEUTRAL = "BULLISH", "BEARISH", "NEUTRAL"
REQUIRED_VOTES = 3
RSI_MIDLINE = 50.0
_LABELS = {1: "bullish", -1: "bearish", 0: "abstain"}


@dataclass(frozen=True)
class Vote:
    """One reading: which numbers were compared, with what rule, and how it voted."""

    name: str
    vote: int
    value_key: str
    value: float | None
    reference_key: str | None  # None: compared with the constant ``reference``
    reference: float | None
    rule: str

    def to_dict(self) -> dict:
        compared = {self.value_key: self.value}
        compared[self.reference_key or "threshold"] = self.reference
        return {"name": self.name, "vote": self.vote, "label": _LABELS[self.vote], "compared": compared,
                "rule": self.rule}


@dataclass(frozen=True)
class Confirmation:
    """The four votes and the resulting direction."""

    votes: tuple[Vote, ...]
    bullish: int
    bearish: int
    direction: str

    def to_dict(self) -> dict:
        return {"direction": self.direction, "bullish": self.bullish, "bearish": self.bearish,
                "abstained": len(self.votes) - self.bullish - self.bearish, "required": REQUIRED_VOTES,
                "votes": [v.to_dict() for v in self.votes]}


def _number(latest: Mapping[str, object], key: str) -> float | None:
    raw = latest.get(key)
    if raw is None:
        return None
    x = float(raw)  # type: ignore[arg-type]
    return x if math.isfinite(x) else None


def _vote(name: str, latest: Mapping[str, object], value_key: str, reference_key: str | None,
          threshold: float, rule: str) -> Vote:
    value = _number(latest, value_key)
    reference = _number(latest, reference_key) if reference_key else threshold
    sign = 0 if value is None or reference is None else (value > reference) - (value < reference)
    return Vote(name, sign, value_key, value, reference_key, reference, rule)


def confirm(latest: Mapping[str, object]) -> Confirmation:
    """Apply the 3-of-4 rule to the latest indicator values."""
    votes = (
        _vote("supertrend", latest, "supertrend_dir", None, 0.0, "supertrend_dir > 0 bullish, < 0 bearish"),
        _vote("close_vs_sma20", latest, "close", "sma_20", 0.0, "close > sma_20 bullish, < sma_20 bearish"),
        _vote("macd_hist", latest, "macd_hist", None, 0.0, "macd_hist > 0 bullish, < 0 bearish"),
        _vote("rsi_vs_50", latest, "rsi", None, RSI_MIDLINE, "rsi > 50 bullish, < 50 bearish"),
    )
    bullish = sum(v.vote == 1 for v in votes)
    bearish = sum(v.vote == -1 for v in votes)
    direction = BULLISH if bullish >= REQUIRED_VOTES else BEARISH if bearish >= REQUIRED_VOTES else NEUTRAL
    return Confirmation(votes, bullish, bearish, direction)
