"""The portfolio as the command line shows it: the account of the user's latest run, marked at that run's
as-of time, with the trading statistics and closed trades of every account."""

from __future__ import annotations

from tradetrail.trading import portfolio


def portfolio_now(app, user_id: int) -> dict:
    data = portfolio.current(app, user_id, portfolio.latest_as_of(app, user_id))
    data["statistics"] = portfolio.stats(app, user_id)
    data["trades"] = portfolio.trades(app, user_id)
    return data
