"""The signal policy (every rule can make a HOLD and says so) and the deterministic rules analyst."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from tradetrail.analyst.port import AnalysisFailed, AnalysisRequest
from tradetrail.analyst.rules import RulesAnalyst
from tradetrail.analyst.schema import AnalystAnswer
from tradetrail.domain.confirmation import confirm
from tradetrail.domain.signal_policy import Market, Proposal, SignalPolicy, decide

MARKET = Market(close=100.0, atr=5.0)  # every hand-made proposal below sits at this close
BUY = Proposal("BUY", 80, 100.0, 95.0, 110.0)  # reward/risk 2
SELL = Proposal("SELL", 80, 100.0, 105.0, 90.0)
STRICT = SignalPolicy(require_higher_timeframe=True)


def rule_names(decision) -> list[str]:
    return [r.rule for r in decision.rules]


# ----------------------------------------------------------------------------------------------------------- rules


@pytest.mark.parametrize(("proposal", "primary"), [(BUY, "BULLISH"), (SELL, "BEARISH")])
def test_a_proposal_that_passes_every_rule_keeps_its_action(proposal: Proposal, primary: str) -> None:
    decision = decide(proposal, primary, "NEUTRAL", STRICT, MARKET)
    assert decision.action == proposal.action
    assert decision.reason == f"{proposal.action}: all rules passed"
    assert rule_names(decision) == ["analyst_action", "min_confidence", "confirmation", "higher_timeframe",
                                    "reward_risk", "market_fit"]
    assert all(r.passed for r in decision.rules)
    assert (decision.entry, decision.stop_loss, decision.take_profit) == (proposal.entry, proposal.stop_loss,
                                                                          proposal.take_profit)
    assert decision.reward_risk == 2.0
    assert decision.confidence == 80


def test_analyst_hold_is_hold() -> None:
    decision = decide(Proposal("HOLD", 90, None, None, None), "BULLISH", "BULLISH", SignalPolicy(), MARKET)
    assert decision.action == "HOLD"
    assert decision.reason == "analyst_action: analyst said HOLD"
    assert "reward_risk" not in rule_names(decision)
    assert decision.reward_risk is None


@pytest.mark.parametrize(("confidence", "action"), [(59, "HOLD"), (60, "BUY"), (61, "BUY")])
def test_min_confidence_boundary(confidence: int, action: str) -> None:
    proposal = Proposal("BUY", confidence, 100.0, 95.0, 110.0)
    decision = decide(proposal, "BULLISH", None, SignalPolicy(min_confidence=60), MARKET)
    assert decision.action == action
    if action == "HOLD":
        assert decision.reason == "min_confidence: confidence 59 vs minimum 60"
        assert decision.confidence == 59
        assert [r.rule for r in decision.rules if not r.passed] == ["min_confidence"]


@pytest.mark.parametrize(
    ("proposal", "primary", "detail"),
    [
        (BUY, "BEARISH", "3-of-4 confirmation is BEARISH, BUY needs BULLISH"),
        (BUY, "NEUTRAL", "3-of-4 confirmation is NEUTRAL, BUY needs BULLISH"),
        (BUY, None, "3-of-4 confirmation is missing, BUY needs BULLISH"),
        (SELL, "BULLISH", "3-of-4 confirmation is BULLISH, SELL needs BEARISH"),
        (SELL, "NEUTRAL", "3-of-4 confirmation is NEUTRAL, SELL needs BEARISH"),
    ],
)
def test_confirmation_mismatch_is_hold(proposal: Proposal, primary: str | None, detail: str) -> None:
    decision = decide(proposal, primary, None, SignalPolicy(), MARKET)
    assert decision.action == "HOLD"
    assert decision.reason == f"confirmation: {detail}"
    # the levels are kept for the record even on HOLD
    assert (decision.entry, decision.stop_loss, decision.take_profit) == (100.0, proposal.stop_loss,
                                                                          proposal.take_profit)


def test_confirmation_can_be_switched_off() -> None:
    decision = decide(BUY, "BEARISH", None, SignalPolicy(require_confirmation=False), MARKET)
    assert decision.action == "BUY"
    assert "confirmation" not in rule_names(decision)


@pytest.mark.parametrize(("proposal", "higher"), [(BUY, "BEARISH"), (SELL, "BULLISH")])
def test_higher_timeframe_opposition_is_hold_only_when_enabled(proposal: Proposal, higher: str) -> None:
    primary = "BULLISH" if proposal.action == "BUY" else "BEARISH"
    decision = decide(proposal, primary, higher, STRICT, MARKET)
    assert decision.action == "HOLD"
    assert decision.reason == f"higher_timeframe: higher timeframe is {higher}"
    relaxed = decide(proposal, primary, higher, SignalPolicy(), MARKET)
    assert relaxed.action == proposal.action
    assert "higher_timeframe" not in rule_names(relaxed)


@pytest.mark.parametrize("higher", ["NEUTRAL", None, "BULLISH"])
def test_higher_timeframe_that_does_not_oppose_passes(higher: str | None) -> None:
    assert decide(BUY, "BULLISH", higher, STRICT, MARKET).action == "BUY"


@pytest.mark.parametrize(
    ("proposal", "rr"),
    [
        (Proposal("BUY", 80, 100.0, 95.0, 104.0), 0.8),
        (Proposal("SELL", 80, 100.0, 110.0, 95.0), 0.5),
        (Proposal("BUY", 80, 100.0, None, 110.0), None),
        (Proposal("BUY", 80, 100.0, 100.0, 110.0), None),  # zero risk: no ratio
    ],
)
def test_reward_risk_below_minimum_is_hold(proposal: Proposal, rr: float | None) -> None:
    primary = "BULLISH" if proposal.action == "BUY" else "BEARISH"
    decision = decide(proposal, primary, None, SignalPolicy(min_reward_risk=1.0), MARKET)
    assert decision.action == "HOLD"
    assert decision.reason == f"reward_risk: reward/risk {rr} vs minimum 1.0"
    assert decision.reward_risk == rr


def test_reward_risk_exactly_at_minimum_passes() -> None:
    decision = decide(Proposal("BUY", 80, 100.0, 90.0, 115.0), "BULLISH", None, SignalPolicy(min_reward_risk=1.5),
                      MARKET)
    assert (decision.action, decision.reward_risk) == ("BUY", 1.5)


def test_reward_risk_just_below_minimum_is_hold() -> None:
    decision = decide(Proposal("BUY", 80, 100.0, 90.0, 109.9996), "BULLISH", None, SignalPolicy(), MARKET)
    assert decision.action == "HOLD"


def test_the_first_failing_rule_is_the_reason_and_every_rule_is_reported() -> None:
    proposal = Proposal("SELL", 10, 100.0, 90.0, 95.0)  # low confidence, wrong confirmation, bad levels
    decision = decide(proposal, "BULLISH", "BULLISH", STRICT, MARKET)
    assert decision.reason.startswith("min_confidence: ")
    assert [(r.rule, r.passed) for r in decision.rules] == [
        ("analyst_action", True), ("min_confidence", False), ("confirmation", False), ("higher_timeframe", False),
        ("reward_risk", False), ("market_fit", True)]  # a SELL's stop (90) below the close: recorded, not binding
    fit = decision.rules[-1]
    assert fit.numbers["applied"] is False and "stop 90 is already at or below" in fit.detail


# ------------------------------------------------------------------------------------------------------ properties

DIRECTIONS = st.sampled_from(["BULLISH", "BEARISH", "NEUTRAL", None])
PRICES = st.floats(min_value=0.01, max_value=1e6, allow_nan=False, allow_infinity=False)
POLICIES = st.builds(SignalPolicy, min_confidence=st.integers(0, 100), require_confirmation=st.booleans(),
                     require_higher_timeframe=st.booleans(),
                     min_reward_risk=st.floats(min_value=0.01, max_value=20, allow_nan=False),
                     max_entry_distance_atr=st.floats(min_value=0.1, max_value=10, allow_nan=False))
ANY_PROPOSAL = st.builds(Proposal, action=st.sampled_from(["BUY", "SELL", "HOLD"]), confidence=st.integers(0, 100),
                         entry=st.none() | PRICES, stop_loss=st.none() | PRICES, take_profit=st.none() | PRICES)


@st.composite
def markets(draw, proposal: Proposal) -> Market:
    """Often a market the proposal's entry sits in (so BUY/SELL can pass), sometimes any, sometimes none."""
    atr = draw(st.none() | st.floats(min_value=1e-6, max_value=1e5, allow_nan=False))
    near = proposal.entry if proposal.entry is not None else 100.0
    close = draw(st.one_of(st.just(near), st.just(near), st.none(), PRICES))
    return Market(close=close, atr=atr)


