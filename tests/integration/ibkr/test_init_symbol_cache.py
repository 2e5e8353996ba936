"""Issue #12, item 3: ``tradetrail init`` warms the symbol cache. With IBKR data, init checked the demo's symbol
straight at IBKR and the first run searched it again (seen at a gateway: init, one search, one run → three
searches). Strategy validation now resolves through the same cache the run's resolve_contract reads; counted
at the fake CP gateway."""

from __future__ import annotations

import json

import pytest

from tests.fakes.ibkr_gateway import FakeGateway
from tests.support.ibkr import INFO, SCALE, SEARCH, SPY, ibkr_app, ibkr_env, steps, tt
from tradetrail.services.accounts.bootstrap import init
from tradetrail.services.runs.executions import get_execution, run_strategy


@pytest.fixture
def gateway():
    with FakeGateway(pacing_scale=SCALE) as gw:
        yield gw


def test_init_and_the_first_run_search_the_symbol_once(settings, gateway):
    app = ibkr_app(settings, gateway)
    user_id = init(app)["user_id"]
    assert (gateway.count(SEARCH), gateway.count(INFO)) == (1, 1)  # init looked SPY up, once
    run = get_execution(app, run_strategy(app, user_id, "demo").execution_id)
    assert run["status"] == "succeeded", run["error"]
    resolved = steps(run)["resolve_contract"]["output"]
    assert (resolved["contract"]["conid"], resolved["cache"]) == (SPY, "hit")  # served from what init cached
    assert (gateway.count(SEARCH), gateway.count(INFO)) == (1, 1)
    init(app)  # init again: the cached row answers
    assert gateway.count(SEARCH) == 1


@pytest.mark.once  # what is tested (queues, processes, the CLI) is the same on either backend
def test_the_command_line_init_then_run_search_once(cli_env, gateway):
    env = ibkr_env(cli_env, gateway)
    assert tt(env, "init").returncode == 0
    first = tt(env, "run", "demo", "--json")
    assert first.returncode == 0, first.stderr[-2000:]
    assert steps(json.loads(first.stdout))["resolve_contract"]["output"]["cache"] == "hit"
    assert gateway.count(SEARCH) == 1
