"""Two strategies on one symbol, one on the replay clock and one on the real clock (issue #12, fix 1)."""

from __future__ import annotations

import pytest

from tests.support.fresh_bars import write_fresh_spx
from tests.support.helpers import demo
from tradetrail.runtime.build import build_app
from tradetrail.schemas.strategy import MarketDataConfig, StrategyConfig
from tradetrail.services.strategies.configs import save_strategy
from tradetrail.settings import Settings


def step(execution: dict, name: str) -> dict:
    return next(s for s in execution["steps"] if s["name"] == name)


@pytest.fixture
def two_clocks(settings, tmp_path):
    """The demo (replay from 2005-01-03, sample data) and ``paper``: the same SPX, real clock, bars to today."""
    write_fresh_spx(tmp_path / "bars")
    app = build_app(Settings(home=settings.home, database_url=settings.database_url,
                             market_data_dir=tmp_path / "bars"), migrate=False)
    user_id, strategy = demo(app)
    with app.Session() as s:
        save_strategy(s, app, user_id, "paper", StrategyConfig(symbol="SPX",
                                                               market_data=MarketDataConfig(source="files")))
    return app, user_id, strategy
