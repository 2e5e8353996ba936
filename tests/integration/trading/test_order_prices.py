"""Review finding: order prices are sent as computed, not on the instrument's price increment."""

from __future__ import annotations

from sqlalchemy import select

from tests.support.helpers import demo
from tradetrail.db.trading_models import Order
from tradetrail.services.runs.executions import get_execution, run_strategy


def _on_tick(price: float, tick: float = 0.01) -> bool:
    return abs(price / tick - round(price / tick)) < 1e-6


def test_bracket_prices_are_on_the_tick(app):
    user_id, _ = demo(app)
    execution = get_execution(app, run_strategy(app, user_id, "demo").execution_id)  # 2005-01-03: the bracket
    assert execution["status"] == "succeeded"
    with app.Session() as s:
        prices = {o.leg: o.stop_price or o.limit_price for o in s.scalars(select(Order))
                  if (o.stop_price or o.limit_price) is not None}
    assert set(prices) == {"stop", "target"}
    assert all(_on_tick(p) for p in prices.values()), prices
