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

import numpy as np

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


@dataclass(frozen=True)
class VoteRule:
    """One reading of the rule: ``value_key`` compared with ``reference_key`` (or the constant ``threshold``)."""

    name: str
    value_key: str
    reference_key: str | None
    threshold: float
    rule: str


VOTE_RULES: tuple[VoteRule, ...] = (
    VoteRule("supertrend", "supertrend_dir", None, 0.0, "supertrend_dir > 0 bullish, < 0 bearish"),
    VoteRule("close_vs_sma20", "close", "sma_20", 0.0, "close > sma_20 bullish, < sma_20 bearish"),
    VoteRule("macd_hist", "macd_hist", None, 0.0, "macd_hist > 0 bullish, < 0 bearish"),
    VoteRule("rsi_vs_50", "rsi", None, RSI_MIDLINE, "rsi > 50 bullish, < 50 bearish"),
)
COLUMNS = tuple(dict.fromkeys(k for r in VOTE_RULES for k in (r.value_key, r.reference_key) if k))


def _sign(value, reference):
    """+1 above, -1 below, 0 equal or missing: for two numbers, or element-wise for arrays (NaN votes 0)."""
    return np.subtract(np.greater(value, reference), np.less(value, reference), dtype=np.int8)


def _direction(bullish, bearish):
    return np.where(bullish >= REQUIRED_VOTES, BULLISH, np.where(bearish >= REQUIRED_VOTES, BEARISH, NEUTRAL))


def _number(latest: Mapping[str, object], key: str) -> float | None:
    raw = latest.get(key)
    if raw is None:
        return None
    x = float(raw)  # type: ignore[arg-type]
    return x if math.isfinite(x) else None


def _vote(rule: VoteRule, latest: Mapping[str, object]) -> Vote:
    value = _number(latest, rule.value_key)
    reference = _number(latest, rule.reference_key) if rule.reference_key else rule.threshold
    sign = 0 if value is None or reference is None else int(_sign(value, reference))
    return Vote(rule.name, sign, rule.value_key, value, rule.reference_key, reference, rule.rule)


def confirm(latest: Mapping[str, object]) -> Confirmation:
    """Apply the 3-of-4 rule to the latest indicator values."""
    votes = tuple(_vote(rule, latest) for rule in VOTE_RULES)
    bullish = sum(v.vote == 1 for v in votes)
    bearish = sum(v.vote == -1 for v in votes)
    return Confirmation(votes, bullish, bearish, str(_direction(bullish, bearish)))


def directions(columns: Mapping[str, np.ndarray]) -> np.ndarray:
    """The direction of every row at once, by the same votes as :func:`confirm`: ``columns`` holds
    :data:`COLUMNS` as float arrays of one length, with the values :func:`confirm` would see in each row
    (rounded as ``latest_values`` rounds them; NaN where missing)."""
    signs = [_sign(columns[r.value_key], columns[r.reference_key] if r.reference_key else r.threshold)
             for r in VOTE_RULES]
    bullish = sum((s == 1).astype(np.int8) for s in signs)
    bearish = sum((s == -1).astype(np.int8) for s in signs)
    return _direction(bullish, bearish)
