"""A parameter grid from the command line: every combination runs (in worker processes), each is recorded as
a backtest of its own with its parameters, and the table is ranked by the chosen figure."""

from __future__ import annotations

import json

import pytest

from tests.support.backtrader_crossover import crossover_config
from tests.support.cli import tt
from tests.support.helpers import demo
from tradetrail.services.backtests.queries import get_backtest, list_backtests
from tradetrail.services.strategies.configs import save_strategy

pytestmark = pytest.mark.once  # the grid runs in memory; its records are plain inserts: the same on either backend


@pytest.fixture
def uid(app):
    uid, _ = demo(app)
    with app.Session() as s:
        save_strategy(s, app, uid, "cross", crossover_config())
    return uid


def test_every_combination_runs_is_recorded_and_ranked(app, uid, cli_env):
    out = tt(cli_env, "backtest", "cross", "--from", "2005-01-03", "--to", "2010-12-31", "--param", "fast=10,20",
             "--param", "slow=50,100", "--sort", "total_return_pct", "--json").stdout
    rows = json.loads(out)
    assert sorted((r["params"]["fast"], r["params"]["slow"]) for r in rows) == [(10, 50), (10, 100), (20, 50),
                                                                                 (20, 100)]
    returns = [r["stats"]["total_return_pct"] for r in rows]
    assert returns == sorted(returns, reverse=True) and all(r["error"] is None for r in rows)
    assert len({r["grid_id"] for r in rows}) == 1
    for row in rows:
        recorded = get_backtest(app, uid, row["id"])
        assert recorded["status"] == "succeeded" and recorded["grid_id"] == row["grid_id"]
        assert recorded["params"]["analyst_params"] == row["params"]
        assert recorded["report"]["stats"] == row["stats"]
    distinct = {json.dumps(r["stats"], sort_keys=True) for r in rows}
    assert len(distinct) == 4, "each combination ran with its own parameters"

    table = tt(cli_env, "backtest", "cross", "--from", "2005-01-03", "--to", "2006-12-29", "--param", "fast=5,10",
               "--param", "slow=50").stdout
    assert "2 combinations, sorted by sharpe" in table


@pytest.mark.parametrize("args, message", [
    (["--param", "fast"], "--param must be NAME=V1,V2"),
    (["--param", "fast=10", "--sort", "luck"], "cannot sort by 'luck'"),
    (["--param", "fast=10,0"], "bad params {'fast': 0, 'slow': 50}"),
])
def test_bad_grids_are_refused_with_the_reason_and_leave_nothing_behind(app, uid, cli_env, args, message):
    proc = tt(cli_env, "backtest", "cross", "--from", "2005-01-03", "--to", "2005-12-30", *args, check=False)
    assert proc.returncode != 0 and message in proc.stderr, proc.stderr
    assert list_backtests(app, uid) == []
