"""Fixed sizing and entries without protective orders (issue #14): the risk gate and the signal policy.

A fixed size is still capped by every limit at the price the order trades at; an entry without protective orders
needs no stop or target, and the reward/risk minimum and the stop/target parts of ``market_fit`` do not apply to
it (the entry distance does). With protective orders a BUY without a stop or target is a HOLD, never an order."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from tradetrail.analyst.schema import AnalystAnswer
from tradetrail.domain.risk import EntryPrice, RiskInputs, RiskLimits, TradingState, evaluate
from tradetrail.domain.signal_policy import Market, Proposal, SignalPolicy, decide

ACCOUNT = RiskInputs(equity=100_000.0, cash=100_000.0, exposure=0.0, open_positions=0, position_qty=0.0,
                     day_start_equity=100_000.0, consecutive_losses=0)
FIXED = RiskLimits(sizing="fixed", quantity=50)
MARKET = Market(close=100.0, atr=5.0)
POLICY = SignalPolicy(require_confirmation=False)


def _buy(limits: RiskLimits, inputs: RiskInputs = ACCOUNT, stop=None, target=None, price=None, protective=False):
    return evaluate("BUY", 100.0, stop, target, inputs, limits, price or EntryPrice.market(100.0, 2.0),
                    protective=protective)


# -- the risk gate -------------------------------------------------------------------------------------------------

def test_a_fixed_size_without_protection_buys_the_quantity_sized_at_the_price_it_trades_at():
    d = _buy(FIXED)
    assert d.approved and d.quantity == 50
    assert d.numbers["size_fixed"] == 50 and d.numbers["sizing_price"] == pytest.approx(102.0)
    assert d.numbers["stop"] is None and "reward_risk" not in d.numbers
    assert d.numbers["exposure_after_pct"] == pytest.approx(50 * 102.0 / 100_000 * 100, abs=0.01)
    assert "fixed size without a stop" in d.reason


def test_a_stop_or_target_given_without_protection_is_ignored():
    """Levels no order will carry decide nothing: a stop above the price would deny a bracketed entry."""
    d = _buy(FIXED, stop=150.0, target=90.0)
    assert d.approved and d.quantity == 50 and d.numbers["stop"] is None


@pytest.mark.parametrize(("inputs", "limits", "cap", "quantity"), [
    (ACCOUNT, RiskLimits(sizing="fixed", quantity=500, max_position_pct=20.0), "max_position_pct", 196),
    (dataclasses.replace(ACCOUNT, cash=5_000.0, commission_per_unit=1.0, min_commission=10.0), FIXED, "cash", 48),
])
def test_a_fixed_size_is_capped_by_position_and_cash_at_the_trading_price(inputs, limits, cap, quantity):
    d = _buy(limits, inputs)
    assert d.approved and d.quantity == quantity and d.numbers["capped_by"] == {cap: quantity}


@pytest.mark.parametrize(("inputs", "limits", "rule"), [
    (dataclasses.replace(ACCOUNT, exposure=85_000.0), FIXED, "max_exposure"),
    (dataclasses.replace(ACCOUNT, open_positions=10), FIXED, "max_open_positions"),
    (dataclasses.replace(ACCOUNT, equity=96_000.0), FIXED, "daily_loss_limit"),
    (dataclasses.replace(ACCOUNT, consecutive_losses=3), FIXED, "consecutive_losses"),
    (dataclasses.replace(ACCOUNT, strategy_state=TradingState.REDUCING), FIXED, "trading_state"),
    (dataclasses.replace(ACCOUNT, position_qty=5.0), FIXED, "position_open"),
    (dataclasses.replace(ACCOUNT, cash=50.0), FIXED, "min_size"),
])
def test_a_fixed_size_is_still_denied_by_every_limit(inputs, limits, rule):
    d = _buy(limits, inputs)
    assert not d.approved and rule in [x.rule for x in d.denials], d


def test_a_fixed_size_needs_a_usable_trading_price():
    d = _buy(FIXED, price=EntryPrice.market(None, 2.0))
    assert not d.approved and d.denials[0].rule == "sizing_price"


def test_risk_sizing_without_protection_is_denied_naming_the_setting():
    d = _buy(RiskLimits())
    assert not d.approved and d.denials[0].rule == "sizing" and "risk.sizing" in d.reason


def test_an_unprotected_buy_needs_an_entry():
    d = evaluate("BUY", None, None, None, ACCOUNT, FIXED, EntryPrice.market(100.0, 2.0), protective=False)
    assert not d.approved and d.denials[0].rule == "levels"


def test_a_fixed_size_with_protection_keeps_the_level_and_reward_risk_rules():
    ok = _buy(FIXED, stop=95.0, target=115.0, protective=True)
    assert ok.approved and ok.quantity == 50 and ok.numbers["reward_risk"] == pytest.approx(3.0)
    assert "risking" in ok.reason and "risk_budget" not in ok.numbers
    poor = _buy(FIXED, stop=95.0, target=101.0, protective=True)
    assert not poor.approved and poor.denials[0].rule == "min_reward_risk"
    missing = _buy(FIXED, protective=True)
    assert not missing.approved and missing.denials[0].rule == "levels"


def test_the_default_is_risk_sizing_with_protection():
    assert (RiskLimits().sizing, RiskLimits().quantity) == ("risk", 1)
    d = evaluate("BUY", 100.0, 95.0, 110.0, ACCOUNT, RiskLimits(), EntryPrice.limit(100.0))
    assert d.approved and d.quantity == 200 and d.numbers["size_by_risk"] == 200


@pytest.mark.parametrize("bad", [{"sizing": "half"}, {"quantity": 0}, {"quantity": 2.5}, {"quantity": True}])
def test_sizing_settings_are_checked(bad):
    with pytest.raises(ValueError):
        RiskLimits(**bad)


@settings(max_examples=300, deadline=None)
@given(quantity=st.integers(1, 1_000_000), equity=st.floats(1_000, 1e7), cash_share=st.floats(0, 1),
       exposure_share=st.floats(0, 1), price=st.floats(1, 5_000), position_pct=st.floats(0.1, 100),
       exposure_pct=st.floats(1, 100))
def test_an_approved_fixed_size_never_passes_a_cap(quantity, equity, cash_share, exposure_share, price, position_pct,
                                                   exposure_pct):
    inputs = dataclasses.replace(ACCOUNT, equity=equity, cash=equity * cash_share, exposure=equity * exposure_share,
                                 day_start_equity=equity, commission_per_unit=0.01, min_commission=1.0)
    limits = RiskLimits(sizing="fixed", quantity=quantity, max_position_pct=position_pct,
                        max_exposure_pct=exposure_pct)
    d = evaluate("BUY", price, None, None, inputs, limits, EntryPrice.market(price, 2.0), protective=False)
    if not d.approved:
        assert d.denials
        return
    sizing = price * 1.02
    assert 1 <= d.quantity <= quantity and d.quantity == int(d.quantity)
    assert d.quantity * sizing <= equity * position_pct / 100 + 1e-6
    assert d.quantity * (sizing + 0.01) <= inputs.cash - 1.0 + 1e-6
    assert inputs.exposure + d.quantity * sizing <= equity * exposure_pct / 100 * (1 + 1e-9) + 1e-6


# -- the signal policy ---------------------------------------------------------------------------------------------

def test_an_unprotected_buy_without_levels_passes_on_its_entry_distance():
    d = decide(Proposal("BUY", 100, 101.0, None, None), None, None, POLICY, MARKET, protective=False)
    assert d.action == "BUY", d.reason
    rules = {r.rule: r for r in d.rules}
    assert rules["reward_risk"].passed and rules["reward_risk"].numbers == {"applied": False}
    assert rules["market_fit"].passed and "no stop or target" in rules["market_fit"].detail


def test_an_unprotected_buy_still_needs_its_entry_near_the_close():
    d = decide(Proposal("BUY", 100, 120.0, None, None), None, None, POLICY, MARKET, protective=False)
    assert d.action == "HOLD" and d.reason.startswith("market_fit: entry 120 is 4 ATR")


def test_an_unprotected_buy_ignores_a_stop_on_the_wrong_side_and_a_poor_reward_risk():
    d = decide(Proposal("BUY", 100, 100.0, 99.0, 100.5), None, None, POLICY,
               Market(close=98.0, atr=5.0), protective=False)
    assert d.action == "BUY", d.reason


def test_an_unprotected_sell_without_levels_closes():
    d = decide(Proposal("SELL", 100, 99.0, None, None), None, None, POLICY, MARKET, protective=False)
    assert d.action == "SELL", d.reason


@pytest.mark.parametrize("action", ["BUY", "SELL"])
def test_with_protection_an_entry_without_stop_and_target_is_a_hold_saying_why(action):
    d = decide(Proposal(action, 100, 100.0, None, None), None, None, POLICY, MARKET)
    assert d.action == "HOLD" and d.reason.startswith("reward_risk:")
    rule = next(r for r in d.rules if r.rule == "reward_risk")
    assert rule.numbers["missing"] == ["stop_loss", "take_profit"] and "protective" in rule.numbers["why"]


def test_protection_is_the_default_and_keeps_the_reward_risk_rule():
    d = decide(Proposal("BUY", 100, 100.0, 95.0, 102.0), None, None, POLICY, MARKET)
    assert d.action == "HOLD" and d.reason.startswith("reward_risk: reward/risk 0.4")


# -- the answer shape ----------------------------------------------------------------------------------------------

def _answer(**levels) -> AnalystAnswer:
    return AnalystAnswer(confidence=100, trend="bullish", key_factors=["x"], reasoning="r", **levels)


def test_a_buy_or_sell_may_leave_out_stop_and_target_but_not_the_entry():
    assert _answer(action="BUY", entry=100.0, stop_loss=None, take_profit=None).stop_loss is None
    assert _answer(action="SELL", entry=100.0, stop_loss=None, take_profit=None).entry == 100.0
    with pytest.raises(ValidationError, match="needs an entry"):
        _answer(action="BUY", entry=None, stop_loss=95.0, take_profit=110.0)


@pytest.mark.parametrize(("action", "stop", "target"), [
    ("BUY", 101.0, None), ("BUY", None, 99.0), ("BUY", 95.0, 99.0), ("SELL", 99.0, None), ("SELL", None, 101.0)])
def test_levels_that_are_given_must_still_be_ordered(action, stop, target):
    with pytest.raises(ValidationError, match="needs"):
        _answer(action=action, entry=100.0, stop_loss=stop, take_profit=target)
