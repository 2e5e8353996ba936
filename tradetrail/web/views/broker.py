"""``/broker``: the connection and session as the broker reports them, the user's accounts there, and
"reconcile now" (our orders and positions against the broker's; the report shows what it settled)."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import Response

from tradetrail.broker.port import BrokerError
from tradetrail.marketdata.port import MarketDataError
from tradetrail.services.trading.broker_status import broker_status
from tradetrail.trading.reconcile import reconcile_user
from tradetrail.trading.trading_accounts import user_accounts
from tradetrail.web.routing import page_router
from tradetrail.web.session import ChangingUser, PageUser
from tradetrail.web.templating import render

router = page_router()


def _page(request: Request, user, *, report=None, problem: str | None = None, status: int = 200) -> Response:
    app = request.app.state.app
    return render(request, "broker.html", status_code=status, broker=broker_status(app, user_id=user.user_id),
                  accounts=user_accounts(app, user.user_id), report=report, problem=problem)


@router.get("/broker")
def broker_page(request: Request, user: PageUser) -> Response:
    return _page(request, user)


@router.post("/broker/reconcile")
def reconcile(request: Request, user: ChangingUser) -> Response:
    """Reconcile every account of the user (one broker down does not stop the others) and show the report."""
    try:
        report = reconcile_user(request.app.state.app, user.user_id)
    except (BrokerError, MarketDataError) as exc:
        return _page(request, user, problem=f"reconciliation stopped: {exc}", status=502)
    return _page(request, user, report=report)