@settings(max_examples=300, deadline=None)
@given(proposal=ANY_PROPOSAL, primary=DIRECTIONS, higher=DIRECTIONS, policy=POLICIES, data=st.data())
def test_buy_or_sell_only_when_every_rule_passed(proposal: Proposal, primary, higher, policy: SignalPolicy,
                                                 data) -> None:
    market = data.draw(markets(proposal), "market")
    decision = decide(proposal, primary, higher, policy, market)
    failed = [r for r in decision.rules if not r.passed]
    if decision.action in ("BUY", "SELL"):
        assert not failed
        assert decision.action == proposal.action
        assert decision.confidence >= policy.min_confidence
        assert decision.reward_risk is not None and decision.reward_risk >= policy.min_reward_risk
        if policy.require_confirmation:
            assert primary == {"BUY": "BULLISH", "SELL": "BEARISH"}[decision.action]
        fit = next(r for r in decision.rules if r.rule == "market_fit")
        if decision.action == "BUY":  # entry within the bound, stop and target on their sides of the close
            assert market.close is not None and market.atr is not None
            assert abs(decision.entry - market.close) <= policy.max_entry_distance_atr * market.atr * (1 + 1e-12)
            assert decision.stop_loss < market.close < decision.take_profit
            assert "applied" not in fit.numbers
        else:  # a SELL closes at the market: a misfit of its levels is recorded, never binding
            assert fit.numbers.get("applied", True) is False or fit.detail.startswith("entry ")
    else:
        assert decision.action == "HOLD"
        assert failed
        assert decision.reason.startswith(f"{failed[0].rule}: ")


