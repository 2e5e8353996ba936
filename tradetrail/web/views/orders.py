"""Orders: the filtered list (cancel a working one there or on its page) and one order with its events,
fills, and the execution that placed it."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import Path, Query, Request
from fastapi.responses import RedirectResponse, Response

from tradetrail.domain.orders import OrderState
from tradetrail.services.strategies.names import strategy_names
from tradetrail.services.trading import order_lists as orders_query
from tradetrail.trading import orders as order_service
from tradetrail.web.routing import page_router
from tradetrail.web.session import ChangingUser, Form, PageError, PageUser, safe_next
from tradetrail.web.templating import render

router = page_router()
PAGE = 50
STATES = tuple(s.value for s in OrderState)
SYMBOL = re.compile(r"[A-Za-z0-9.\-_ ]{1,32}")
OrderId = Annotated[int, Path(ge=1, le=2_147_483_647)]


@router.get("/orders")
def orders(request: Request, user: PageUser,
           state: Annotated[str | None, Query(max_length=20)] = None,
           strategy: Annotated[str | None, Query(max_length=100)] = None,
           symbol: Annotated[str | None, Query(max_length=32)] = None,
           offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0) -> Response:
    app = request.app.state.app
    if state and state not in STATES:
        raise PageError(400, "Bad filter", f"state must be one of {', '.join(STATES)}")
    if symbol and not SYMBOL.fullmatch(symbol):
        raise PageError(400, "Bad filter", "a symbol is 1–32 letters, digits, '.', '-', '_' or spaces")
    rows = orders_query.list_orders(app, user.user_id, state=state or None, strategy=strategy or None,
                                    symbol=symbol or None, limit=PAGE + 1, offset=offset)
    names = sorted(strategy_names(app, user.user_id).values())
    query = {"state": state or "", "strategy": strategy or "", "symbol": symbol or ""}
    return render(request, "orders.html", rows=rows[:PAGE], more=len(rows) > PAGE, offset=offset, page=PAGE,
                  query=query, states=STATES, strategies=names)


@router.get("/orders/{order_id}")
def order(request: Request, order_id: OrderId, user: PageUser) -> Response:
    detail = orders_query.order_detail(request.app.state.app, user.user_id, order_id)
    return render(request, "order.html", order=detail)


@router.post("/orders/{order_id}/cancel")
def cancel(request: Request, order_id: OrderId, user: ChangingUser, form: Form) -> Response:
    """Ask the broker to cancel; the order's page shows the request and, once the broker says so, the state."""
    try:
        order_service.cancel(request.app.state.app, order_id, user_id=user.user_id)
    except ValueError as exc:
        raise PageError(409, "Not cancellable", str(exc)) from None
    return RedirectResponse(safe_next(form.get("next") or f"/orders/{order_id}"), status_code=303)
