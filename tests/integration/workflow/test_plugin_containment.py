"""A plug-in answers; it cannot change what the steps after it read (the close a market entry is sized at,
the close and ATR the signal policy checks), cannot pass for the rules or a model in the trail, and its
import or construction failing is a clear refusal, not a server error (review of #14, H1, M2, M3)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from tests.support.helpers import demo
from tradetrail.db.models import Analysis
from tradetrail.db.trading_models import Order
from tradetrail.marketdata.sample import load_sample_daily
from tradetrail.schemas.strategy import StrategyConfig
from tradetrail.services.errors import InvalidStrategy
from tradetrail.services.runs.executions import get_execution, run_strategy
from tradetrail.services.strategies.configs import save_strategy

HERE = "tests.support.plugins"


def _config(plugin: str, **risk) -> StrategyConfig:
    return StrategyConfig.model_validate({
        "symbol": "SPX", "charts": {"enabled": False},
        "market_data": {"source": "sample", "replay_start": "2004-04-23"},
        "analyst": {"kind": "plugin", "plugin": plugin, "params": {"fast": 3, "slow": 10}},
        "signal_policy": {"require_confirmation": False},
        "risk": {"sizing": "fixed", "quantity": 1_000_000, "max_position_pct": 20, "max_exposure_pct": 90} | risk,
        "orders": {"protective": "none"}})


def _step(execution: dict, name: str) -> dict:
    return next(s for s in execution["steps"] if s["name"] == name)


@pytest.fixture
def user_id(app):
    app.settings.analyst_plugins = ["tradetrail.analyst.examples", HERE]
    return demo(app)[0]


def test_a_plugin_rescaling_the_bars_it_was_given_does_not_move_the_sizing_price_or_the_caps(app, user_id):
    with app.Session() as s:
        strategy = save_strategy(s, app, user_id, "rescaling", _config(f"{HERE}.misbehaving:Rescaling"))
    run = get_execution(app, run_strategy(app, user_id, "rescaling").execution_id)
    assert run["status"] == "succeeded", run["error"]
    assert _step(run, "decide_signal")["output"]["action"] == "BUY"  # the session 2004-04-23 crosses up
    last_close = float(load_sample_daily("SPX").loc[:"2004-04-23 21:00+00:00", "close"].iloc[-1])
    numbers = _step(run, "risk_check")["output"]["numbers"]
    assert numbers["reference_price"] == last_close  # not a hundredth of it
    market = _step(run, "decide_signal")["output"]["rules"][-1]["numbers"]
    assert market["close"] == last_close and market["atr"] < 100  # the policy read the real close and ATR
    with app.Session() as s:
        entry = s.scalar(select(Order).where(Order.strategy_id == strategy.id, Order.leg == "entry"))
    assert entry.quantity * numbers["sizing_price"] <= numbers["equity"] * 0.20 + 1e-6  # the 20 % cap holds


def test_a_plugin_cannot_pass_for_the_rules_or_a_model_in_the_trail(app, user_id):
    with app.Session() as s:
        save_strategy(s, app, user_id, "impostor", _config(f"{HERE}.misbehaving:Impostor", quantity=5))
    run = get_execution(app, run_strategy(app, user_id, "impostor").execution_id)
    assert run["status"] == "succeeded", run["error"]
    out = _step(run, "analyze")["output"]
    assert out["analyst"] == "plugin:rules" and out["model"] is None and out["cached"] is False
    assert out["label"].startswith(f"plug-in {HERE}.misbehaving:Impostor")
    with app.Session() as s:
        row = s.scalar(select(Analysis))
    assert (row.analyst, row.model, row.cached, row.prompt_tokens) == ("plugin:rules", None, False, None)


def test_a_plugin_returning_a_malformed_result_fails_the_step_with_the_reason(app, user_id):
    with app.Session() as s:
        save_strategy(s, app, user_id, "bad", _config(f"{HERE}.misbehaving:BadExtra", quantity=5))
    run = get_execution(app, run_strategy(app, user_id, "bad").execution_id)
    assert run["status"] == "failed" and run["failed_step"] == "analyze"
    assert "extra of type list" in run["error"]


def test_a_plugin_whose_module_fails_to_import_is_refused_at_save_with_the_reason(app, user_id):
    with app.Session() as s, pytest.raises(InvalidStrategy) as err:
        save_strategy(s, app, user_id, "nope", _config(f"{HERE}.failing_import:Anything", quantity=5))
    assert any("RuntimeError: this module refuses to be imported" in p for p in err.value.problems), err.value.problems


@pytest.mark.parametrize("plugin", ["tradetrail.analyst.examples.__init__:SmaCross",
                                    "tradetrail.analyst.examples.sma_cross:_Private",
                                    "tradetrail.analyst.examples._hidden:SmaCross"])
def test_a_plugin_naming_a_private_part_is_not_a_valid_name(plugin):
    with pytest.raises(ValueError, match="absolute module path of Python identifiers"):
        _config(plugin)
