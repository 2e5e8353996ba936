"""``GET /metrics``: Prometheus's text format (``observability/collectors.py``).

Who may read it is a setting, ``TRADETRAIL_METRICS``: ``token`` (the default) asks what the API asks, an API
token or a signed-in session; ``open`` asks nothing (for a scraper on a private network); ``off`` answers
404 as if there were no such route."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from fastapi.security import HTTPAuthorizationCredentials
from prometheus_client import CONTENT_TYPE_LATEST

from tradetrail.api.errors import ApiError
from tradetrail.api.security import bearer_scheme, cookie_scheme, current_user
from tradetrail.observability.collectors import Exposition

router = APIRouter(tags=["system"])


@router.get("/metrics", response_class=Response, include_in_schema=False)  # beside /api, like the pages
def metrics(request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(bearer_scheme),
            session: str | None = Depends(cookie_scheme)) -> Response:
    """Executions by status, step durations, scheduler lag, orders by state, broker health, IBKR requests,
    notification deliveries: every process of this deployment on this host."""
    app = request.app.state.app
    mode = app.settings.metrics
    if mode == "off":
        raise ApiError(404, "not_found", "metrics are off (TRADETRAIL_METRICS=off)")
    if mode == "token":
        current_user(request, credentials, session)
    exposition = getattr(request.app.state, "metrics", None)
    if exposition is None:
        exposition = request.app.state.metrics = Exposition(app)
    return Response(exposition.render(), media_type=CONTENT_TYPE_LATEST, headers={"Cache-Control": "no-store"})
