"""The 3-of-4 confirmation rule: every vote combination, abstentions, and what the trader gets to see."""

from __future__ import annotations

import itertools
import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tradetrail.domain.confirmation import confirm

# For each vote, the latest-values that make it +1, -1, 0 (exactly neutral) or abstain (missing).
INPUTS = {
    "supertrend": {1: {"supertrend_dir": 1.0}, -1: {"supertrend_dir": -1.0}, 0: {"supertrend_dir": 0.0},
                   None: {"supertrend_dir": None}},
    "close_vs_sma20": {1: {"close": 101.0, "sma_20": 100.0}, -1: {"close": 99.0, "sma_20": 100.0},
                       0: {"close": 100.0, "sma_20": 100.0}, None: {"close": 100.0, "sma_20": None}},
    "macd_hist": {1: {"macd_hist": 0.5}, -1: {"macd_hist": -0.5}, 0: {"macd_hist": 0.0}, None: {}},
    "rsi_vs_50": {1: {"rsi": 61.0}, -1: {"rsi": 39.0}, 0: {"rsi": 50.0}, None: {"rsi": float("nan")}},
}
NAMES = tuple(INPUTS)


@pytest.mark.parametrize("combo", list(itertools.product([1, -1, 0, None], repeat=4)))
def test_every_vote_combination(combo: tuple[int | None, ...]) -> None:
    latest: dict = {}
    for name, wanted in zip(NAMES, combo, strict=True):
        latest.update(INPUTS[name][wanted])
    result = confirm(latest)
    votes = [0 if w is None else w for w in combo]
    assert [v.name for v in result.votes] == list(NAMES)
    assert [v.vote for v in result.votes] == votes
    assert result.bullish == votes.count(1)
    assert result.bearish == votes.count(-1)
    expected = "BULLISH" if votes.count(1) >= 3 else "BEARISH" if votes.count(-1) >= 3 else "NEUTRAL"
    assert result.direction == expected
    assert result.to_dict()["abstained"] == votes.count(0)


def test_empty_input_is_neutral_with_all_abstaining() -> None:
    result = confirm({})
    assert (result.bullish, result.bearish, result.direction) == (0, 0, "NEUTRAL")
    assert all(v.vote == 0 and v.value is None for v in result.votes)


def test_missing_sma_abstains_even_with_close() -> None:
    result = confirm({"close": 10.0, "supertrend_dir": 1.0, "macd_hist": 1.0, "rsi": 70.0})
    assert result.votes[1].vote == 0
    assert result.direction == "BULLISH"  # the other three still carry it


finite = st.floats(allow_nan=False, allow_infinity=False, min_value=-1e9, max_value=1e9)


@given(close=finite, sma=finite, hist=finite, rsi=st.floats(0, 100), direction=st.sampled_from([-1.0, 1.0]))
def test_votes_follow_the_sign_of_each_comparison(close: float, sma: float, hist: float, rsi: float,
                                                  direction: float) -> None:
    latest = {"close": close, "sma_20": sma, "macd_hist": hist, "rsi": rsi, "supertrend_dir": direction}
    result = confirm(latest)
    signs = [direction, close - sma, hist, rsi - 50.0]
    assert [v.vote for v in result.votes] == [int(math.copysign(1, s)) if s else 0 for s in signs]


def test_to_dict_shows_the_numbers_compared() -> None:
    latest = {"close": 2506.85, "sma_20": 2576.95, "macd_hist": -3.7, "rsi": 41.7, "supertrend_dir": -1.0}
    data = confirm(latest).to_dict()
    assert json.loads(json.dumps(data, allow_nan=False)) == data
    assert data["direction"] == "BEARISH" and data["bearish"] == 4 and data["required"] == 3
    by_name = {v["name"]: v for v in data["votes"]}
    assert by_name["close_vs_sma20"]["compared"] == {"close": 2506.85, "sma_20": 2576.95}
    assert by_name["rsi_vs_50"]["compared"] == {"rsi": 41.7, "threshold": 50.0}
    assert by_name["macd_hist"]["compared"] == {"macd_hist": -3.7, "threshold": 0.0}
    assert by_name["supertrend"]["compared"] == {"supertrend_dir": -1.0, "threshold": 0.0}
    assert {v["label"] for v in data["votes"]} == {"bearish"}
