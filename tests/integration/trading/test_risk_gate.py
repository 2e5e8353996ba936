"""Review findings on what the risk gate is fed (services/risk_inputs.gather), on real runs and the real database."""

from __future__ import annotations

from datetime import UTC, datetime

from tests.support.fresh_bars import write_fresh_spx
from tests.support.helpers import demo
from tradetrail.db.trading_models import PortfolioSnapshot
from tradetrail.domain.risk import RiskLimits, evaluate
from tradetrail.runtime.build import build_app
from tradetrail.schemas.strategy import MarketDataConfig, StrategyConfig
from tradetrail.services.runs.executions import get_execution, run_strategy
from tradetrail.services.strategies.configs import save_strategy
from tradetrail.settings import Settings
from tradetrail.trading.risk_inputs import gather


def _step(execution: dict, name: str) -> dict:
    return next(s for s in execution["steps"] if s["name"] == name)


def test_working_entries_count_against_max_exposure(settings, tmp_path):
    # Two real-clock strategies share the user's account (a replayed one would trade on its own): a market
    # whose latest closed session is the sample's 2005-01-03, where the rules analyst buys.
    ahead = write_fresh_spx(tmp_path / "bars")
    app = build_app(Settings(home=settings.home, database_url=settings.database_url,
                             market_data_dir=tmp_path / "bars"), migrate=False)
    user_id, _ = demo(app)
    limits = RiskLimits(max_exposure_pct=30.0)  # each entry is capped at 20 % by max_position_pct
    config = StrategyConfig(symbol="SPX", market_data=MarketDataConfig(source="files"), risk=limits)
    with app.Session() as s:
        save_strategy(s, app, user_id, "paper", config)
        save_strategy(s, app, user_id, "paper2", config)

    a = get_execution(app, run_strategy(app, user_id, "paper").execution_id)  # MKT bracket, working
    b = get_execution(app, run_strategy(app, user_id, "paper2").execution_id)  # same account, same session
    assert _step(a, "risk_check")["output"]["approved"] is True, a["error"]
    assert _step(a, "place_order")["output"]["status"] == "accepted"
    account = app.broker.account(user_id)
    assert _step(a, "risk_check")["input"]["account"] == _step(b, "risk_check")["input"]["account"] == account
    denied = _step(b, "risk_check")["output"]  # a's entry is still working: it counts as exposure already
    assert denied["approved"] is False and [d["rule"] for d in denied["denials"]] == ["max_exposure"]
    assert denied["numbers"]["exposure_after_pct"] > 30

    app.broker.sync(account, ahead[0].to_pydatetime())  # both entries fill at the next open
    values = app.broker.account_values(account)
    exposure = sum(abs(p.quantity) * p.market_price for p in app.broker.positions(account))
    assert exposure / values.equity * 100 <= limits.max_exposure_pct, \
        f"exposure {exposure / values.equity:.1%} with max_exposure_pct {limits.max_exposure_pct}"


def test_daily_loss_limit_applies_on_the_first_day(app):
    user_id, strategy = demo(app)
    account = app.broker.account(user_id)
    equity_now = app.broker.account_values(account).equity  # 100,000 (nothing traded)
    morning = datetime(2024, 3, 4, 14, 35, tzinfo=UTC)  # 09:35 New York: the first run of the day
    with app.Session() as s:  # what update_portfolio stored then: equity was 5 % higher this morning
        s.add(PortfolioSnapshot(user_id=user_id, account=account, kind="execution", at=morning,
                                cash=equity_now * 1.05, equity=equity_now * 1.05, positions_value=0.0,
                                realized_pnl=0.0, unrealized_pnl=0.0, positions=[]))
        s.commit()
    afternoon = datetime(2024, 3, 4, 19, 0, tzinfo=UTC)  # 14:00 New York, same exchange day
    inputs, info = gather(app, user_id=user_id, strategy_id=strategy.id, account=account, symbol="SPX",
                          as_of=afternoon)
    decision = evaluate("BUY", 100.0, 95.0, 110.0, inputs, RiskLimits())
    assert "daily_loss_limit" in [d.rule for d in decision.denials], (inputs.day_start_equity, info, decision)

