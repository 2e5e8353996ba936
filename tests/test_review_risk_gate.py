"""Review findings on what the risk gate is fed (services/risk_inputs.gather), on real runs and the real database."""

from __future__ import annotations

from datetime import UTC, datetime

from tests.helpers import demo
from tradetrail.db.trading_models import PortfolioSnapshot
from tradetrail.domain.risk import RiskLimits, evaluate
from tradetrail.services.bootstrap import demo_config
from tradetrail.services.executions import get_execution, run_strategy
from tradetrail.services.risk_inputs import gather
from tradetrail.services.strategies import save_strategy


def _step(execution: dict, name: str) -> dict:
    return next(s for s in execution["steps"] if s["name"] == name)


def test_working_entries_count_against_max_exposure(app):
    user_id, _ = demo(app)
    limits = RiskLimits(max_exposure_pct=30.0)  # each entry is capped at 20 % by max_position_pct
    config = demo_config().model_copy(update={"risk": limits})
    with app.Session() as s:
        save_strategy(s, app, user_id, "demo", config)
        save_strategy(s, app, user_id, "demo2", config)

    a = get_execution(app, run_strategy(app, user_id, "demo").execution_id)  # 2005-01-03: MKT bracket, working
    b = get_execution(app, run_strategy(app, user_id, "demo2").execution_id)  # same account, same session
    assert _step(a, "risk_check")["output"]["approved"] is True
    assert _step(a, "place_order")["output"]["status"] == "accepted"
    denied = _step(b, "risk_check")["output"]  # a's entry is still working: it counts as exposure already
    assert denied["approved"] is False and [d["rule"] for d in denied["denials"]] == ["max_exposure"]
    assert denied["numbers"]["exposure_after_pct"] > 30

    account = app.broker.account(user_id)
    app.broker.sync(account, datetime(2005, 1, 4, 21, tzinfo=UTC))  # both entries fill at the next open
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

