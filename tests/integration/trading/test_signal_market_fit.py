"""Issue #11: an analysis whose levels do not fit the market fails the signal with the reason and the numbers
(``market_fit``), and extreme finite numbers end as a HOLD, never an exception — on the pure policy and
through the real pipeline with the model's answer served by the fake OpenAI-compatible server."""

from __future__ import annotations

import json
import math

import pytest
from sqlalchemy import select

from tests.fakes.openai_server import VALID_BUY, Behaviour, FakeOpenAIServer
from tests.support.llm_runs import FIRST_CLOSE, llm_app, llm_strategy, orders_and_events, run, step
from tradetrail.db.models import Signal
from tradetrail.domain.signal_policy import Market, Proposal, SignalPolicy, decide

MARKET = Market(close=1160.0, atr=15.0)
POLICY = SignalPolicy(require_confirmation=False)


def _fit(decision):
    return next(r for r in decision.rules if r.rule == "market_fit")


# -- the rule ------------------------------------------------------------------------------------------------------

def test_the_reviewed_answer_is_hold_naming_every_misfit_with_the_numbers():
    """The review's case: entry 101.5 / stop 98 / target 108 while the market closed near 1,160."""
    decision = decide(Proposal("BUY", 72, 101.5, 98.0, 108.0), None, None, POLICY, MARKET)
    assert decision.action == "HOLD"
    assert decision.reason.startswith("market_fit: entry 101.5 is 70.57 ATR from the last close 1160 (ATR 15)")
    assert "target 108 is already reached" in decision.reason
    fit = _fit(decision)
    assert not fit.passed
    assert fit.numbers == {"close": 1160.0, "atr": 15.0, "entry": 101.5, "stop_loss": 98.0, "take_profit": 108.0,
                           "max_entry_distance_atr": 1.0, "entry_distance_atr": pytest.approx(70.566667)}
    assert [r.rule for r in decision.rules if not r.passed] == ["market_fit"]  # every other rule passed


@pytest.mark.parametrize(("proposal", "problem"), [
    (Proposal("BUY", 80, 1160.0, 1161.0, 1200.0), "stop 1161 is already at or above the last close 1160"),
    (Proposal("BUY", 80, 1150.0, 1140.0, 1160.0), "target 1160 is already reached (at or below the last close"),
], ids=["buy-stop-above-close", "buy-target-reached"])
def test_a_stop_on_the_wrong_side_or_a_target_already_reached_is_hold(proposal, problem):
    decision = decide(proposal, None, None, POLICY, MARKET)
    assert decision.action == "HOLD" and decision.reason.startswith("market_fit: ")
    assert problem in decision.reason


@pytest.mark.parametrize(("proposal", "problem"), [
    (Proposal("SELL", 80, 1160.0, 1159.0, 1100.0), "stop 1159 is already at or below the last close 1160"),
    (Proposal("SELL", 80, 1175.0, 1180.0, 1165.0), "target 1165 is already reached (at or above the last close"),
    (Proposal("SELL", 80, 1300.0, 1400.0, 1100.0), "entry 1300 is 9.333 ATR from the last close 1160"),
], ids=["sell-stop-below-close", "sell-target-reached", "sell-entry-far"])
def test_an_exit_is_never_held_back_by_levels_it_does_not_use(proposal, problem):
    """Review finding: a SELL is the strategy's only exit and closes at the market; levels left behind by a
    crash made it HOLD, so the position stayed open. The misfit is recorded, the exit stands."""
    decision = decide(proposal, None, None, POLICY, MARKET)
    assert decision.action == "SELL"
    fit = _fit(decision)
    assert fit.passed and fit.numbers["applied"] is False
    assert fit.detail.startswith("not applied to an exit") and problem in fit.detail
    flat = decide(proposal, None, None, POLICY, Market(1160.0, 0.0))  # flat bars: no ATR
    assert flat.action == "SELL" and "no usable last close and ATR" in _fit(flat).detail


@pytest.mark.parametrize("market", [Market(None, 15.0), Market(1160.0, None), Market(1160.0, 0.0),
                                    Market(math.nan, 15.0), Market(1160.0, math.inf), Market(-5.0, 15.0)],
                         ids=["no-close", "no-atr", "zero-atr", "nan-close", "inf-atr", "negative-close"])
def test_without_a_usable_close_and_atr_the_rule_fails_never_passes_silently(market):
    decision = decide(Proposal("BUY", 80, 1160.0, 1140.0, 1200.0), None, None, POLICY, market)
    assert decision.action == "HOLD"
    assert decision.reason.startswith("market_fit: no usable last close and ATR")


def test_the_entry_bound_is_per_strategy_and_inclusive():
    at_bound = Proposal("BUY", 80, 1175.0, 1150.0, 1220.0)  # 15 above the close: exactly 1 ATR
    assert decide(at_bound, None, None, POLICY, MARKET).action == "BUY"
    beyond = Proposal("BUY", 80, 1175.01, 1150.0, 1220.0)
    decision = decide(beyond, None, None, POLICY, MARKET)
    assert decision.action == "HOLD" and "more than 1 ATR" in decision.reason
    wider = SignalPolicy(require_confirmation=False, max_entry_distance_atr=2.5)
    assert decide(beyond, None, None, wider, MARKET).action == "BUY"


