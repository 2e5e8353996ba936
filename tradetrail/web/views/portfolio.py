"""``/portfolio``: every account with its positions marked to market at its own clock, the equity curves
from the snapshots, the statistics, and every trade with its R multiple, linked to the executions that
opened and closed it."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import Response

from tradetrail.services.runs import trail as execution_trail
from tradetrail.services.trading import overview as account_overview
from tradetrail.trading import portfolio
from tradetrail.web.routing import page_router
from tradetrail.web.session import PageUser
from tradetrail.web.templating import render

router = page_router()
MAX_TRADES = 500


@router.get("/portfolio")
def portfolio_page(request: Request, user: PageUser) -> Response:
    app = request.app.state.app
    accounts = portfolio.accounts(app, user.user_id)
    trades = execution_trail.trades_with_executions(app, user.user_id)
    curves = account_overview.equity_curves(app, user.user_id)
    return render(request, "portfolio.html", accounts=accounts, stats=portfolio.stats(app, user.user_id),
                  trades=trades[:MAX_TRADES], more_trades=max(0, len(trades) - MAX_TRADES),
                  curves=[{"account": account, "points": points} for account, points in curves.items()])
