"""Issue #14 in a live run: the bundled SMA-crossover plug-in trading a fixed size without protective orders on the
replay clock (sample S&P 500 data) — one entry order with no children, and the position closed by the SELL
signal — and a plug-in the operator does not allow refused when the strategy is saved and when it runs."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from tests.support.api_client import api_user
from tests.support.helpers import demo
from tradetrail.db.models import Analysis
from tradetrail.db.trading_models import Order, Position, Trade
from tradetrail.schemas.strategy import StrategyConfig
from tradetrail.services.errors import InvalidStrategy
from tradetrail.services.runs.executions import get_execution, run_strategy
from tradetrail.services.strategies.configs import save_strategy

PLUGIN = "tradetrail.analyst.examples.sma_cross:SmaCross"


def _config(plugin: str = PLUGIN, **analyst) -> StrategyConfig:
    # SMA3/SMA10 on SPX: crosses above at the close of 2004-04-23, below at the close of 2004-04-29
    return StrategyConfig.model_validate({
        "symbol": "SPX", "charts": {"enabled": False},
        "market_data": {"source": "sample", "replay_start": "2004-04-23"},
        "analyst": {"kind": "plugin", "plugin": plugin, "params": {"fast": 3, "slow": 10}, **analyst},
        "signal_policy": {"require_confirmation": False},
        "risk": {"sizing": "fixed", "quantity": 5}, "orders": {"protective": "none"}})


def _step(execution: dict, name: str) -> dict:
    return next(s for s in execution["steps"] if s["name"] == name)


def test_a_fixed_size_entry_without_children_and_its_exit_on_the_sell_signal(app):
    user_id, _ = demo(app)
    with app.Session() as s:
        strategy = save_strategy(s, app, user_id, "cross", _config())
    runs = [get_execution(app, run_strategy(app, user_id, "cross").execution_id) for _ in range(6)]
    assert all(r["status"] == "succeeded" for r in runs), [r["error"] for r in runs]
    signals = [_step(r, "decide_signal")["output"]["action"] for r in runs]
    assert signals == ["BUY", "HOLD", "HOLD", "HOLD", "SELL", "HOLD"], signals

    analysis = _step(runs[0], "analyze")["output"]
    assert analysis["analyst"] == "sma_cross" and "SMA crossover" in analysis["label"]
    assert analysis["answer"]["stop_loss"] is None and analysis["answer"]["take_profit"] is None
    rules = {r["rule"]: r for r in _step(runs[0], "decide_signal")["output"]["rules"]}
    assert rules["reward_risk"]["numbers"] == {"applied": False}
    risk = _step(runs[0], "risk_check")["output"]
    assert risk["approved"] and risk["quantity"] == 5 and risk["numbers"]["size_fixed"] == 5

    with app.Session() as s:
        orders = s.scalars(select(Order).where(Order.strategy_id == strategy.id).order_by(Order.id)).all()
        position = s.scalar(select(Position).where(Position.strategy_id == strategy.id))
        trades = s.scalars(select(Trade).where(Trade.strategy_id == strategy.id)).all()
        analysts = set(s.scalars(select(Analysis.analyst)).all())
    assert [(o.leg, o.side, o.order_type, o.quantity, o.parent_client_order_id, o.state) for o in orders] == [
        ("entry", "BUY", "MKT", 5, None, "FILLED"), ("exit", "SELL", "MKT", 5, None, "FILLED")]
    assert orders[0].execution_id == runs[0]["id"] and orders[1].execution_id == runs[4]["id"]
    assert orders[0].risk_per_unit is None
    exit_step = _step(runs[4], "place_order")["output"]
    assert exit_step["status"] == "accepted" and exit_step["cancelled_protection"] == []
    assert position.quantity == 0
    assert len(trades) == 1 and trades[0].status == "closed" and trades[0].r_multiple is None
    assert analysts == {"sma_cross"}


def test_a_plugin_not_allowed_is_refused_at_save_time_and_fails_the_run(app):
    user_id, _ = demo(app)
    with app.Session() as s, pytest.raises(InvalidStrategy) as err:
        save_strategy(s, app, user_id, "shell", _config("os.path:join"))
    assert err.value.problems[0].startswith("analyst.plugin: plug-in 'os.path:join' is not allowed")
    with app.Session() as s, pytest.raises(InvalidStrategy, match="bad params"):
        save_strategy(s, app, user_id, "wrong", _config(params={"fast": 10, "slow": 3}))
    with app.Session() as s:
        save_strategy(s, app, user_id, "cross", _config())
    app.settings.analyst_plugins = []  # the operator withdrew the permission after the strategy was saved
    run = get_execution(app, run_strategy(app, user_id, "cross").execution_id)
    assert run["status"] == "failed" and run["failed_step"] == "analyze"
    assert "analyst plug-in" in run["error"] and "not allowed" in run["error"]


def test_the_api_refuses_a_plugin_not_allowed_with_a_422_naming_the_field(app):
    demo(app)
    client = api_user(app, "demo")
    body = {"config": _config("subprocess:Popen").to_json()}
    checked = client.post("/api/strategies/validate", json=body)
    assert checked.status_code == 200 and checked.json()["valid"] is False, checked.text
    assert any("analyst.plugin" in p and "not allowed" in p for p in checked.json()["problems"]), checked.text
    saved = client.put("/api/strategies/demo", json=body)
    assert saved.status_code == 422, saved.text
    assert [f["field"] for f in saved.json()["error"]["fields"]] == ["analyst.plugin"], saved.text
