"""The services the web UI added (execution search and replays, what an execution caused, per-account P&L and
equity curves, the demo's first password, a renewed CSRF token), on both database backends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.support.api_client import PASSWORD
from tests.support.web_browser import demo_user
from tradetrail.domain.errors import NotFound
from tradetrail.services.accounts import users as accounts
from tradetrail.services.runs import search as execution_search
from tradetrail.services.runs import trail as execution_trail
from tradetrail.services.runs.executions import get_execution, replay_execution, run_strategy
from tradetrail.services.trading import overview as account_overview
from tradetrail.trading.portfolio import trades


@pytest.fixture
def three_runs(app):
    """The demo's first three sessions: BUY (bracket placed), SELL (entry filled, exit placed), SELL (exit
    filled: one closed trade)."""
    user_id, _ = demo_user(app)
    return user_id, [run_strategy(app, user_id, "demo").execution_id for _ in range(3)]


def test_search_filters_and_reports_each_runs_signal(app, three_runs):
    user_id, runs = three_runs
    replay = replay_execution(app, user_id, runs[0])["id"]
    found = execution_search.search(app, user_id)
    assert [r["id"] for r in found] == [replay, *reversed(runs)]  # newest first
    assert [r["signal"]["action"] if r["signal"] else None for r in found] == ["BUY", "SELL", "SELL", "BUY"]
    assert found[-1]["signal"]["reason"] == "BUY: all rules passed"
    assert [r["id"] for r in execution_search.search(app, user_id, trigger="replay")] == [replay]
    assert [r["id"] for r in execution_search.search(app, user_id, trigger="manual", limit=2, offset=1)] == \
        [runs[1], runs[0]]
    assert execution_search.search(app, user_id, status="failed") == []
    today = datetime.now(UTC).date()
    assert len(execution_search.search(app, user_id, started_from=today, started_to=today)) == 4
    assert execution_search.search(app, user_id, started_to=today - timedelta(days=1)) == []
    assert execution_search.search(app, user_id, started_from=today + timedelta(days=1)) == []
    stranger = accounts.create_user(app, "mallory", PASSWORD)["id"]
    assert execution_search.search(app, stranger) == []
    with pytest.raises(NotFound):
        execution_search.search(app, stranger, strategy="demo")


def test_replays_of_an_execution_say_whether_they_reproduced_it(app, three_runs):
    user_id, runs = three_runs
    assert execution_search.replays_of(app, user_id, runs[0]) == []
    replay = replay_execution(app, user_id, runs[0])
    replay_execution(app, user_id, runs[1])  # another execution's replay is not listed
    (found,) = execution_search.replays_of(app, user_id, runs[0])
    assert found["id"] == replay["id"] and found["matches"] is True and found["differences"] == []
    stranger = accounts.create_user(app, "mallory", PASSWORD)["id"]
    with pytest.raises(NotFound):
        execution_search.replays_of(app, stranger, runs[0])


def test_what_an_execution_caused_and_what_caused_a_trade(app, three_runs):
    user_id, runs = three_runs
    first = execution_trail.orders_of_execution(app, user_id, runs[0])
    assert [o["leg"] for o in first] == ["entry", "stop", "target"]
    entry = first[0]
    assert [e["to"] for e in entry["events"]] == ["NEW", "SUBMITTING", "SUBMITTED", "FILLED"]
    assert entry["state"] == "FILLED"
    assert len(entry["fills"]) == 1 and entry["fills"][0]["quantity"] == 16
    assert [o["leg"] for o in execution_trail.orders_of_execution(app, user_id, runs[1])] == ["exit"]
    assert execution_trail.orders_of_execution(app, user_id, runs[2]) == []
    with pytest.raises(NotFound):
        execution_trail.orders_of_execution(app, accounts.create_user(app, "mallory", PASSWORD)["id"], runs[0])

    strategy_id, as_of = get_execution(app, runs[0])["strategy_id"], get_execution(app, runs[2])["as_of"]
    fills = execution_trail.strategy_fills(app, user_id, strategy_id, "SPX", datetime.fromisoformat(as_of))
    assert [(f["side"], f["execution_id"]) for f in fills] == [("BUY", runs[0]), ("SELL", runs[1])]
    before = datetime.fromisoformat(fills[0]["filled_at"]) - timedelta(seconds=1)
    assert execution_trail.strategy_fills(app, user_id, strategy_id, "SPX", before) == []

    (trade,) = execution_trail.trades_with_executions(app, user_id)
    assert trade["opened_by"] == runs[0] and trade["closed_by"] == runs[1]
    assert {k: v for k, v in trade.items() if k not in ("opened_by", "closed_by")} == trades(app, user_id)[0]


def test_each_accounts_day_and_total_pnl_and_equity_curve(app, three_runs):
    user_id, runs = three_runs
    account = next(s for s in get_execution(app, runs[0])["steps"] if s["name"] == "update_portfolio")["output"][
        "account"]
    (row,) = [a for a in account_overview.accounts(app, user_id) if a["account"] == account]
    curve = account_overview.equity_curves(app, user_id)[account]
    equities = [p["equity"] for p in curve]
    assert equities[0] == 100_000 and row["first"]["equity"] == 100_000
    assert row["latest"]["equity"] == equities[-1] and row["latest"]["at"].startswith("2005-01-05")
    assert row["total_pnl"] == pytest.approx(equities[-1] - 100_000) and row["total_pnl"] < 0
    assert row["day_start"]["at"].startswith("2005-01-04")  # the last snapshot before the replayed day
    assert row["day_pnl"] == pytest.approx(equities[-1] - row["day_start"]["equity"])
    times = [p["at"] for p in curve]
    assert times == sorted(set(times))  # one point per time, in order
    thinned = account_overview.equity_curves(app, user_id, max_points=2)[account]
    assert len(thinned) == 2 and thinned[-1] == curve[-1] and thinned[0] == curve[0]
    assert account_overview.accounts(app, accounts.create_user(app, "mallory", PASSWORD)["id"]) == []


def test_the_demo_user_gets_one_random_password_once(app):
    demo_user(app)
    accounts.create_user(app, "fresh", None)
    first = accounts.give_password_if_none(app, "fresh")
    assert first and len(first) >= 20
    assert accounts.check_password_login(app, "fresh", first, "test").username == "fresh"
    assert accounts.give_password_if_none(app, "fresh") is None  # never a second one
    assert accounts.give_password_if_none(app, "demo") is None  # has one already (the tests' password)
    assert accounts.give_password_if_none(app, "nobody") is None
    other = accounts.create_user(app, "fresh2", None) and accounts.give_password_if_none(app, "fresh2")
    assert other != first  # random, not a default


def test_a_renewed_csrf_token_replaces_the_old_one(app):
    user_id, _ = demo_user(app)
    secret, old, _ = accounts.start_session(app, user_id)
    new = accounts.renew_csrf(app, secret)
    principal = accounts.principal_for_session(app, secret)
    assert new != old and accounts.csrf_matches(principal, new) and not accounts.csrf_matches(principal, old)
    accounts.end_session(app, secret)
    assert accounts.renew_csrf(app, secret) is None
    assert accounts.renew_csrf(app, "no such session") is None
