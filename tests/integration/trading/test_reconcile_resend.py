"""Review finding: reconciliation sends orders on its own, past the risk gate and the trading state."""

from __future__ import annotations

from sqlalchemy import select

from tests.support.helpers import demo
from tradetrail.db.sim_models import SimOrder
from tradetrail.domain.risk import TradingState
from tradetrail.runtime.build import build_app
from tradetrail.services.runs.executions import get_execution, run_strategy
from tradetrail.settings import Settings
from tradetrail.trading.reconcile import reconcile
from tradetrail.trading.trading_state import GLOBAL, set_state


def test_reconcile_sends_nothing_while_trading_is_halted(app, settings):
    user_id, _ = demo(app)
    broken = build_app(Settings(home=settings.home, database_url=settings.database_url,
                                sim_faults="place_timeout_before_accept"), migrate=False)
    execution = get_execution(broken, run_strategy(broken, user_id, "demo").execution_id)
    assert execution["failed_step"] == "place_order"  # legs UNKNOWN, the broker has nothing

    # The operator sees a failed run and stops everything.
    set_state(app, user_id, GLOBAL, TradingState.HALTED, "something is wrong, stop trading")

    report = reconcile(app, user_id)  # e.g. the periodic reconciler of `tradetrail serve`, minutes later
    with app.Session() as s:
        at_broker = s.scalars(select(SimOrder.client_order_id)).all()
    assert report["resent"] == [] and at_broker == [], (report["notes"], at_broker)
