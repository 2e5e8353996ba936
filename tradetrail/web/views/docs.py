"""``/docs``: Swagger UI for the API from this server's own copy (nothing from a CDN, no inline script).

Public like ``/openapi.json``: it shows the API's shape, and every call it makes needs a token or session.
"""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import Response

from tradetrail.web.routing import page_router
from tradetrail.web.templating import render

router = page_router()


@router.get("/docs")
def docs(request: Request) -> Response:
    response = render(request, "docs.html", openapi_url=request.app.openapi_url)
    response.headers["Cache-Control"] = "no-cache"
    return response
