"""Configurations stored by earlier versions: what they hold that is still valid keeps working (a description
with CRLF line ends from a browser's textarea, a time zone spelled as this system's tz database aliases it), and
one that no longer validates is named as such on every path, never a 500."""

from __future__ import annotations

from sqlalchemy import select

from tests.support.api_client import api_user
from tests.support.helpers import demo
from tradetrail.db.models import StrategyVersion
from tradetrail.services.runs.executions import get_execution, run_strategy


def _store(app, strategy_id: int, config: dict) -> None:
    """Write the current version's configuration as an earlier version of tradetrail saved it."""
    with app.Session() as s:
        version = s.scalars(select(StrategyVersion).where(StrategyVersion.strategy_id == strategy_id)
                            .order_by(StrategyVersion.version.desc())).first()
        version.config = config
        s.commit()


def test_a_crlf_description_and_an_aliased_time_zone_still_load_run_and_schedule(app):
    user_id, strategy = demo(app)
    alice = api_user(app, "demo")
    stored = alice.get("/api/strategies/demo").json()["config"]
    stored["description"] = "Swing on SPX\r\nstop 2×ATR"
    stored["schedule"] = {**stored["schedule"], "cron": "35 9 * * 1-5", "timezone": "posix/America/New_York"}
    _store(app, strategy.id, stored)

    r = alice.get("/api/strategies/demo/next-runs", params={"count": 3})
    assert r.status_code == 200, r.text  # was 500: the zone was not in the schema's list
    assert r.json()["timezone"] == "posix/America/New_York" and len(r.json()["next"]) == 3
    assert all(x["local"].endswith(("-05:00", "-04:00")) for x in r.json()["next"])
    run = get_execution(app, run_strategy(app, user_id, "demo").execution_id)
    assert run["steps"][0]["name"] == "load_strategy" and run["steps"][0]["status"] == "succeeded", run["error"]
    # and saving it again as it is (what a form round trip does) is accepted
    r = alice.put("/api/strategies/demo", json={"config": stored})
    assert r.status_code == 200, r.text


def test_a_stored_configuration_that_no_longer_validates_is_named_not_a_500(app):
    user_id, strategy = demo(app)
    alice = api_user(app, "demo")
    stored = alice.get("/api/strategies/demo").json()["config"]
    stored["risk"] = {**stored["risk"], "max_position_pct": 500.0}  # before the bounds of issue #11
    _store(app, strategy.id, stored)

    r = alice.get("/api/strategies/demo/next-runs")
    assert r.status_code == 422, r.text
    err = r.json()["error"]
    assert err["code"] == "invalid_strategy" and "no longer validates" in err["message"], err
    assert err["fields"][0]["field"] == "risk.max_position_pct", err
    assert alice.get("/api/strategies/demo").status_code == 200  # still shown, so it can be corrected
    assert alice.get("/api/strategies").status_code == 200
    run = get_execution(app, run_strategy(app, user_id, "demo").execution_id)
    assert run["status"] == "failed" and "no longer validates" in run["error"], run["error"]