@pytest.mark.parametrize("bound", [0.0, 0.09, 10.01, math.nan, True, "1"])
def test_the_entry_bound_outside_its_range_is_refused(bound):
    with pytest.raises(ValueError, match="signal_policy.max_entry_distance_atr must be a number between 0.1 and 10"):
        SignalPolicy(max_entry_distance_atr=bound)


@pytest.mark.parametrize("levels", [(1e308, 1e307, 1.7e308), (1.7e308, 1e-300, 1.79e308), (5e-324, 4e-324, 1e308)],
                         ids=["huge", "huge-entry-tiny-stop", "subnormal"])
def test_extreme_finite_levels_are_hold_with_numbers_fit_for_json(levels):
    decision = decide(Proposal("BUY", 90, *levels), None, None, POLICY, MARKET)
    assert decision.action == "HOLD" and not _fit(decision).passed
    json.dumps([r.numbers for r in decision.rules], allow_nan=False)  # stored as JSON: no Infinity/NaN


# -- through the pipeline --------------------------------------------------------------------------------------------

@pytest.fixture
def fake():
    with FakeOpenAIServer() as server:
        yield server


def test_the_reviewed_answer_through_the_pipeline_sends_nothing(settings, fake):
    """analyst.kind llm, require_confirmation false, replay from 2005-01-03, the model answers entry 101.5 /
    stop 98 / target 108: before, the gate approved 197 units of a 1,202 index on a 100,000 account."""
    app = llm_app(settings, fake)
    user_id = llm_strategy(app, {"signal_policy": {"require_confirmation": False}})
    fake.enqueue(Behaviour.ok(VALID_BUY))
    execution = run(app, user_id)
    assert execution["status"] == "succeeded", execution["error"]
    signal = step(execution, "decide_signal")["output"]
    assert signal["action"] == "HOLD" and signal["reason"].startswith("market_fit: entry 101.5 is ")
    fit = next(r for r in signal["rules"] if r["rule"] == "market_fit")
    assert fit["numbers"]["close"] == FIRST_CLOSE and fit["numbers"]["entry_distance_atr"] > 100
    assert step(execution, "risk_check")["output"]["approved"] is False
    assert step(execution, "place_order")["status"] == "skipped"
    orders, _ = orders_and_events(app)
    assert orders == [] and app.broker.orders(step(execution, "risk_check")["input"]["account"]) == []
    with app.Session() as s:  # the stored signal carries the rule and its numbers
        stored = s.scalar(select(Signal))
    assert stored.action == "HOLD" and any(r["rule"] == "market_fit" and r["numbers"]["close"] == FIRST_CLOSE
                                           for r in stored.reasons)


def test_extreme_numbers_through_the_pipeline_end_without_an_exception_and_without_an_order(settings, fake):
    """The review's entry 1e308 / stop 1e307 / target 1.7e308 crashed risk_check (decimal.InvalidOperation)."""
    app = llm_app(settings, fake)
    # reward/risk of these levels is 0.78: a policy that accepts it let the BUY reach the gate
    user_id = llm_strategy(app, {"signal_policy": {"require_confirmation": False, "min_reward_risk": 0.5}})
    fake.enqueue(Behaviour.ok({**VALID_BUY, "entry": 1e308, "stop_loss": 1e307, "take_profit": 1.7e308}))
    execution = run(app, user_id)
    assert execution["status"] == "succeeded", execution["error"]
    assert all(s["error"] is None for s in execution["steps"])
    signal = step(execution, "decide_signal")["output"]
    assert signal["action"] == "HOLD" and signal["reason"].startswith("market_fit: entry 1e+308 is ")
    assert step(execution, "risk_check")["output"]["approved"] is False
    orders, _ = orders_and_events(app)
    assert orders == [] and app.broker.orders(step(execution, "risk_check")["input"]["account"]) == []


def test_a_fitting_buy_whose_levels_cannot_be_put_on_the_tick_is_denied_with_the_reason(settings, fake):
    """Entry at the close, stop 1e-300 (rounds down to 0 on the tick), target the largest float (its tick
    rounding overflowed the decimal context): the signal stands, the gate says no and why, nothing is sent."""
    app = llm_app(settings, fake)
    user_id = llm_strategy(app, {"signal_policy": {"require_confirmation": False}})
    fake.enqueue(Behaviour.ok({**VALID_BUY, "entry": 1202.0, "stop_loss": 1e-300,
                               "take_profit": 1.7976931348623157e308}))
    execution = run(app, user_id)
    assert execution["status"] == "succeeded", execution["error"]
    assert step(execution, "decide_signal")["output"]["action"] == "BUY"
    risk = step(execution, "risk_check")["output"]
    assert risk["approved"] is False and [d["rule"] for d in risk["denials"]] == ["levels"]
    assert "cannot be put on the tick" in risk["reason"] and "1e-300" in risk["reason"]
    orders, _ = orders_and_events(app)
    assert orders == [] and app.broker.orders(step(execution, "risk_check")["input"]["account"]) == []
