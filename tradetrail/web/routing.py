"""The route class every page uses: failures become pages, not the API's JSON.

No session redirects to ``/login?next=...`` (htmx requests get ``HX-Redirect`` so the whole page moves);
a missing resource (or another user's) is a 404 page, as in the API; a refused request shows why.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from fastapi import APIRouter, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse
from fastapi.routing import APIRoute

from tradetrail.domain.errors import NotFound
from tradetrail.web.session import LoginRequired, PageError
from tradetrail.web.templating import render

log = logging.getLogger(__name__)


def error_page(request: Request, status: int, title: str, message: str) -> Response:
    response = render(request, "error.html", status_code=status, error_status=status, title=title, message=message)
    if request.headers.get("HX-Request"):  # htmx swaps only 2xx by default: say where the error page is
        response.headers["HX-Retarget"] = "body"
        response.headers["HX-Reswap"] = "innerHTML"
    return response


class PageRoute(APIRoute):
    def get_route_handler(self) -> Callable:
        handler = super().get_route_handler()

        async def page_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except LoginRequired as exc:
                if request.headers.get("HX-Request"):
                    return Response(status_code=204, headers={"HX-Redirect": exc.next_url})
                return RedirectResponse(exc.next_url, status_code=303)
            except NotFound as exc:
                return error_page(request, 404, "Not found", str(exc))
            except PageError as exc:
                return error_page(request, exc.status, exc.title, exc.message)
            except RequestValidationError as exc:
                problems = "; ".join(f"{'.'.join(map(str, e.get('loc', ())))}: {e.get('msg')}"
                                     for e in exc.errors()[:5])
                return error_page(request, 400, "Bad request", problems)
            except Exception as exc:  # noqa: BLE001 - a page says it failed; the log keeps the details
                log.error("page %s %s failed: %s", request.method, request.url.path, type(exc).__name__,
                          exc_info=exc)
                return error_page(request, 500, "Something went wrong",
                                  "This page could not be shown; the server log has the details.")

        return page_handler


def page_router() -> APIRouter:
    """A router for pages: the page route class, and nothing in the OpenAPI document."""
    return APIRouter(route_class=PageRoute, include_in_schema=False)