def _answer(action: str, confidence: int, entry: float, d1: float, d2: float) -> AnalystAnswer | None:
    if action == "BUY":
        levels = dict(entry=entry, stop_loss=entry - d1, take_profit=entry + d2)
    elif action == "SELL":
        levels = dict(entry=entry, stop_loss=entry + d1, take_profit=entry - d2)
    else:
        levels = dict(entry=None, stop_loss=None, take_profit=None)
    try:
        return AnalystAnswer(action=action, confidence=confidence, trend="neutral", key_factors=["x"],
                             reasoning="because", **levels)
    except ValidationError:
        return None


@settings(max_examples=300, deadline=None)
@given(action=st.sampled_from(["BUY", "SELL", "HOLD"]), confidence=st.integers(0, 100), entry=PRICES,
       d1=st.floats(-100, 1000, allow_nan=False), d2=st.floats(-100, 1000, allow_nan=False), primary=DIRECTIONS,
       higher=DIRECTIONS, policy=POLICIES)
def test_a_valid_answer_never_becomes_an_inverted_signal(action, confidence, entry, d1, d2, primary, higher,
                                                         policy) -> None:
    answer = _answer(action, confidence, entry, d1, d2)
    if answer is None:
        return  # not a valid answer: it never reaches the policy
    proposal = Proposal(answer.action, answer.confidence, answer.entry, answer.stop_loss, answer.take_profit)
    decision = decide(proposal, primary, higher, policy, Market(close=entry, atr=max(d1, d2, 1e-3)))
    if decision.action == "BUY":
        assert decision.stop_loss < decision.entry < decision.take_profit
    elif decision.action == "SELL":
        assert decision.take_profit < decision.entry < decision.stop_loss


# -------------------------------------------------------------------------------------------------- rules analyst

BULLISH_LATEST = {"close": 100.0, "sma_20": 95.0, "supertrend_dir": 1.0, "macd_hist": 0.8, "rsi": 62.0, "atr": 2.5}
BEARISH_LATEST = {"close": 100.0, "sma_20": 105.0, "supertrend_dir": -1.0, "macd_hist": -0.8, "rsi": 38.0,
                  "atr": 2.5}
NEUTRAL_LATEST = {"close": 100.0, "sma_20": 95.0, "supertrend_dir": -1.0, "macd_hist": 0.8, "rsi": 38.0, "atr": 2.5}


def request(latest: dict, timeframe: str = "daily") -> AnalysisRequest:
    return AnalysisRequest(symbol="SPX", as_of="2018-12-31T21:00:00+00:00", system_prompt="s",
                           timeframe_prompts={timeframe: "p"}, images=[], indicators={timeframe: latest},
                           confirmation={timeframe: confirm(latest).to_dict()}, prompt_hash="0" * 64)


def test_rules_analyst_bullish_is_buy_with_atr_levels() -> None:
    result = RulesAnalyst().analyze(request(BULLISH_LATEST))
    answer = result.answer
    assert (answer.action, answer.trend, answer.confidence) == ("BUY", "bullish", 100)
    assert answer.entry == 100.0
    assert answer.stop_loss == 100.0 - 2 * 2.5 == 95.0
    assert answer.take_profit == 100.0 + 2 * (100.0 - 95.0) == 110.0
    assert (result.analyst, result.model) == ("rules", None)
    assert len(answer.key_factors) == 4
    assert answer.key_factors[0].startswith("supertrend: bullish")


