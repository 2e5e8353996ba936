"""``/symbols``: search the symbol cache (a miss asks the market data source and fills the cache), what the
cache holds, and a refresh of its stale rows."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import Query, Request
from fastapi.responses import Response

from tradetrail.broker.port import BrokerError
from tradetrail.catalogue import symbols
from tradetrail.marketdata.port import MarketDataError
from tradetrail.web.routing import page_router
from tradetrail.web.session import ChangingUser, PageUser
from tradetrail.web.templating import render

router = page_router()
SEARCH = re.compile(r"[^\x00-\x1f\x7f]{1,64}")


def _page(request: Request, *, query: str = "", found=None, problem: str | None = None, refreshed=None,
          status: int = 200) -> Response:
    return render(request, "symbols.html", status_code=status, query=query, found=found, problem=problem,
                  refreshed=refreshed, stats=symbols.cache_stats(request.app.state.app))


@router.get("/symbols")
def symbol_page(request: Request, user: PageUser, q: Annotated[str, Query(max_length=64)] = "") -> Response:
    text = q.strip()
    if not text:
        return _page(request)
    if not SEARCH.fullmatch(text):
        return _page(request, query=text, problem="a search is 1–64 characters without control characters",
                     status=400)
    try:
        found = symbols.search_symbols(request.app.state.app, text, limit=50)
    except MarketDataError as exc:
        return _page(request, query=text, problem=f"the market data source could not answer: {exc}", status=502)
    return _page(request, query=text, found=found)


@router.post("/symbols/refresh")
def refresh(request: Request, user: ChangingUser) -> Response:
    """Refresh rows older than the cache's time to live (a hundred at a time) and show what happened."""
    try:
        report = symbols.refresh_stale(request.app.state.app)
    except (MarketDataError, BrokerError) as exc:
        return _page(request, problem=f"the refresh stopped: {exc}", status=502)
    return _page(request, refreshed=report)
