"""TRADETRAIL_LOG_FORMAT=json through a real run: a line logged inside a step carries that execution's id and
the step's name, and a line logged after the run carries neither."""

from __future__ import annotations

import io
import json
import logging

from tests.support.helpers import demo
from tradetrail.observability.logs import use_json
from tradetrail.schemas.strategy import StrategyConfig
from tradetrail.services.runs.executions import run_strategy
from tradetrail.services.strategies.configs import save_strategy


def test_a_line_logged_inside_a_step_carries_the_execution_and_the_step(app):
    app.settings.analyst_plugins = ["tradetrail.analyst.examples", "tests.support.plugins"]
    user_id, _ = demo(app)
    config = StrategyConfig.model_validate({
        "symbol": "SPX", "charts": {"enabled": False},
        "market_data": {"source": "sample", "replay_start": "2004-04-23"},
        "analyst": {"kind": "plugin", "plugin": "tests.support.plugins.misbehaving:Talkative",
                    "params": {"fast": 3, "slow": 10}},
        "signal_policy": {"require_confirmation": False},
        "risk": {"sizing": "fixed", "quantity": 1}, "orders": {"protective": "none"}})
    with app.Session() as s:
        save_strategy(s, app, user_id, "talkative", config)
        s.commit()
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logger = logging.getLogger("tests.plugins.talkative")
    logger.addHandler(handler)
    use_json(logger)
    try:
        summary = run_strategy(app, user_id, "talkative")
        logger.warning("after the run")
    finally:
        logger.removeHandler(handler)
    assert summary.status == "succeeded", summary.error
    inside, after = (json.loads(line) for line in stream.getvalue().splitlines())
    assert inside["message"] == "thinking about SPX" and inside["level"] == "WARNING"
    assert (inside["execution_id"], inside["step"]) == (summary.execution_id, "analyze")
    assert after["message"] == "after the run" and "execution_id" not in after and "step" not in after
