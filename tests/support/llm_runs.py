"""Runs of the demo market (S&P 500 replayed from 2005-01-03) with the model analyst answering from the fake
OpenAI-compatible server: what a trader sees when a model's answer reaches the money path."""

from __future__ import annotations

from sqlalchemy import select

from tests.support.helpers import demo
from tradetrail.db.trading_models import Order, OrderEvent
from tradetrail.runtime.build import build_app
from tradetrail.schemas.strategy import StrategyConfig
from tradetrail.services.accounts.bootstrap import demo_config
from tradetrail.services.runs.executions import get_execution, run_strategy
from tradetrail.services.strategies.configs import save_strategy
from tradetrail.settings import Settings

# The demo's first session (2005-01-03): SPX closes at 1202.08 with a daily ATR(14) of about 8.89, the
# daily 3-of-4 confirmation BULLISH; the next session opens at 1202.08.
FIRST_CLOSE = 1202.08


def llm_app(settings: Settings, fake):
    configured = Settings(home=settings.home, database_url=settings.database_url, llm_base_url=fake.base_url,
                          llm_api_key="sk-test", llm_model="fake-vision", llm_timeout_s=5.0, llm_backoff_s=0.01)
    return build_app(configured, migrate=False)


def _merge(base: dict, changes: dict) -> dict:
    out = dict(base)
    for key, value in changes.items():
        out[key] = _merge(base.get(key, {}), value) if isinstance(value, dict) else value
    return out


def llm_strategy(app, changes: dict | None = None, name: str = "llm") -> int:
    """The demo user and a strategy on the demo market whose analyst is the model; returns the user id."""
    user_id, _ = demo(app)
    data = _merge(demo_config().to_json(), {"analyst": {"kind": "llm"}, **(changes or {})})
    with app.Session() as s:
        save_strategy(s, app, user_id, name, StrategyConfig.model_validate(data))
        s.commit()
    return user_id


def run(app, user_id: int, name: str = "llm") -> dict:
    return get_execution(app, run_strategy(app, user_id, name).execution_id)


def step(execution: dict, name: str) -> dict:
    return next(s for s in execution["steps"] if s["name"] == name)


def orders_and_events(app) -> tuple[list[Order], list[OrderEvent]]:
    with app.Session() as s:
        return (s.scalars(select(Order).order_by(Order.id)).all(),
                s.scalars(select(OrderEvent).order_by(OrderEvent.id)).all())
