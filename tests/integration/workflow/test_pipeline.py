"""The whole analysis pipeline on the embedded defaults: real sample data, real charts, rules analyst."""

from __future__ import annotations

from datetime import date

import pandas as pd
from sqlalchemy import select, update

from tests.support.helpers import demo
from tradetrail.broker.port import BrokerHealth
from tradetrail.catalogue import replay_clock as replay
from tradetrail.db.models import Analysis, Signal, Strategy
from tradetrail.marketdata.sample import load_sample_daily
from tradetrail.schemas.strategy import MarketDataConfig, StrategyConfig
from tradetrail.services.runs.executions import get_execution, run_strategy
from tradetrail.services.strategies.configs import save_strategy

STEP_NAMES = ["load_strategy", "check_broker", "resolve_contract", "fetch_market_data", "compute_indicators",
              "render_charts", "analyze", "decide_signal", "risk_check", "place_order", "track_order",
              "update_portfolio", "complete"]


def test_demo_run_succeeds_with_every_step_and_both_charts(app):
    user_id, _ = demo(app)
    summary = run_strategy(app, user_id, "demo")
    data = get_execution(app, summary.execution_id)
    assert data["status"] == "succeeded", data["error"]
    assert [s["name"] for s in data["steps"]] == STEP_NAMES
    assert all(s["status"] == "succeeded" for s in data["steps"])
    charts = data["steps"][5]
    for tf in ("daily", "weekly"):
        png, ctype = app.artifacts.load(charts["artifacts"][f"chart_{tf}"])
        assert ctype == "image/png" and png.startswith(b"\x89PNG\r\n\x1a\n")
        assert charts["output"][tf]["url"] == f"/api/artifacts/{charts['artifacts'][f'chart_{tf}']}"
    analyze = data["steps"][6]
    assert analyze["output"]["analyst"] == "rules" and "rules analyst" in analyze["output"]["label"]
    assert set(analyze["input"]["image_hashes"]) == {charts["artifacts"]["chart_daily"],
                                                     charts["artifacts"]["chart_weekly"]}
    with app.Session() as s:
        signal = s.scalar(select(Signal).where(Signal.execution_id == summary.execution_id))
        analysis = s.scalar(select(Analysis).where(Analysis.execution_id == summary.execution_id))
    assert signal.action == data["steps"][7]["output"]["action"] and analysis.valid
    assert analysis.templates["system"]["name"] == "decision" and analysis.prompt_hash


def test_first_run_sees_replay_start_and_no_bar_after_it(app):
    user_id, _ = demo(app)
    data = get_execution(app, run_strategy(app, user_id, "demo").execution_id)
    fetched = data["steps"][3]["output"]["daily"]
    assert fetched["last"] == "2005-01-03T21:00:00+00:00" == data["as_of"]
    sample = load_sample_daily("SPX")
    assert fetched["last_close"] == sample.loc["2005-01-03 21:00:00+00:00", "close"]
    assert fetched["count"] == 1500


def test_ten_runs_advance_the_market_one_session_each(app):
    user_id, _ = demo(app)
    as_ofs = [get_execution(app, run_strategy(app, user_id, "demo").execution_id)["as_of"] for _ in range(10)]
    sessions = load_sample_daily("SPX").index
    start = sessions.searchsorted(pd.Timestamp("2005-01-03 21:00", tz="UTC"))
    assert as_ofs == [ts.isoformat() for ts in sessions[start:start + 10]]


def test_disabled_strategy_is_skipped_at_load_strategy(app):
    user_id, strategy = demo(app)
    with app.Session() as s:
        s.execute(update(Strategy).where(Strategy.id == strategy.id).values(enabled=False))
        s.commit()
    data = get_execution(app, run_strategy(app, user_id, "demo").execution_id)
    assert data["status"] == "skipped"
    assert [(s["name"], s["status"]) for s in data["steps"]] == [("load_strategy", "skipped")]


def test_too_few_bars_fails_fetch_with_the_number_needed(app):
    user_id, _ = demo(app)
    config = StrategyConfig(symbol="SPX", market_data=MarketDataConfig(source="sample",
                                                                       replay_start=date(1999, 6, 1)))
    with app.Session() as s:
        save_strategy(s, app, user_id, "young", config)
    data = get_execution(app, run_strategy(app, user_id, "young").execution_id)
    assert data["status"] == "failed" and data["failed_step"] == "fetch_market_data"
    step = data["steps"][-1]
    assert "need at least 252" in step["error"] and step["output"]["daily"]["count"] < 252
    with app.Session() as s:
        assert s.scalar(select(Signal)) is None


class _LoggedOutBroker:
    """A broker adapter whose session is not authenticated (as IBKR reports after an idle timeout)."""

    name = "logged_out"

    def health(self) -> BrokerHealth:
        return BrokerHealth(broker=self.name, authenticated=False, connected=True, competing=False, paper=True,
                            message="session expired")


def test_unhealthy_broker_fails_at_check_broker_not_later(app):
    user_id, _ = demo(app)
    with app.Session() as s:  # a real-clock strategy trades at the default broker (a replayed one at the simulator)
        save_strategy(s, app, user_id, "paper", StrategyConfig(symbol="SPX"))
    app.broker = _LoggedOutBroker()
    data = get_execution(app, run_strategy(app, user_id, "paper").execution_id)
    assert data["failed_step"] == "check_broker"
    assert "not authenticated" in data["error"] and "session expired" in data["error"]
    assert [s["name"] for s in data["steps"]] == ["load_strategy", "check_broker"]


def test_charts_disabled_skips_render_and_rules_analyst_still_decides(app):
    user_id, _ = demo(app)
    config = StrategyConfig.model_validate({"symbol": "SPX", "charts": {"enabled": False},
                                            "market_data": {"source": "sample", "replay_start": "2006-03-01"}})
    with app.Session() as s:
        save_strategy(s, app, user_id, "nocharts", config)
    data = get_execution(app, run_strategy(app, user_id, "nocharts").execution_id)
    assert data["status"] == "succeeded"
    assert data["steps"][5]["status"] == "skipped" and data["steps"][6]["input"]["image_hashes"] == []


def test_replaying_the_same_session_reproduces_charts_and_prompt(app):
    user_id, strategy = demo(app)
    first = get_execution(app, run_strategy(app, user_id, "demo").execution_id)
    with app.Session() as s:
        replay.reset(s, strategy.id)
    second = get_execution(app, run_strategy(app, user_id, "demo").execution_id)
    assert first["as_of"] == second["as_of"]
    assert first["steps"][5]["artifacts"] == second["steps"][5]["artifacts"]
    assert first["steps"][6]["input"]["prompt_hash"] == second["steps"][6]["input"]["prompt_hash"]
    assert first["steps"][7]["output"] == second["steps"][7]["output"]
