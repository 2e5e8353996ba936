"""``tradetrail init``: migrate, install the built-in prompts, create the demo user and the ``demo`` strategy.

The demo trades nothing real: it reads the bundled S&P 500 sample on a replay clock that starts at
2005-01-03, so every run sees one more session of a real market.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import select

from tradetrail.app_context import App
from tradetrail.catalogue.prompt_store import seed_default_templates
from tradetrail.db.models import User
from tradetrail.runtime.registries import market_data_is_live
from tradetrail.schemas.strategy import MarketDataConfig, ScheduleConfig, StrategyConfig
from tradetrail.services.strategies.configs import save_strategy

DEMO_USER = "demo"
DEMO_STRATEGY = "demo"


def demo_config(market_data: str = "sample") -> StrategyConfig:
    if market_data_is_live(market_data):  # IBKR: the same demo on a tradable ETF, live daily bars, paper account
        return StrategyConfig(
            symbol="SPY",
            description="Demo: SPY daily swing signals on IBKR daily bars (paper account).",
            schedule=ScheduleConfig(cron="35 9 * * mon-fri", market_sessions_only=True),
        )
    return StrategyConfig(
        symbol="SPX",
        description="Demo: S&P 500 daily swing signals on the bundled sample data, replayed one session per run.",
        market_data=MarketDataConfig(source="sample", replay_start=date(2005, 1, 3)),
        schedule=ScheduleConfig(cron="35 9 * * mon-fri", market_sessions_only=True),
    )


def ensure_user(app: App, username: str) -> int:
    with app.Session() as s:
        user = s.scalar(select(User).where(User.username == username))
        if user is None:
            user = User(username=username)
            s.add(user)
            s.commit()
        return user.id


def init(app: App) -> dict:
    """Idempotent: running it again changes nothing that exists (the demo's replay clock keeps its place)."""
    with app.Session() as s:
        templates = seed_default_templates(s)
    user_id = ensure_user(app, DEMO_USER)
    with app.Session() as s:
        strategy = save_strategy(s, app, user_id, DEMO_STRATEGY, demo_config(app.settings.market_data))
    return {"user": DEMO_USER, "user_id": user_id, "strategy": strategy.name, "strategy_id": strategy.id,
            "templates": [t.ref() for t in templates]}
