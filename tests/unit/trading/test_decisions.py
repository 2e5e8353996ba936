"""The decision glue (tradetrail.trading.decisions) with and without protective orders: what an entry becomes."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from tradetrail.analyst.schema import AnalystAnswer
from tradetrail.domain.orders import Leg, OrderType, Side
from tradetrail.domain.risk import RiskInputs
from tradetrail.schemas.strategy import StrategyConfig
from tradetrail.trading.decisions import entry_orders, entry_plan, exit_orders, risk_decision, signal_decision

ACCOUNT = RiskInputs(equity=100_000.0, cash=100_000.0, exposure=0.0, open_positions=0, position_qty=0.0,
                     day_start_equity=100_000.0, consecutive_losses=0)
LATEST = {"close": 100.0, "atr": 4.0}


def _config(protective: str, entry_type: str = "MKT", **risk) -> StrategyConfig:
    sizing = {"sizing": "fixed", "quantity": 7} if protective == "none" else {}
    return StrategyConfig.model_validate({
        "symbol": "SPX", "signal_policy": {"require_confirmation": False},
        "orders": {"protective": protective, "entry_type": entry_type}, "risk": {**sizing, **risk}})


def _answer(action: str, entry: float | None = 100.004, stop=None, target=None) -> AnalystAnswer:
    return AnalystAnswer(action=action, confidence=100, trend="bullish", entry=entry, stop_loss=stop,
                         take_profit=target, key_factors=["cross"], reasoning="fast above slow")


def _through(config: StrategyConfig, answer: AnalystAnswer, inputs: RiskInputs = ACCOUNT):
    signal = signal_decision(config, answer, None, None, LATEST)
    plan = entry_plan(config, signal, 100.0)
    return signal, plan, risk_decision(config, signal, plan, inputs)


@pytest.mark.parametrize(("entry_type", "limit"), [("MKT", None), ("LMT", 100.0)])
def test_an_unprotected_entry_is_one_order_of_the_fixed_size(entry_type, limit):
    config = _config("none", entry_type)
    signal, plan, decision = _through(config, _answer("BUY"))
    assert signal.action == "BUY" and decision.approved and decision.quantity == 7
    assert plan.levels == {"entry": 100.0, "stop_loss": None, "take_profit": None} and plan.problem is None
    (spec,) = entry_orders(config, "run-1", decision, plan)
    assert (spec.leg, spec.side, spec.order_type, spec.quantity, spec.limit_price, spec.parent_client_order_id) == (
        Leg.ENTRY, Side.BUY, OrderType(entry_type), 7, limit, None)


def test_an_unprotected_entry_drops_levels_the_analyst_gave():
    config = _config("none")
    _, plan, decision = _through(config, _answer("BUY", 100.0, 90.0, 130.0))
    assert plan.levels["stop_loss"] is None and plan.levels["take_profit"] is None
    assert [s.leg for s in entry_orders(config, "run-1", decision, plan)] == [Leg.ENTRY]


def test_a_protected_entry_is_a_bracket_and_a_buy_without_levels_holds():
    config = _config("bracket")
    signal, plan, decision = _through(config, _answer("BUY", 100.0, 95.0, 110.0))
    assert decision.approved and decision.quantity == 142  # 1 % of equity over (102 - 95)
    assert [s.leg for s in entry_orders(config, "run-1", decision, plan)] == [Leg.ENTRY, Leg.STOP, Leg.TARGET]
    held, _, none = _through(config, _answer("BUY"))
    assert held.action == "HOLD" and held.reason.startswith("reward_risk") and none.action == "none"


def test_the_exit_is_one_market_sell_for_the_day():
    (spec,) = exit_orders("run-2", 7.5)
    assert (spec.leg, spec.side, spec.order_type, spec.quantity, spec.tif) == (Leg.EXIT, Side.SELL, OrderType.MKT,
                                                                             7.5, "DAY")


def test_levels_off_the_tick_grid_are_a_denial():
    config = _config("none")
    signal = signal_decision(config, _answer("BUY", 1e-9), None, None, {"close": 1e-9, "atr": 1.0})
    plan = entry_plan(config, signal, 1e-9)
    decision = risk_decision(config, signal, plan, ACCOUNT)
    assert plan.problem and not decision.approved and decision.denials[0].rule == "levels"


def test_risk_sizing_without_protective_orders_is_refused_naming_both_fields():
    with pytest.raises(ValidationError) as err:
        StrategyConfig.model_validate({"symbol": "SPX", "orders": {"protective": "none"}})
    assert "risk.sizing" in str(err.value) and "orders.protective" in str(err.value)
    defaults = StrategyConfig(symbol="SPX")
    assert (defaults.orders.protective, defaults.risk.sizing, defaults.risk.quantity) == ("bracket", "risk", 1)