def test_rules_analyst_bearish_is_sell_mirrored() -> None:
    answer = RulesAnalyst().analyze(request(BEARISH_LATEST)).answer
    assert (answer.action, answer.trend, answer.confidence) == ("SELL", "bearish", 100)
    assert (answer.entry, answer.stop_loss, answer.take_profit) == (100.0, 105.0, 90.0)


def test_rules_analyst_three_votes_give_confidence_75_and_custom_multiples() -> None:
    latest = BULLISH_LATEST | {"rsi": 40.0}  # three bullish, one bearish
    answer = RulesAnalyst(atr_stop_multiple=1.5, reward_risk=3.0).analyze(request(latest)).answer
    assert (answer.action, answer.confidence) == ("BUY", 75)
    stop = 100.0 - 1.5 * 2.5
    assert (answer.stop_loss, answer.take_profit) == (stop, 100.0 + 3.0 * (100.0 - stop))


def test_rules_analyst_neutral_is_hold_without_levels() -> None:
    assert confirm(NEUTRAL_LATEST).direction == "NEUTRAL"
    answer = RulesAnalyst().analyze(request(NEUTRAL_LATEST)).answer
    assert (answer.action, answer.trend, answer.confidence) == ("HOLD", "neutral", 50)
    assert (answer.entry, answer.stop_loss, answer.take_profit) == (None, None, None)


def test_rules_analyst_sell_whose_target_would_be_negative_is_hold() -> None:
    latest = BEARISH_LATEST | {"close": 10.0, "sma_20": 12.0, "atr": 3.0}  # target 10 - 2*6 < 0
    answer = RulesAnalyst().analyze(request(latest)).answer
    assert answer.action == "HOLD"


def test_rules_analyst_buy_whose_stop_would_be_negative_is_hold() -> None:
    latest = BULLISH_LATEST | {"close": 4.0, "sma_20": 3.0, "atr": 3.0}  # stop 4 - 2*3 < 0
    answer = RulesAnalyst().analyze(request(latest)).answer
    assert answer.action == "HOLD"


@pytest.mark.parametrize("atr", [None, 0.0, -1.0])
def test_rules_analyst_without_a_usable_atr_fails(atr: float | None) -> None:
    latest = dict(BULLISH_LATEST)
    if atr is None:
        del latest["atr"]
    else:
        latest["atr"] = atr
    with pytest.raises(AnalysisFailed, match="needs the close, ATR and the 3-of-4 confirmation") as err:
        RulesAnalyst().analyze(request(latest))
    assert err.value.details["atr"] == atr
    assert err.value.details["close"] == 100.0


def test_rules_analyst_without_the_timeframe_fails() -> None:
    with pytest.raises(AnalysisFailed):
        RulesAnalyst(timeframe="daily").analyze(request(BULLISH_LATEST, timeframe="weekly"))


def test_rules_analyst_answer_passes_the_default_policy() -> None:
    answer = RulesAnalyst().analyze(request(BULLISH_LATEST)).answer
    proposal = Proposal(answer.action, answer.confidence, answer.entry, answer.stop_loss, answer.take_profit)
    market = Market(close=BULLISH_LATEST["close"], atr=BULLISH_LATEST["atr"])
    decision = decide(proposal, confirm(BULLISH_LATEST).direction, None, SignalPolicy(), market)
    assert (decision.action, decision.reward_risk) == ("BUY", 2.0)
    assert [r for r in decision.rules if r.rule == "market_fit"][0].numbers["entry_distance_atr"] == 0.0


@pytest.mark.parametrize("level", ["entry", "stop_loss", "take_profit"])
@pytest.mark.parametrize("bad", [float("inf"), float("nan")])
def test_answer_with_an_infinite_or_nan_level_is_invalid(level, bad):
    import json

    from tradetrail.analyst.schema import AnalystAnswer

    answer = {"action": "BUY", "confidence": 80, "trend": "bullish", "entry": 100.0, "stop_loss": 95.0,
              "take_profit": 110.0, "key_factors": ["x"], "reasoning": "y"}
    raw = json.dumps({**answer, level: bad})  # Python writes Infinity/NaN, and json.loads reads them back
    with pytest.raises(ValueError):
        AnalystAnswer.model_validate(json.loads(raw), strict=True)  # as the OpenAI-compatible adapter does
