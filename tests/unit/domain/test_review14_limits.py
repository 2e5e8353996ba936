"""Two limits the first version of fixed sizing and unprotected entries missed (review of #14): a fixed size
with a stop is also capped by the risk budget (risk_per_trade_pct is a limit, not only a way to size), and
without protective orders a SELL — the only way out — is never held back by the confidence or
confirmation rules."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tradetrail.domain.risk import EntryPrice, RiskInputs, RiskLimits, evaluate
from tradetrail.domain.signal_policy import Market, Proposal, SignalPolicy, decide

pytestmark = pytest.mark.once
ACCOUNT = RiskInputs(equity=100_000.0, cash=100_000.0, exposure=0.0, open_positions=0, position_qty=0.0,
                     day_start_equity=100_000.0, consecutive_losses=0)


def test_a_fixed_size_with_a_stop_is_cut_to_the_risk_budget():
    limits = RiskLimits(sizing="fixed", quantity=1000, risk_per_trade_pct=1.0, max_position_pct=100.0,
                        max_exposure_pct=100.0)
    d = evaluate("BUY", 100.0, 90.0, 130.0, ACCOUNT, limits, EntryPrice.limit(100.0))
    assert d.approved and d.quantity == 100  # 1 % of 100,000 over 10 per unit, not 1,000 (99 % at risk)
    assert d.numbers["capped_by"] == {"risk_per_trade_pct": 100} and d.numbers["risk_budget"] == 1000.0
    assert "risking 1000.00 of 1000.00" in d.reason


@given(quantity=st.integers(1, 1_000_000), stop=st.floats(1.0, 99.0), risk=st.floats(0.01, 5.0))
def test_a_fixed_size_never_risks_more_than_the_budget(quantity, stop, risk):
    limits = RiskLimits(sizing="fixed", quantity=quantity, risk_per_trade_pct=risk, max_position_pct=100.0,
                        max_exposure_pct=100.0, min_reward_risk=0.1)
    d = evaluate("BUY", 100.0, stop, 200.0, ACCOUNT, limits, EntryPrice.limit(100.0))
    if d.approved:
        assert d.quantity <= quantity
        assert d.quantity * (100.0 - stop) <= ACCOUNT.equity * risk / 100 + 1e-6


@pytest.mark.parametrize("confidence, primary, higher", [(10, "BULLISH", "BULLISH"), (100, "NEUTRAL", None),
                                                         (100, None, "BULLISH")])
def test_without_protection_a_sell_is_never_held_back_by_confidence_or_confirmation(confidence, primary, higher):
    policy = SignalPolicy(min_confidence=60, require_confirmation=True, require_higher_timeframe=True)
    sell = Proposal("SELL", confidence, 100.0, None, None)
    decided = decide(sell, primary, higher, policy, Market(100.0, 2.0), protective=False)
    assert decided.action == "SELL", decided.reason
    held = [r for r in decided.rules if r.numbers.get("applied") is False]
    assert held and all("only way out" in r.detail for r in held if r.rule != "reward_risk" and
                        r.rule != "market_fit")
    # With protective orders the stop is there to close the trade: the rules bind as before.
    with_stop = Proposal("SELL", confidence, 100.0, 104.0, 90.0)
    assert decide(with_stop, primary, higher, policy, Market(100.0, 2.0), protective=True).action == "HOLD"


def test_without_protection_a_buy_still_needs_confidence_and_confirmation():
    policy = SignalPolicy(min_confidence=60, require_confirmation=True)
    buy = Proposal("BUY", 10, 100.0, None, None)
    assert decide(buy, "BULLISH", None, policy, Market(100.0, 2.0), protective=False).action == "HOLD"


@pytest.mark.parametrize("field", ["equity", "cash", "exposure", "day_start_equity", "commission_per_unit",
                                   "min_commission", "position_qty"])
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
@pytest.mark.parametrize("protective", [True, False])
def test_an_entry_is_denied_not_raised_when_an_account_number_is_no_number(field, bad, protective):
    import dataclasses

    inputs = dataclasses.replace(ACCOUNT, **{field: bad})
    limits = RiskLimits(sizing="fixed", quantity=10)
    d = evaluate("BUY", 100.0, 90.0, 130.0, inputs, limits, EntryPrice.market(100.0, 2.0), protective=protective)
    assert not d.approved and d.quantity == 0 and d.denials[-1].rule == "account_values", d
    assert field in d.reason


def test_a_negative_commission_is_denied_and_an_exit_of_no_number_is_refused():
    import dataclasses

    d = evaluate("BUY", 100.0, 90.0, 130.0, dataclasses.replace(ACCOUNT, commission_per_unit=-0.5),
                 RiskLimits(), EntryPrice.limit(100.0))
    assert not d.approved and "account_values" in d.reason
    held = dataclasses.replace(ACCOUNT, position_qty=float("nan"))
    out = evaluate("SELL", None, None, None, held, RiskLimits())
    assert not out.approved and out.action == "exit" and "account_values" in out.reason


@pytest.mark.parametrize("params", [{"fast": float("nan")}, {"fast": float("inf")}, {"a": [1, {"b": float("-inf")}]},
                                    {"a": {"b": {"c": {"d": {"e": {"f": {"g": 1}}}}}}}])
def test_plugin_params_that_json_cannot_hold_are_refused(params):
    from pydantic import ValidationError

    from tradetrail.schemas.strategy import StrategyConfig

    with pytest.raises(ValidationError, match="params"):
        StrategyConfig.model_validate({"symbol": "SPX", "analyst": {
            "kind": "plugin", "plugin": "tradetrail.analyst.examples.sma_cross:SmaCross", "params": params}})
